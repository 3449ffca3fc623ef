// Create or replace relationships of one type between existing nodes. __TYPE__ is replaced by a
// relationship type the model declares (UPPER_SNAKE_CASE, checked before use). A dynamic type,
// `[r:$($type)]`, is not used: Neo4j 5.26.0 caches the first type it saw in the query plan.
UNWIND $rows AS row
MATCH (a:Node {id: row.source})
MATCH (b:Node {id: row.target})
MERGE (a)-[r:__TYPE__]->(b)
SET r = row.attributes
RETURN count(*) AS written
