-- Photos people add to a case (a department's before/after photos of the fix, …); the
-- image itself is a blob like any evidence.
CREATE TABLE case_attachments (
    case_id      TEXT NOT NULL REFERENCES cases (id),
    sha256       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    uploaded_by  TEXT NOT NULL,
    uploaded_at  BIGINT NOT NULL,
    PRIMARY KEY (case_id, sha256)
);
CREATE INDEX case_attachments_sha ON case_attachments (sha256);
