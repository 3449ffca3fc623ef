// Journal entries filtered by seq range, time range (ISO text), actor, operations and entity; with
// $related, also the entries of relationships that touch the entity. Oldest first. Entry nodes
// and blocks as in journal.cypher. For an entity, ENTRIES finds its entry nodes through the
// indexes (the id itself and a relationship id starting with it: the range index; one ending
// with it: the text index) and BLOCKS the blocks naming it through the full-text index (with
// $related, also as a relationship's end: a block's `touches`); else all of them, by seq.
CALL {
  __ENTRIES__
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
  UNION ALL
  __BLOCKS__
  WHERE b.last > $since AND ($until IS NULL OR b.first <= $until)
    AND ($since_at IS NULL OR b.at >= $since_at) AND ($until_at IS NULL OR b.at < $until_at)
    AND ($actor IS NULL OR b.actor = $actor)
  WITH b, CASE WHEN $since >= b.first THEN $since - b.first + 1 ELSE 0 END AS lo,
       CASE WHEN $until IS NULL OR $until >= b.last THEN b.last - b.first
            ELSE $until - b.first END AS hi
  WITH b, lo, hi, b.entities[lo..hi + 1] AS entities, b.ops[lo..hi + 1] AS ops
  WITH b, lo, hi, entities, ops,
       [k IN range(0, size(entities) - 1)
        WHERE ($ops IS NULL OR ops[k] IN $ops)
          AND ($entity IS NULL OR entities[k] = $entity
               OR ($related AND (entities[k] STARTS WITH $prefix
                                 OR entities[k] ENDS WITH $suffix)))] AS ks
  WHERE size(ks) > 0
  WITH b, entities, ops, ks, b.first + lo AS base, b.befores[lo..hi + 1] AS befores,
       b.afters[lo..hi + 1] AS afters
  UNWIND ks AS k
  RETURN base + k AS seq, b.at AS at, b.actor AS actor, ops[k] AS op, entities[k] AS entity,
         CASE befores[k] WHEN '' THEN null ELSE befores[k] END AS before,
         CASE afters[k] WHEN '' THEN null ELSE afters[k] END AS after, b.reason AS reason
}
RETURN seq, at, actor, op, entity, before, after, reason
ORDER BY seq
LIMIT $limit
