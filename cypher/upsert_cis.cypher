// Create or replace nodes: every property is set from the row (removed attributes disappear).
UNWIND $rows AS row
MERGE (n:Node {id: row.id})
SET n = row.props
