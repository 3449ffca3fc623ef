// Whether the database holds any servicegraph data (restore goes only into an empty store).
OPTIONAL MATCH (n:Node) WITH count(n) AS nodes
OPTIONAL MATCH (j:JournalEntry) WITH nodes, count(j) AS entries
OPTIONAL MATCH (t:ApiToken) WITH nodes, entries, count(t) AS tokens
RETURN nodes + entries + tokens = 0 AS empty
