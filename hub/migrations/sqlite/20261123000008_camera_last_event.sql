-- When each camera last raised an event, as its gateway reports it.
ALTER TABLE cameras ADD COLUMN last_event_at BIGINT;
