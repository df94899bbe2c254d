-- The longest a gateway's rule stays silent while an episode lasts: an episode with no
-- event for twice that is shown as silent (its gateway may have restarted and forgotten it).
ALTER TABLE episodes ADD COLUMN refresh_s BIGINT;
