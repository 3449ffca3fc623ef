// Append journal entries (seqs assigned under the lock taken by lock_journal) and advance the head.
MATCH (h:JournalHead {name: 'journal'})
SET h.seq = $last
WITH h
UNWIND $entries AS e
CREATE (:JournalEntry {
  seq: e.seq, at: $at, actor: $actor, op: e.op, entity: e.entity, before: e.before, after: e.after,
  reason: $reason
})
