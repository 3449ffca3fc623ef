// Create nodes the write's plan found absent (under the journal lock or a bulk write's lease):
// no look-up first, the id's uniqueness constraint still guards.
UNWIND $rows AS row
CREATE (n:Node)
SET n = row.props
