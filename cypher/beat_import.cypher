// The bulk write holding the store is alive (each of its transactions says so), in a state.
MATCH (h:JournalHead {name: 'journal'})
WHERE h.import_id = $id
SET h.import_heartbeat = $now, h.import_state = $state
