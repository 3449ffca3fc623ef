// The nodes with the given ids.
UNWIND $ids AS id
MATCH (n:Node {id: id})
RETURN properties(n) AS props
