-- Escalation up the levels: an overdue case goes to its supervising department (level 1);
-- each further span of its time limit still overdue takes it one level up the department
-- list (the supervisor's parent, and so on), until the top.
ALTER TABLE cases ADD COLUMN escalation_level BIGINT NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN next_escalation_at BIGINT;
CREATE INDEX cases_next_escalation ON cases (next_escalation_at) WHERE next_escalation_at IS NOT NULL;
UPDATE cases SET escalation_level = 1 WHERE escalated_to IS NOT NULL;
