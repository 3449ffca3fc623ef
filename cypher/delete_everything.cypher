// Restore with --replace: remove servicegraph nodes (CIs, journal, head, tokens), a batch at a
// time; the caller repeats it until it deletes nothing.
MATCH (n)
WHERE n:Node OR n:JournalEntry OR n:JournalBlock OR n:JournalHead OR n:ApiToken
WITH n LIMIT 10000
DETACH DELETE n
RETURN count(*) AS deleted
