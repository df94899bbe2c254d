-- Episodes: a lasting condition a gateway's rule follows from its start (seq 0) through
-- its updates to its end. The hub applies an episode's events in seq order: `last_seq` is
-- the latest applied, and an event that arrives later with a lower seq is kept on the case
-- as evidence but changes nothing. `ended_at` is set once the end is applied.
CREATE TABLE episodes (
    gateway_id  TEXT NOT NULL,
    id          TEXT NOT NULL,
    source_kind TEXT NOT NULL,
    source_id   TEXT NOT NULL,
    rule        TEXT NOT NULL,
    case_id     TEXT NOT NULL REFERENCES cases (id),
    last_seq    BIGINT NOT NULL,
    severity    TEXT NOT NULL,
    started_at  BIGINT,
    updated_at  BIGINT NOT NULL,
    ended_at    BIGINT,
    PRIMARY KEY (gateway_id, id)
);
CREATE INDEX episodes_case ON episodes (case_id);
