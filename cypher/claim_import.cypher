// A bulk write takes the store (the journal head holds its lease, under the lock of lock_journal):
// other graph writes are refused until it is released. $first is the first journal seq it may
// write (a recovery taking an interrupted write over keeps that write's).
MATCH (h:JournalHead {name: 'journal'})
SET h.import_id = $id, h.import_actor = $actor, h.import_started = $now,
    h.import_heartbeat = $now, h.import_state = $state, h.import_first = $first
