-- Automatic verification (自动核查): when a department reports a camera-detected hazard
-- handled, the hub asks the camera's gateway to look again; the answer is kept here and
-- on the case's timeline.
CREATE TABLE reinspections (
    id           TEXT PRIMARY KEY,
    case_id      TEXT NOT NULL REFERENCES cases (id),
    gateway_id   TEXT NOT NULL,
    camera_id    TEXT NOT NULL,
    category     TEXT NOT NULL,
    bbox         TEXT,
    requested_at BIGINT NOT NULL,
    answered_at  BIGINT,
    outcome      TEXT,
    checked_at   BIGINT,
    frames       BIGINT,
    score        DOUBLE PRECISION,
    snapshot     TEXT,
    note         TEXT
);
CREATE INDEX reinspections_open ON reinspections (gateway_id, answered_at);
CREATE INDEX reinspections_case ON reinspections (case_id);
