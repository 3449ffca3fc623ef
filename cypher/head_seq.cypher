// The newest journal seq (0 for an empty store).
OPTIONAL MATCH (h:JournalHead {name: 'journal'})
RETURN coalesce(h.seq, 0) AS seq
