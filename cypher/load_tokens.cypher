// Restore: API tokens exactly as they were (hashes, expiry, last use, revocation).
UNWIND $rows AS row
CREATE (t:ApiToken)
SET t = row
