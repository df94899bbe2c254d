-- The deadline clock: when to warn (a fraction of the time limit), when the warning and the
-- overdue alarm were raised, and where an overdue case was escalated; supervision notices
-- (督办) to departments, with their replies.
ALTER TABLE cases ADD COLUMN warn_at BIGINT;
ALTER TABLE cases ADD COLUMN warned_at BIGINT;
ALTER TABLE cases ADD COLUMN overdue_at BIGINT;
ALTER TABLE cases ADD COLUMN escalated_to TEXT;
CREATE INDEX cases_clock ON cases (state, warn_at, due_at);

CREATE TABLE supervision (
    id         TEXT PRIMARY KEY,
    case_id    TEXT NOT NULL REFERENCES cases (id),
    kind       TEXT NOT NULL,
    department TEXT NOT NULL,
    message    TEXT NOT NULL,
    issued_by  TEXT NOT NULL,
    issued_at  BIGINT NOT NULL,
    reply      TEXT,
    replied_by TEXT,
    replied_at BIGINT
);
CREATE INDEX supervision_case ON supervision (case_id, issued_at);
CREATE INDEX supervision_open ON supervision (department, replied_at);
