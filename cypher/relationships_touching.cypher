// Every relationship with an endpoint among the given ids.
UNWIND $ids AS id
MATCH (n:Node {id: id})-[r]-(:Node)
RETURN DISTINCT startNode(r).id AS source, type(r) AS type, endNode(r).id AS target,
       properties(r) AS attributes
