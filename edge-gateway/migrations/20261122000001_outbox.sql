-- The gateway's outbox: events waiting for the hub's acknowledgement, and their evidence.
CREATE TABLE outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    priority   INTEGER NOT NULL,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX outbox_order ON outbox (priority DESC, seq);

CREATE TABLE blobs (
    sha256       TEXT PRIMARY KEY,
    content_type TEXT NOT NULL,
    data         BLOB NOT NULL,
    uploaded     INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE outbox_blobs (
    event_id TEXT NOT NULL,
    sha256   TEXT NOT NULL,
    PRIMARY KEY (event_id, sha256)
);
CREATE INDEX outbox_blobs_sha ON outbox_blobs (sha256);

-- Events the hub refused for good, kept for a technician to inspect.
CREATE TABLE dead_letter (
    id         TEXT PRIMARY KEY,
    body       TEXT NOT NULL,
    reason     TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
