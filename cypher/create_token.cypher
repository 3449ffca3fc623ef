// Store an API token's hash with its user, role and optional expiry.
CREATE (:ApiToken {hash: $hash, user: $user, role: $role, created_at: $at, expires_at: $expires_at})
