// A page of relationships ordered by (source, type, target), filtered by endpoint and type.
MATCH (a:Node)-[r]->(b:Node)
WHERE ($source IS NULL OR a.id = $source)
  AND ($target IS NULL OR b.id = $target)
  AND ($types IS NULL OR type(r) IN $types)
  AND (a.id > $after[0]
       OR (a.id = $after[0] AND (type(r) > $after[1] OR (type(r) = $after[1] AND b.id > $after[2]))))
RETURN a.id AS source, type(r) AS type, b.id AS target, properties(r) AS attributes
ORDER BY source, type, target
LIMIT $limit
