// Take the journal's write lock for this transaction (serialises writers) and read its head seq.
MERGE (h:JournalHead {name: 'journal'})
  ON CREATE SET h.seq = 0
SET h.locked_at = timestamp()
RETURN h.seq AS seq
