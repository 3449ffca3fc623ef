// Journal entries after a seq, oldest first, optionally for one entity. Entries live in two
// shapes: a JournalEntry node each (small writes), or a JournalBlock holding a large write's
// entries as lists, seqs first..last in order (see append_block.cypher). Placeholders, filled by
// the store: ENTRY_ENTITY the entity condition on entry nodes (an index seek); BLOCKS the
// block look-up (blocks by seq, or the full-text index for one entity); BLOCK_LIMIT keeps,
// without an entity, only the blocks that can hold the first $limit entries after $since, and
// SPAN the last element of a block that can (with an entity: all of them). A block's lists
// are read once each, sliced to that range (reading an element reads the whole list).
CALL {
  MATCH (j:JournalEntry)
  WHERE j.seq > $since __ENTRY_ENTITY__
  RETURN j.seq AS seq, j.at AS at, j.actor AS actor, j.op AS op, j.entity AS entity,
         j.before AS before, j.after AS after, j.reason AS reason
  ORDER BY seq
  LIMIT $limit
  UNION ALL
  __BLOCKS__
  WHERE b.last > $since
  WITH b ORDER BY b.first
  __BLOCK_LIMIT__
  WITH b, CASE WHEN $since >= b.first THEN $since - b.first + 1 ELSE 0 END AS lo
  WITH b, lo, __SPAN__ AS hi
  WITH b, lo, hi, b.entities[lo..hi + 1] AS entities
  WITH b, lo, hi, entities,
       [k IN range(0, size(entities) - 1) WHERE $entity IS NULL OR entities[k] = $entity] AS ks
  WHERE size(ks) > 0
  WITH b, entities, ks, b.first + lo AS base, b.ops[lo..hi + 1] AS ops,
       b.befores[lo..hi + 1] AS befores, b.afters[lo..hi + 1] AS afters
  UNWIND ks AS k
  RETURN base + k AS seq, b.at AS at, b.actor AS actor, ops[k] AS op, entities[k] AS entity,
         CASE befores[k] WHEN '' THEN null ELSE befores[k] END AS before,
         CASE afters[k] WHEN '' THEN null ELSE afters[k] END AS after, b.reason AS reason
}
RETURN seq, at, actor, op, entity, before, after, reason
ORDER BY seq
LIMIT $limit
