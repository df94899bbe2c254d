-- When a case was last dispatched and when it was closed, for the indicators (handling time,
-- on-time closure); filled in from the timeline for the cases already there.
ALTER TABLE cases ADD COLUMN dispatched_at BIGINT;
ALTER TABLE cases ADD COLUMN closed_at BIGINT;
UPDATE cases SET dispatched_at = (
    SELECT MAX(t.at) FROM case_timeline t
    WHERE t.case_id = cases.id AND (t.action = 'dispatch' OR (t.action = 'open' AND t.to_state = 'dispatched'))
);
UPDATE cases SET closed_at = (
    SELECT MAX(t.at) FROM case_timeline t
    WHERE t.case_id = cases.id AND t.action IN ('close', 'force_close')
) WHERE state IN ('closed', 'force_closed');
