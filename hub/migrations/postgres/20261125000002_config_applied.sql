-- What each gateway reports of the registry's configuration: the revision it runs, and why
-- it could not apply a newer one.
ALTER TABLE gateways ADD COLUMN config_applied BIGINT;
ALTER TABLE gateways ADD COLUMN config_error TEXT;
