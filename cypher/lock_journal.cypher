// Take the journal's write lock for this transaction (serialises writers) and read its head seq,
// with the bulk write holding the store, if one does (see claim_import.cypher).
MERGE (h:JournalHead {name: 'journal'})
  ON CREATE SET h.seq = 0
SET h.locked_at = timestamp()
RETURN h.seq AS seq, h.import_id AS import_id, h.import_actor AS import_actor,
       h.import_started AS import_started, h.import_heartbeat AS import_heartbeat,
       h.import_state AS import_state, h.import_first AS import_first
