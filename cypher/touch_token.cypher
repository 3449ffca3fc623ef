// Record when a token was last used (not journaled).
MATCH (t:ApiToken {hash: $hash})
SET t.last_used_at = $at
