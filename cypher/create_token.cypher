// Store an API token's hash with its user and role.
CREATE (:ApiToken {hash: $hash, user: $user, role: $role, created_at: $at})
