// Every relationship as (source, type, target), for the topology engine.
MATCH (a:Node)-[r]->(b:Node)
RETURN a.id AS source, type(r) AS type, b.id AS target
