-- Each gateway's cameras as its last report described them.
CREATE TABLE cameras (
    gateway_id    TEXT NOT NULL REFERENCES gateways (id),
    camera_id     TEXT NOT NULL,
    name          TEXT NOT NULL,
    state         TEXT NOT NULL,
    fps           DOUBLE PRECISION NOT NULL,
    last_frame_at BIGINT,
    reconnects    BIGINT NOT NULL,
    events_raised BIGINT NOT NULL,
    last_error    TEXT,
    reported_at   BIGINT NOT NULL,
    PRIMARY KEY (gateway_id, camera_id)
);
