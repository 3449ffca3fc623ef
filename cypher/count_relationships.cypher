// Number of relationships between nodes.
MATCH (:Node)-[r]->(:Node)
RETURN count(r) AS count
