// A page of nodes ordered by id, filtered by class (any of) and attribute equality.
MATCH (n:Node)
WHERE n.id > $after
  AND ($classes IS NULL OR n.class IN $classes)
  AND all(k IN keys($attributes) WHERE n[k] = $attributes[k])
RETURN properties(n) AS props
ORDER BY n.id
LIMIT $limit
