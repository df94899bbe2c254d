-- Extensions (延期): a department asks for more time with a reason, the centre decides; an
-- approved one moves the deadline. Callbacks (回访): after closing, the centre asks the
-- reporter how it went (satisfaction 1–5). Both feed the indicators through counters on
-- the case.
CREATE TABLE extensions (
    id            TEXT PRIMARY KEY,
    case_id       TEXT NOT NULL REFERENCES cases (id),
    department    TEXT NOT NULL,
    extra         TEXT NOT NULL,
    reason        TEXT NOT NULL,
    requested_by  TEXT NOT NULL,
    requested_at  BIGINT NOT NULL,
    state         TEXT NOT NULL,
    decided_by    TEXT,
    decided_at    BIGINT,
    decision_note TEXT,
    new_due_at    BIGINT
);
CREATE INDEX extensions_case ON extensions (case_id, requested_at);

CREATE TABLE callbacks (
    id           TEXT PRIMARY KEY,
    case_id      TEXT NOT NULL REFERENCES cases (id),
    satisfaction BIGINT NOT NULL,
    result       TEXT NOT NULL,
    called_by    TEXT NOT NULL,
    called_at    BIGINT NOT NULL
);
CREATE INDEX callbacks_case ON callbacks (case_id, called_at);

ALTER TABLE cases ADD COLUMN extensions_approved BIGINT NOT NULL DEFAULT 0;
-- The latest callback's satisfaction, if any.
ALTER TABLE cases ADD COLUMN satisfaction BIGINT;
