// Number of nodes per class.
MATCH (n:Node)
RETURN n.class AS class, count(*) AS count
