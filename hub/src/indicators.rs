//! The statistics page's numbers for a period of local days. Across all departments each
//! day comes from the tally kept for it where that still stands (no case of the day
//! changed, no deadline fell due since; [`crate::engine::tally`]) and is counted again
//! where not, then kept for the next time; a department's own numbers, a twentieth or so of
//! the cases, are counted afresh.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, TimeZone, Utc};

use crate::engine::summary::{self, Summary};
use crate::engine::tally::{self, DayMark, Reading, Tally};
use crate::store::{CaseVisibility, Store, StoreError};

/// The numbers for the cases opened on the local days `first..=last` that the caller may
/// see, with deadlines counted at `now`.
pub async fn summary(
    store: &Store,
    visibility: &CaseVisibility,
    first: NaiveDate,
    last: NaiveDate,
    now: DateTime<Utc>,
    offset: FixedOffset,
) -> Result<Summary, StoreError> {
    let (first_day, last_day) = (day_number(first), day_number(last));
    let begin = day_start(first_day, offset);
    let end = day_start(last_day + 1, offset);
    let counting = Counting {
        store,
        visibility,
        now,
        close_by: end.min(now),
        offset,
    };
    let days = match visibility {
        CaseVisibility::Department(_) => counting
            .count(begin, end)
            .await?
            .into_iter()
            .map(|t| (t, Reading::AS_COUNTED))
            .collect(),
        CaseVisibility::All => counting.with_kept(first_day, last_day).await?,
    };
    Ok(summary::summarise(&days, first, last))
}

struct Counting<'a> {
    store: &'a Store,
    visibility: &'a CaseVisibility,
    now: DateTime<Utc>,
    /// The end of the period, or `now` if sooner: what is due to close is due by then.
    close_by: DateTime<Utc>,
    offset: FixedOffset,
}

impl Counting<'_> {
    /// The days opened in `[from, to)`, counted now.
    async fn count(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Tally>, StoreError> {
        self.store
            .tally_days(
                self.visibility,
                from,
                to,
                self.now,
                self.close_by,
                self.offset.local_minus_utc(),
            )
            .await
    }

    /// The days `first..=last` from their kept tallies, those that no longer stand counted
    /// again and kept.
    async fn with_kept(&self, first: i64, last: i64) -> Result<Vec<(Tally, Reading)>, StoreError> {
        let offset_s = self.offset.local_minus_utc();
        // The marks are read before anything is counted: a change made meanwhile leaves a
        // tally kept under an older mark, counted again next time, never the reverse.
        let marks = self.store.day_marks(first, last, offset_s).await?;
        let kept = self.store.kept_tallies(offset_s, first, last).await?;
        let (mut days, recount) = tally::plan(
            first,
            last,
            &marks,
            kept,
            self.now.timestamp_millis(),
            self.close_by.timestamp_millis(),
        );
        let mut fresh: Vec<(DayMark, Tally)> = Vec::new();
        for (a, b) in tally::runs(&recount) {
            for t in self
                .count(day_start(a, self.offset), day_start(b + 1, self.offset))
                .await?
            {
                if let Some(mark) = marks.iter().find(|m| m.day == t.day) {
                    fresh.push((*mark, t));
                }
            }
        }
        if let Err(e) = self.store.keep_tallies(offset_s, &fresh).await {
            // The numbers are right all the same; the next request counts these days again.
            tracing::warn!(error = %e, "keeping the statistics' daily tallies failed");
        }
        days.extend(fresh.into_iter().map(|(_, t)| (t, Reading::AS_COUNTED)));
        Ok(days)
    }
}

/// Days since 1970-01-01.
fn day_number(day: NaiveDate) -> i64 {
    (day - NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date")).num_days()
}

/// The instant local day `n` begins.
fn day_start(n: i64, offset: FixedOffset) -> DateTime<Utc> {
    let midnight = NaiveDate::from_ymd_opt(1970, 1, 1)
        .expect("a valid date")
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        + Duration::days(n);
    offset
        .from_local_datetime(&midnight)
        .single()
        .expect("a fixed offset has no gaps")
        .to_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_days_begin_at_local_midnight() {
        let east8 = FixedOffset::east_opt(8 * 3600).unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        assert_eq!(
            day_start(day_number(day), east8).to_rfc3339(),
            "2026-11-21T16:00:00+00:00"
        );
        // The store's day of an instant: (ms + offset) / day.
        let start = day_start(day_number(day), east8).timestamp_millis();
        assert_eq!((start + 8 * 3_600_000) / 86_400_000, day_number(day));
        assert_eq!(
            (start - 1 + 8 * 3_600_000) / 86_400_000,
            day_number(day) - 1
        );
    }
}
