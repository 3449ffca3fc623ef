// The bulk write is over (written, or undone): the store is free for every writer again.
MATCH (h:JournalHead {name: 'journal'})
WHERE h.import_id = $id
REMOVE h.import_id, h.import_actor, h.import_started, h.import_heartbeat, h.import_state,
       h.import_first
