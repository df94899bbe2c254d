-- Deferrals (缓办 until a date, 挂账 on the long-running ledger until the centre resumes it):
-- the department holding a case asks with a reason, the centre decides. While one is in
-- effect the case's deadline is parked (paused_due_at, paused_warn_at; due_at and warn_at
-- are empty, so no alarm fires and the case is not due to close), and on resuming the
-- deadline gets back the time that was left on the limit's clock.
CREATE TABLE deferrals (
    id            TEXT PRIMARY KEY,
    case_id       TEXT NOT NULL REFERENCES cases (id),
    department    TEXT NOT NULL,
    kind          TEXT NOT NULL,
    until_at      BIGINT,
    reason        TEXT NOT NULL,
    requested_by  TEXT NOT NULL,
    requested_at  BIGINT NOT NULL,
    state         TEXT NOT NULL,
    decided_by    TEXT,
    decided_at    BIGINT,
    decision_note TEXT,
    ended_by      TEXT,
    ended_at      BIGINT,
    end_note      TEXT
);
CREATE INDEX deferrals_case ON deferrals (case_id, requested_at);

ALTER TABLE cases ADD COLUMN deferral_kind TEXT;
ALTER TABLE cases ADD COLUMN deferred_at BIGINT;
ALTER TABLE cases ADD COLUMN deferred_until BIGINT;
ALTER TABLE cases ADD COLUMN paused_due_at BIGINT;
ALTER TABLE cases ADD COLUMN paused_warn_at BIGINT;
ALTER TABLE cases ADD COLUMN deferrals_approved BIGINT NOT NULL DEFAULT 0;
CREATE INDEX cases_deferred ON cases (deferral_kind, opened_at) WHERE deferral_kind IS NOT NULL;
CREATE INDEX cases_deferred_until ON cases (deferred_until) WHERE deferred_until IS NOT NULL;

-- Appeals (申诉): the department disputes an assessment of its case (found overdue, sent
-- back for rework); the centre upholds or rejects it. An upheld appeal excuses the case in
-- the indicators: on time after all, or one rework fewer.
CREATE TABLE appeals (
    id            TEXT PRIMARY KEY,
    case_id       TEXT NOT NULL REFERENCES cases (id),
    department    TEXT NOT NULL,
    subject       TEXT NOT NULL,
    reason        TEXT NOT NULL,
    requested_by  TEXT NOT NULL,
    requested_at  BIGINT NOT NULL,
    state         TEXT NOT NULL,
    decided_by    TEXT,
    decided_at    BIGINT,
    decision_note TEXT
);
CREATE INDEX appeals_case ON appeals (case_id, requested_at);

ALTER TABLE cases ADD COLUMN overdue_excused BIGINT NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN reworks_excused BIGINT NOT NULL DEFAULT 0;
