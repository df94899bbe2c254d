//! The statistics' daily roll-up: a kept tally serves its day only while it counts right.
//! Each test compares the numbers read through the kept tallies with the same numbers
//! counted afresh (the kept tallies dropped), after each kind of change.

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use hub::engine::summary::Summary;
use hub::indicators;
use hub::store::CaseVisibility;
use sqlx::AnyPool;

use crate::on_both_backends;
use crate::support::TestHub;

const HOUR: i64 = 3_600_000;

fn east8() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap()
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, d).unwrap()
}

fn day_number(d: NaiveDate) -> i64 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days()
}

/// 09:00 local on 2026-03-`d`, in ms.
fn morning(d: u32) -> i64 {
    east8()
        .from_local_datetime(&day(d).and_hms_opt(9, 0, 0).unwrap())
        .unwrap()
        .timestamp_millis()
}

/// A case opened at `opened` (ms), dispatched to police an hour later, in `state`, due a
/// day after opening.
async fn insert_case(db: &AnyPool, id: &str, opened: i64, state: &str) {
    sqlx::query(
        "INSERT INTO cases (id, title, category, state, queue, severity, department, time_limit, \
         due_at, lat, lon, area_code, grid, opened_at, updated_at, last_event_at, \
         dispatched_at, first_dispatched_at, dispatch_due_at) \
         VALUES ($1, 'a case', 'event:0407', $2, 'department', 'medium', 'police', '1 calendar_days', \
         $3, 30.2, 120.1, '330106001001', 'g1', $4, $4, $4, $5, $5, $6)",
    )
    .bind(id)
    .bind(state)
    .bind(opened + 24 * HOUR)
    .bind(opened)
    .bind(opened + HOUR)
    .bind(opened + 2 * HOUR)
    .execute(db)
    .await
    .unwrap();
}

async fn march(hub: &TestHub, now: DateTime<Utc>) -> Summary {
    indicators::summary(
        &hub.store,
        &CaseVisibility::All,
        day(1),
        day(5),
        now,
        east8(),
    )
    .await
    .unwrap()
}

/// The numbers through the kept tallies, checked against a fresh count.
async fn checked(hub: &TestHub, db: &AnyPool, now: DateTime<Utc>, what: &str) -> Summary {
    let kept = march(hub, now).await;
    sqlx::query("DELETE FROM stats_days")
        .execute(db)
        .await
        .unwrap();
    let fresh = march(hub, now).await;
    assert_eq!(kept, fresh, "after {what}");
    fresh
}

on_both_backends!(
    every_change_to_a_counted_column_is_seen,
    |hub: TestHub| async move {
        let db = AnyPool::connect(&hub.database_url).await.unwrap();
        for (id, d, state) in [
            ("x", 1, "handling"),
            ("y", 1, "closed"),
            ("z", 2, "dispatched"),
            ("w", 3, "reported"),
        ] {
            insert_case(&db, id, morning(d), state).await;
        }
        let now = Utc::now();
        let mut before = checked(&hub, &db, now, "the first count").await;
        assert_eq!(before.totals.cases, 4);
        let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM stats_days")
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(kept, 3, "a tally for each day with cases");

        let x = morning(1);
        let changes = [
            ("department", "department = 'fire'".to_string()),
            ("category", "category = 'event:0499'".to_string()),
            ("grid", "grid = 'g2'".to_string()),
            ("area_code", "area_code = '330106002001'".to_string()),
            ("due_at", format!("due_at = {}", x + 20 * 24 * HOUR)),
            ("rework_count", "rework_count = 2".to_string()),
            ("reworks_excused", "reworks_excused = 1".to_string()),
            ("dispatch_due_at", format!("dispatch_due_at = {x}")),
            (
                "first_dispatched_at",
                format!("first_dispatched_at = {}", x - HOUR),
            ),
            ("dispatched_at", "dispatched_at = NULL".to_string()),
            ("handled_at", format!("handled_at = {}", x + 3 * HOUR)),
            ("extensions_approved", "extensions_approved = 1".to_string()),
            ("deferral_kind", "deferral_kind = 'ledger'".to_string()),
            ("closed_at", format!("closed_at = {}", x + 30 * 24 * HOUR)),
            ("state", "state = 'closed'".to_string()),
            ("overdue_excused", "overdue_excused = 1".to_string()),
            ("satisfaction", "satisfaction = 4".to_string()),
            ("opened_at", format!("opened_at = {}", morning(4))),
        ];
        for (column, set) in changes {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE cases SET {set} WHERE id = 'x'"
            )))
            .execute(&db)
            .await
            .unwrap();
            let after = checked(&hub, &db, now, column).await;
            assert_ne!(after, before, "{column} changes the numbers");
            before = after;
        }
        // A column the numbers do not read leaves the kept tallies standing.
        sqlx::query("UPDATE cases SET title = 'renamed', severity = 'high' WHERE id = 'z'")
            .execute(&db)
            .await
            .unwrap();
        let (first, last) = (day_number(day(1)), day_number(day(5)));
        let marks = hub.store.day_marks(first, last, 8 * 3600).await.unwrap();
        assert_eq!(marks.iter().map(|m| m.cases).sum::<i64>(), 4);
        let mut kept: Vec<_> = (hub.store.kept_tallies(8 * 3600, 0, i64::MAX).await)
            .unwrap()
            .into_iter()
            .map(|(m, _)| (m.day, m.cases, m.rev_sum))
            .collect();
        let mut marks: Vec<_> = marks.iter().map(|m| (m.day, m.cases, m.rev_sum)).collect();
        kept.sort();
        marks.sort();
        assert_eq!(kept, marks, "every kept tally stands");
    }
);

on_both_backends!(
    a_kept_tally_serves_its_day_until_an_instant_falls_among_its_deadlines,
    |hub: TestHub| async move {
        let db = AnyPool::connect(&hub.database_url).await.unwrap();
        // Due at 09:00 and 14:00 on the 2nd.
        insert_case(&db, "x", morning(1), "handling").await;
        insert_case(&db, "v", morning(1) + 5 * HOUR, "handling").await;
        let at = |ms: i64| Utc.timestamp_millis_opt(ms).unwrap();
        let forge = || async {
            let mut kept = hub.store.kept_tallies(8 * 3600, 0, i64::MAX).await.unwrap();
            assert_eq!(kept.len(), 1);
            kept[0].1.by_state.insert("forged".into(), 1);
            hub.store.keep_tallies(8 * 3600, &kept).await.unwrap();
        };
        let first = march(&hub, at(morning(2) - HOUR)).await;
        assert_eq!((first.totals.overdue, first.totals.due_to_close), (0, 0));
        forge().await;
        let served = march(&hub, at(morning(2) - HOUR + 1)).await;
        assert_eq!(
            served.by_state.get("forged"),
            Some(&1),
            "the kept tally served"
        );
        assert_eq!(served.totals.overdue, 0);
        // 10:00: one deadline passed, one not: the day is counted again.
        let recounted = march(&hub, at(morning(2) + HOUR)).await;
        assert_eq!(recounted.by_state.get("forged"), None);
        assert_eq!(
            (recounted.totals.overdue, recounted.totals.due_to_close),
            (1, 1)
        );
        forge().await;
        // 15:00: both passed; the tally taken at 10:00 reads them all as passed.
        let later = march(&hub, at(morning(2) + 6 * HOUR)).await;
        assert_eq!(later.by_state.get("forged"), Some(&1));
        assert_eq!((later.totals.overdue, later.totals.due_to_close), (2, 2));
        // A department's numbers are counted afresh.
        let police = indicators::summary(
            &hub.store,
            &CaseVisibility::Department("police".into()),
            day(1),
            day(5),
            at(morning(2) + 6 * HOUR),
            east8(),
        )
        .await
        .unwrap();
        assert_eq!(police.totals.overdue, 2);
        assert_eq!(police.by_state.get("forged"), None);
    }
);
