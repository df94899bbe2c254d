-- Hub schema, PostgreSQL flavour. Times are unix milliseconds (BIGINT); ids and JSON are TEXT,
-- so the same queries run through sqlx::Any on SQLite and PostgreSQL.

CREATE TABLE gateways (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT
);

CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL,
    department TEXT,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE blobs (
    sha256       TEXT PRIMARY KEY,
    content_type TEXT NOT NULL,
    bytes        BIGINT NOT NULL,
    data         BYTEA NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE TABLE cases (
    id                TEXT PRIMARY KEY,
    title             TEXT NOT NULL,
    category          TEXT NOT NULL,
    state             TEXT NOT NULL,
    queue             TEXT NOT NULL,
    severity          TEXT NOT NULL,
    department        TEXT,
    supervisor        TEXT,
    time_limit        TEXT,
    condition_text    TEXT,
    closing_condition TEXT,
    due_at            BIGINT,
    lat               DOUBLE PRECISION NOT NULL,
    lon               DOUBLE PRECISION NOT NULL,
    area_code         TEXT,
    grid              TEXT,
    opened_at         BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX cases_department ON cases (department, opened_at);
CREATE INDEX cases_queue ON cases (queue, state);

CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    gateway_id  TEXT NOT NULL,
    source_kind TEXT NOT NULL,
    source_id   TEXT NOT NULL,
    rule        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    category    TEXT NOT NULL,
    severity    TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    body        TEXT NOT NULL,
    case_id     TEXT NOT NULL REFERENCES cases (id)
);
CREATE INDEX events_case ON events (case_id);
CREATE INDEX events_received ON events (received_at);

CREATE TABLE event_evidence (
    event_id TEXT NOT NULL REFERENCES events (id),
    sha256   TEXT NOT NULL,
    kind     TEXT NOT NULL,
    PRIMARY KEY (event_id, sha256)
);
CREATE INDEX event_evidence_sha ON event_evidence (sha256);

CREATE TABLE case_timeline (
    id         TEXT PRIMARY KEY,
    case_id    TEXT NOT NULL REFERENCES cases (id),
    at         BIGINT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    from_state TEXT,
    to_state   TEXT NOT NULL,
    note       TEXT NOT NULL
);
CREATE INDEX case_timeline_case ON case_timeline (case_id, at);
