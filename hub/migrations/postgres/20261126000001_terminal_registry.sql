-- Patrol terminals in the device registry (设备台账): the gateway that admits each, who
-- carries it and which grid they patrol, and the SHA-256 of its secret. The secret itself
-- is shown once, when the hub issues it, and stored nowhere.
CREATE TABLE terminal_registry (
    id            TEXT PRIMARY KEY,
    gateway_id    TEXT NOT NULL REFERENCES gateways (id),
    holder        TEXT,
    grid          TEXT,
    secret_sha256 TEXT NOT NULL,
    updated_at    BIGINT NOT NULL,
    updated_by    TEXT NOT NULL
);
CREATE INDEX terminal_registry_gateway ON terminal_registry (gateway_id, id);
