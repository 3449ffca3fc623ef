// Mark live tokens revoked; returns the ones that were live (for the journal).
UNWIND $hashes AS hash
MATCH (t:ApiToken {hash: hash})
WHERE t.revoked_at IS NULL
SET t.revoked_at = $at
RETURN t.hash AS hash, t.user AS user, t.role AS role
ORDER BY hash
