// Journal entries after a seq, oldest first, optionally for one entity.
MATCH (j:JournalEntry)
WHERE j.seq > $since AND ($entity IS NULL OR j.entity = $entity)
RETURN j.seq AS seq, j.at AS at, j.actor AS actor, j.op AS op, j.entity AS entity,
       j.before AS before, j.after AS after, j.reason AS reason
ORDER BY seq
LIMIT $limit
