// A page of nodes filtered by class (any of), attribute equality and a case-insensitive substring
// of id or name (the `_search` text index), ordered by __SORT__ (id, name or class; then id) in
// __DIRECTION__ (ASC/DESC), after the keyset ($after_key, $after_id). The placeholders are
// replaced by checked identifiers (Cypher cannot parametrise an ordering).
MATCH (n:Node)
WHERE ($classes IS NULL OR n.class IN $classes)
  AND all(k IN keys($attributes) WHERE n[k] = $attributes[k])
  AND ($text IS NULL OR n._search CONTAINS $text)
  AND ($after_id IS NULL OR n.__SORT__ __CMP__ $after_key
       OR (n.__SORT__ = $after_key AND n.id __CMP__ $after_id))
RETURN properties(n) AS props
ORDER BY n.__SORT__ __DIRECTION__, n.id __DIRECTION__
LIMIT $limit
