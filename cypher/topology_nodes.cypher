// Every node with what the topology engine needs: id, class, lifecycle status, min_up, name.
MATCH (n:Node)
RETURN n.id AS id, n.class AS class, n.status AS status, n.min_up AS min_up, n.name AS name
