// Every API token (hashes only), oldest first.
MATCH (t:ApiToken)
RETURN t.hash AS hash, t.user AS user, t.role AS role, t.created_at AS created_at,
       t.expires_at AS expires_at, t.last_used_at AS last_used_at, t.revoked_at AS revoked_at
ORDER BY created_at, hash
