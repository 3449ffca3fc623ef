// Delete relationships by [source, type, target].
UNWIND $keys AS k
MATCH (:Node {id: k[0]})-[r]->(:Node {id: k[2]})
WHERE type(r) = k[1]
DELETE r
