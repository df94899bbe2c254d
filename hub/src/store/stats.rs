//! Counting cases for the statistics page: the cases of a period read once and added up into
//! a tally per local day ([`crate::engine::tally`]); the tallies kept in `stats_days`, and
//! each day's mark (case count and `stats_rev` sum) that tells whether they still stand.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use sqlx::{AssertSqlSafe, Row};

use super::{CaseVisibility, Store, StoreError, to_ms};
use crate::engine::tally::{CaseFacts, DayMark, Tally};

const DAY_MS: i64 = 86_400_000;

impl Store {
    /// The local days (midnight `utc_offset_s` east of UTC) of the cases opened in
    /// `[from, to)` that the caller may see, tallied with deadlines counted at `now`
    /// (overdue) and `close_by` (due to close). The rows stream through; only the tallies
    /// are held.
    pub async fn tally_days(
        &self,
        visibility: &CaseVisibility,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
        close_by: DateTime<Utc>,
        utc_offset_s: i32,
    ) -> Result<Vec<Tally>, StoreError> {
        // One statement per visibility, so that a department's reads its index.
        let columns = "SELECT opened_at, department, category, grid, area_code, state, due_at, closed_at, \
             dispatched_at, first_dispatched_at, dispatch_due_at, handled_at, overdue_excused, \
             rework_count, reworks_excused, extensions_approved, satisfaction, deferral_kind \
             FROM cases WHERE opened_at >= $1 AND opened_at < $2";
        let sql = match visibility {
            CaseVisibility::All => columns.to_owned(),
            CaseVisibility::Department(_) => format!("{columns} AND department = $3"),
        };
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind(to_ms(from))
            .bind(to_ms(to));
        if let CaseVisibility::Department(d) = visibility {
            query = query.bind(d.clone());
        }
        let mut rows = query.fetch(&self.pool);
        let offset_ms = i64::from(utc_offset_s) * 1000;
        let mut days: BTreeMap<i64, Tally> = BTreeMap::new();
        while let Some(r) = rows.try_next().await? {
            let day = (r.try_get::<i64, _>("opened_at")? + offset_ms).div_euclid(DAY_MS);
            let case = CaseFacts {
                department: r.try_get("department")?,
                category: r.try_get("category")?,
                grid: r.try_get("grid")?,
                area_code: r.try_get("area_code")?,
                state: r.try_get("state")?,
                due_at: r.try_get("due_at")?,
                closed_at: r.try_get("closed_at")?,
                dispatched_at: r.try_get("dispatched_at")?,
                first_dispatched_at: r.try_get("first_dispatched_at")?,
                dispatch_due_at: r.try_get("dispatch_due_at")?,
                handled_at: r.try_get("handled_at")?,
                overdue_excused: r.try_get::<i64, _>("overdue_excused")? == 1,
                rework_count: r.try_get("rework_count")?,
                reworks_excused: r.try_get("reworks_excused")?,
                extensions_approved: r.try_get("extensions_approved")?,
                satisfaction: r.try_get("satisfaction")?,
                deferred: r.try_get::<Option<String>, _>("deferral_kind")?.is_some(),
            };
            days.entry(day)
                .or_insert_with(|| Tally::empty(day, to_ms(now), to_ms(close_by)))
                .add(&case);
        }
        Ok(days.into_values().collect())
    }

    /// The mark of each local day `first..=last` (midnight `utc_offset_s` east of UTC) with
    /// cases, read from the `cases_opened` index alone. Counting each day's range on its own
    /// is cheaper than grouping the period's index entries by day.
    pub async fn day_marks(
        &self,
        first: i64,
        last: i64,
        utc_offset_s: i32,
    ) -> Result<Vec<DayMark>, StoreError> {
        let range = format!(
            "FROM cases WHERE opened_at >= d * {DAY_MS} - $3 AND opened_at < (d + 1) * {DAY_MS} - $3"
        );
        let sql = format!(
            "WITH RECURSIVE days(d) AS (SELECT CAST($1 AS BIGINT) UNION ALL SELECT d + 1 FROM days WHERE d < $2) \
             SELECT day, n, rev_sum FROM (SELECT d AS day, (SELECT COUNT(*) {range}) AS n, \
             (SELECT CAST(SUM(stats_rev) AS BIGINT) {range}) AS rev_sum FROM days) AS marks WHERE n > 0"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(first)
            .bind(last)
            .bind(i64::from(utc_offset_s) * 1000)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(DayMark {
                    day: r.try_get("day")?,
                    cases: r.try_get("n")?,
                    rev_sum: r.try_get("rev_sum")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// The tallies kept for the days `first..=last`, with the marks they were taken at. A
    /// tally that no longer parses (written by another version) is left out, to be taken
    /// again.
    pub async fn kept_tallies(
        &self,
        utc_offset_s: i32,
        first: i64,
        last: i64,
    ) -> Result<Vec<(DayMark, Tally)>, StoreError> {
        let rows = sqlx::query(
            "SELECT day, cases, rev_sum, tally FROM stats_days \
             WHERE utc_offset_s = $1 AND day >= $2 AND day <= $3",
        )
        .bind(i64::from(utc_offset_s))
        .bind(first)
        .bind(last)
        .fetch_all(&self.pool)
        .await?;
        let mut kept = Vec::with_capacity(rows.len());
        for r in &rows {
            let mark = DayMark {
                day: r.try_get("day")?,
                cases: r.try_get("cases")?,
                rev_sum: r.try_get("rev_sum")?,
            };
            let text: String = r.try_get("tally")?;
            match serde_json::from_str::<Tally>(&text) {
                Ok(tally) if tally.day == mark.day => kept.push((mark, tally)),
                _ => tracing::debug!(day = mark.day, "kept tally unreadable; counting again"),
            }
        }
        Ok(kept)
    }

    /// Keeps `tallies`, each with the mark of its day when it was taken, in place of those
    /// kept before.
    pub async fn keep_tallies(
        &self,
        utc_offset_s: i32,
        tallies: &[(DayMark, Tally)],
    ) -> Result<(), StoreError> {
        if tallies.is_empty() {
            return Ok(());
        }
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        for (mark, tally) in tallies {
            sqlx::query(
                "INSERT INTO stats_days (utc_offset_s, day, cases, rev_sum, tally) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (utc_offset_s, day) DO UPDATE \
                 SET cases = excluded.cases, rev_sum = excluded.rev_sum, tally = excluded.tally",
            )
            .bind(i64::from(utc_offset_s))
            .bind(mark.day)
            .bind(mark.cases)
            .bind(mark.rev_sum)
            .bind(
                serde_json::to_string(tally).map_err(|e| {
                    StoreError::Conflict(format!("a tally not written as JSON: {e}"))
                })?,
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
