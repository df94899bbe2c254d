-- A password someone else set (an imported roster's, an administrator's reset) is
-- temporary: until its user has chosen their own, the user may do nothing else.
ALTER TABLE users ADD COLUMN password_temporary_at BIGINT;
