// The user and role of an API token hash.
MATCH (t:ApiToken {hash: $hash})
RETURN t.user AS user, t.role AS role
