-- Rework (返工) is counted per case for the rework-rate indicator.
ALTER TABLE cases ADD COLUMN rework_count BIGINT NOT NULL DEFAULT 0;
