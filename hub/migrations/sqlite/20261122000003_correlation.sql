-- Correlation looks for open cases of a category near a place, by their latest event.
ALTER TABLE cases ADD COLUMN last_event_at BIGINT NOT NULL DEFAULT 0;
UPDATE cases SET last_event_at = opened_at;
CREATE INDEX cases_correlation ON cases (category, last_event_at);
