//! Counting cases for the statistics page (sums are cast to BIGINT: PostgreSQL widens a
//! BIGINT sum to NUMERIC): grouped counts straight from SQL, which
//! [`crate::engine::summary`] turns into totals, groupings and a daily trend.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{CaseVisibility, Store, StoreError, to_ms};
use crate::engine::summary::{CaseGroup, DayCount};

impl Store {
    /// Cases opened in `[from, to)` that the caller may see, counted by department,
    /// category, grid and state; `overdue` counts those still open past their deadline at
    /// `now`, `due_to_close` those registered that were closed or whose deadline passed by
    /// the end of the period (or `now`, if sooner). Days for the trend start at midnight `utc_offset_s` east of UTC.
    pub async fn count_cases(
        &self,
        visibility: &CaseVisibility,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
        utc_offset_s: i32,
    ) -> Result<(Vec<CaseGroup>, Vec<DayCount>), StoreError> {
        let department = match visibility {
            CaseVisibility::All => None,
            CaseVisibility::Department(d) => Some(d.clone()),
        };
        let groups = sqlx::query(
            "SELECT department, category, grid, SUBSTR(area_code, 1, 9) AS township, state, COUNT(*) AS n, \
             CAST(SUM(CASE WHEN state NOT IN ('reported', 'void') \
                 AND (closed_at IS NOT NULL OR (due_at IS NOT NULL AND due_at <= $5)) THEN 1 ELSE 0 END) AS BIGINT) AS due_to_close, \
             CAST(SUM(CASE WHEN closed_at IS NOT NULL AND (due_at IS NULL OR closed_at <= due_at OR overdue_excused = 1) THEN 1 ELSE 0 END) AS BIGINT) AS on_time, \
             CAST(SUM(CASE WHEN rework_count > reworks_excused THEN 1 ELSE 0 END) AS BIGINT) AS reworked, \
             CAST(SUM(CASE WHEN closed_at IS NOT NULL AND dispatched_at IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) AS timed, \
             CAST(SUM(CASE WHEN closed_at IS NOT NULL AND dispatched_at IS NOT NULL \
                 THEN closed_at - dispatched_at ELSE 0 END) AS BIGINT) AS handle_ms, \
             CAST(SUM(CASE WHEN dispatched_at IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) AS dispatched, \
             CAST(SUM(CASE WHEN first_dispatched_at IS NOT NULL AND dispatch_due_at IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) AS dispatch_timed, \
             CAST(SUM(CASE WHEN first_dispatched_at <= dispatch_due_at THEN 1 ELSE 0 END) AS BIGINT) AS dispatched_on_time, \
             CAST(SUM(CASE WHEN handled_at IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) AS handled, \
             CAST(SUM(CASE WHEN handled_at IS NOT NULL AND (due_at IS NULL OR handled_at <= due_at OR overdue_excused = 1) THEN 1 ELSE 0 END) AS BIGINT) AS handled_on_time, \
             CAST(SUM(CASE WHEN extensions_approved > 0 THEN 1 ELSE 0 END) AS BIGINT) AS extended, \
             CAST(SUM(CASE WHEN satisfaction IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) AS rated, \
             CAST(SUM(COALESCE(satisfaction, 0)) AS BIGINT) AS satisfaction_sum, \
             CAST(SUM(CASE WHEN due_at IS NOT NULL AND due_at < $3 \
                 AND state NOT IN ('closed', 'force_closed', 'void') THEN 1 ELSE 0 END) AS BIGINT) AS overdue, \
             CAST(SUM(rework_count - reworks_excused) AS BIGINT) AS reworks, \
             CAST(SUM(CASE WHEN deferral_kind IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) AS deferred \
             FROM cases WHERE opened_at >= $1 AND opened_at < $2 \
             AND ($4 IS NULL OR department = $4) \
             GROUP BY department, category, grid, SUBSTR(area_code, 1, 9), state",
        )
        .bind(to_ms(from))
        .bind(to_ms(to))
        .bind(to_ms(now))
        .bind(department.clone())
        .bind(to_ms(to.min(now)))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(CaseGroup {
                department: r.try_get("department")?,
                category: r.try_get("category")?,
                grid: r.try_get("grid")?,
                township: r
                    .try_get::<Option<String>, _>("township")?
                    .filter(|t| t.len() == 9),
                state: r.try_get("state")?,
                cases: r.try_get("n")?,
                overdue: r.try_get("overdue")?,
                reworks: r.try_get("reworks")?,
                due_to_close: r.try_get("due_to_close")?,
                on_time: r.try_get("on_time")?,
                reworked: r.try_get("reworked")?,
                timed: r.try_get("timed")?,
                handle_ms: r.try_get("handle_ms")?,
                dispatched: r.try_get("dispatched")?,
                dispatch_timed: r.try_get("dispatch_timed")?,
                dispatched_on_time: r.try_get("dispatched_on_time")?,
                handled: r.try_get("handled")?,
                deferred: r.try_get("deferred")?,
                handled_on_time: r.try_get("handled_on_time")?,
                extended: r.try_get("extended")?,
                rated: r.try_get("rated")?,
                satisfaction_sum: r.try_get("satisfaction_sum")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let day_ms = 86_400_000_i64;
        let offset_ms = i64::from(utc_offset_s) * 1000;
        let days = sqlx::query(
            "SELECT (opened_at + $3) / $4 AS day, COUNT(*) AS n FROM cases \
             WHERE opened_at >= $1 AND opened_at < $2 AND ($5 IS NULL OR department = $5) \
             GROUP BY 1 ORDER BY 1",
        )
        .bind(to_ms(from))
        .bind(to_ms(to))
        .bind(offset_ms)
        .bind(day_ms)
        .bind(department)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(DayCount {
                day_number: r.try_get("day")?,
                cases: r.try_get("n")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok((groups, days))
    }
}
