-- Tasks from the hub for patrol terminals: published until the terminal acknowledges them.
CREATE TABLE downlink_tasks (
    task_id     TEXT PRIMARY KEY,
    terminal_id TEXT NOT NULL,
    body        TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'sending',
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX downlink_tasks_due ON downlink_tasks (state, next_at);

-- Terminals' answers to tasks, until the hub has them.
CREATE TABLE task_acks (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    terminal_id TEXT NOT NULL,
    body        TEXT NOT NULL
);
