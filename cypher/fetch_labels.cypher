// Class and name of the nodes with the given ids (long lists: no attributes read).
UNWIND $ids AS id
MATCH (n:Node {id: id})
RETURN n.id AS id, n.class AS class, n.name AS name
