// Create relationships of one type the write's plan found absent (no MERGE look-up). __TYPE__ as
// in upsert_relationships.cypher.
UNWIND $rows AS row
MATCH (a:Node {id: row.source})
MATCH (b:Node {id: row.target})
CREATE (a)-[r:__TYPE__]->(b)
SET r = row.attributes
RETURN count(*) AS written
