// The relationships with the given [source, type, target] keys.
UNWIND $keys AS k
MATCH (a:Node {id: k[0]})-[r]->(b:Node {id: k[2]})
WHERE type(r) = k[1]
RETURN a.id AS source, type(r) AS type, b.id AS target, properties(r) AS attributes
