-- What each gateway last reported about itself, its patrol terminals, and the tasks the
-- centre sends to those terminals.
ALTER TABLE gateways ADD COLUMN version TEXT;
ALTER TABLE gateways ADD COLUMN outbox_pending BIGINT;
ALTER TABLE gateways ADD COLUMN reported_at BIGINT;

CREATE TABLE terminals (
    id          TEXT PRIMARY KEY,
    gateway_id  TEXT NOT NULL REFERENCES gateways (id),
    presence    TEXT NOT NULL,
    since       BIGINT NOT NULL,
    lat         DOUBLE PRECISION,
    lon         DOUBLE PRECISION,
    position_at BIGINT,
    reported_at BIGINT NOT NULL
);

CREATE TABLE tasks (
    id          TEXT PRIMARY KEY,
    case_id     TEXT NOT NULL REFERENCES cases (id),
    terminal_id TEXT NOT NULL,
    kind        TEXT NOT NULL,
    title       TEXT NOT NULL,
    note        TEXT,
    lat         DOUBLE PRECISION NOT NULL,
    lon         DOUBLE PRECISION NOT NULL,
    state       TEXT NOT NULL,
    reply       TEXT,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX tasks_terminal_open ON tasks (terminal_id, state);
CREATE INDEX tasks_case ON tasks (case_id);
