// Whether the database holds any servicegraph data (restore goes only into an empty store).
OPTIONAL MATCH (n:Node) WITH count(n) AS nodes
OPTIONAL MATCH (j:JournalEntry) WITH nodes, count(j) AS entries
OPTIONAL MATCH (b:JournalBlock) WITH nodes, entries, count(b) AS blocks
OPTIONAL MATCH (t:ApiToken) WITH nodes, entries, blocks, count(t) AS tokens
RETURN nodes + entries + blocks + tokens = 0 AS empty
