// Restore: journal entries exactly as they were (seq, time, actor, reason), and the head.
MERGE (h:JournalHead {name: 'journal'})
  ON CREATE SET h.seq = 0
SET h.seq = CASE WHEN $last > h.seq THEN $last ELSE h.seq END
WITH h
UNWIND $entries AS e
CREATE (:JournalEntry {
  seq: e.seq, at: e.at, actor: e.actor, op: e.op, entity: e.entity, before: e.before,
  after: e.after, reason: e.reason
})
