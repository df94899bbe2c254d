-- Terminals that hold a persistent MQTT session with this gateway (clean session off), so a
-- restarted gateway answers their reconnect with "session present" and they keep, and
-- resend, the messages not yet acknowledged.
CREATE TABLE terminal_sessions (
    terminal_id TEXT PRIMARY KEY,
    since       INTEGER NOT NULL
);
