-- The case queue and the indicators at a million cases. Each sort order has an index in
-- exactly its order (expressions included), also within a state, so a page reads only its
-- rows; a category within a place and the overdue cases are counted from an index alone;
-- a period of opening times is a range.
CREATE INDEX cases_opened ON cases (opened_at, id);
CREATE INDEX cases_state_opened ON cases (state, opened_at);
CREATE INDEX cases_due_state ON cases (due_at, state);
CREATE INDEX cases_category_opened ON cases (category, opened_at, id, area_code);
CREATE INDEX cases_due_order ON cases ((COALESCE(due_at, 9223372036854775807)), id);
CREATE INDEX cases_risk_order ON cases (
    (CASE severity WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END), opened_at DESC, id DESC
);
CREATE INDEX cases_state_risk_order ON cases (
    state, (CASE severity WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END), opened_at DESC, id DESC
);
