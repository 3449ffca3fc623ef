// How many relationships find_relationships would list with these filters.
MATCH (a:Node)-[r]->(b:Node)
WHERE ($source IS NULL OR a.id = $source)
  AND ($target IS NULL OR b.id = $target)
  AND ($types IS NULL OR type(r) IN $types)
RETURN count(r) AS count
