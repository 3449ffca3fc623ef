// Delete nodes (their relationships were deleted, and journaled, before).
UNWIND $ids AS id
MATCH (n:Node {id: id})
DETACH DELETE n
