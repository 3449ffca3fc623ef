// An API token by its hash (revoked and expired ones too: the caller says why it is refused).
MATCH (t:ApiToken {hash: $hash})
RETURN t.hash AS hash, t.user AS user, t.role AS role, t.created_at AS created_at,
       t.expires_at AS expires_at, t.last_used_at AS last_used_at, t.revoked_at AS revoked_at
