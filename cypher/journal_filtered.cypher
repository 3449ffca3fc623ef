// Journal entries filtered by seq range, time range (ISO text), actor, operations and entity; with
// $related, also the entries of relationships that touch the entity. Oldest first.
MATCH (j:JournalEntry)
WHERE j.seq > $since AND ($until IS NULL OR j.seq <= $until)
  AND ($since_at IS NULL OR j.at >= $since_at) AND ($until_at IS NULL OR j.at < $until_at)
  AND ($actor IS NULL OR j.actor = $actor)
  AND ($ops IS NULL OR j.op IN $ops)
  AND ($entity IS NULL OR j.entity = $entity
       OR ($related AND (j.entity STARTS WITH $prefix OR j.entity ENDS WITH $suffix)))
RETURN j.seq AS seq, j.at AS at, j.actor AS actor, j.op AS op, j.entity AS entity,
       j.before AS before, j.after AS after, j.reason AS reason
ORDER BY seq
LIMIT $limit
