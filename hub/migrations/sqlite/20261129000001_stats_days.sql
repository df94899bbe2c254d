-- The statistics page's daily roll-up. Every change to a column the indicators read moves
-- the case's stats_rev on (a trigger, so no writer can forget it); a local day's count of
-- cases and sum of stats_rev, read from an index alone, tell whether the tally kept for the
-- day in stats_days still stands.
ALTER TABLE cases ADD COLUMN stats_rev BIGINT NOT NULL DEFAULT 0;
DROP INDEX cases_opened;
CREATE INDEX cases_opened ON cases (opened_at, id, stats_rev);
CREATE TRIGGER cases_stats_rev AFTER UPDATE OF
    department, category, grid, area_code, state, opened_at, closed_at, due_at,
    overdue_excused, rework_count, reworks_excused, dispatched_at, first_dispatched_at,
    dispatch_due_at, handled_at, extensions_approved, satisfaction, deferral_kind
ON cases
BEGIN
    UPDATE cases SET stats_rev = OLD.stats_rev + 1 WHERE id = NEW.id;
END;

-- One local day's cases (days counted from 1970-01-01 at midnight utc_offset_s east of
-- UTC), tallied as of the day's case count and stats_rev sum.
CREATE TABLE stats_days (
    utc_offset_s BIGINT NOT NULL,
    day          BIGINT NOT NULL,
    cases        BIGINT NOT NULL,
    rev_sum      BIGINT NOT NULL,
    tally        TEXT NOT NULL,
    PRIMARY KEY (utc_offset_s, day)
);
