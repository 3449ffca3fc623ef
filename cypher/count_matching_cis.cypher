// How many nodes find_cis would list with these filters.
MATCH (n:Node)
WHERE ($classes IS NULL OR n.class IN $classes)
  AND all(k IN keys($attributes) WHERE n[k] = $attributes[k])
  AND ($text IS NULL OR n._search CONTAINS $text)
RETURN count(n) AS count
