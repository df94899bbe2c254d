-- For the on-time dispatch and on-time handling indicators: by when the centre should have
-- dispatched a case (its opening plus deadlines.dispatch_limit), when it was first
-- dispatched, and when its handling was (last) reported. Cases stored before have no
-- dispatch deadline and count in neither indicator's dispatch figures.
ALTER TABLE cases ADD COLUMN dispatch_due_at BIGINT;
ALTER TABLE cases ADD COLUMN first_dispatched_at BIGINT;
ALTER TABLE cases ADD COLUMN handled_at BIGINT;
UPDATE cases SET first_dispatched_at = dispatched_at;
