-- The device registry (设备台账): the cameras each gateway should run, as technicians enter
-- them. `spec` is the camera's settings as JSON (protocol::device::CameraSpec) without its
-- password; the password is sealed apart (see hub/src/sealing.rs) and never leaves the hub
-- except in the owning gateway's configuration document.
CREATE TABLE camera_registry (
    id              TEXT PRIMARY KEY,
    gateway_id      TEXT NOT NULL REFERENCES gateways (id),
    spec            TEXT NOT NULL,
    password_sealed TEXT,
    sub_url         TEXT,
    asset_code      TEXT,
    updated_at      BIGINT NOT NULL,
    updated_by      TEXT NOT NULL
);
CREATE INDEX camera_registry_gateway ON camera_registry (gateway_id, id);

-- Grows with every change to a gateway's cameras: its configuration document's version.
ALTER TABLE gateways ADD COLUMN config_revision BIGINT NOT NULL DEFAULT 0;

-- Every change to devices: who did what to which device, when; never a secret.
CREATE TABLE device_audit (
    id     TEXT PRIMARY KEY,
    at     BIGINT NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX device_audit_at ON device_audit (at, id);
