// Constraints and indexes the Neo4j store relies on; idempotent, run at every connect.
CREATE CONSTRAINT node_id IF NOT EXISTS FOR (n:Node) REQUIRE n.id IS UNIQUE;
CREATE INDEX node_class IF NOT EXISTS FOR (n:Node) ON (n.class);
CREATE INDEX node_name IF NOT EXISTS FOR (n:Node) ON (n.name);
CREATE TEXT INDEX node_search IF NOT EXISTS FOR (n:Node) ON (n._search);
CREATE CONSTRAINT journal_seq IF NOT EXISTS FOR (j:JournalEntry) REQUIRE j.seq IS UNIQUE;
CREATE INDEX journal_entity IF NOT EXISTS FOR (j:JournalEntry) ON (j.entity);
// The relationships' entries of a CI: ids ending with "]-> <ci id>".
CREATE TEXT INDEX journal_entity_text IF NOT EXISTS FOR (j:JournalEntry) ON (j.entity);
CREATE CONSTRAINT journal_block_first IF NOT EXISTS FOR (b:JournalBlock) REQUIRE b.first IS UNIQUE;
CREATE INDEX journal_block_last IF NOT EXISTS FOR (b:JournalBlock) ON (b.last);
// A block's entities (and the CIs its relationship entries touch), each list element one exact
// term (keyword analyzer): a CI's history without reading every block.
CREATE FULLTEXT INDEX journal_block_entities IF NOT EXISTS FOR (b:JournalBlock) ON EACH [b.entities, b.touches]
  OPTIONS {indexConfig: {`fulltext.analyzer`: 'keyword'}};
CREATE CONSTRAINT journal_head IF NOT EXISTS FOR (h:JournalHead) REQUIRE h.name IS UNIQUE;
CREATE CONSTRAINT api_token_hash IF NOT EXISTS FOR (t:ApiToken) REQUIRE t.hash IS UNIQUE;
// Nodes written before the search index get their search text (once; a no-op afterwards).
MATCH (n:Node) WHERE n._search IS NULL SET n._search = toLower(n.id) + '\n' + toLower(n.name)
