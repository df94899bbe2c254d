-- Gateways registered through the API: the township each serves, and when its token was
-- revoked (a revoked gateway's token_hash matches no token).
ALTER TABLE gateways ADD COLUMN area_code TEXT;
ALTER TABLE gateways ADD COLUMN revoked_at BIGINT;
