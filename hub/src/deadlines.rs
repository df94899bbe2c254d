//! The deadline worker: every `deadlines.sweep_interval_s` it ends the deferrals (缓办) whose
//! date has come, raises the warnings and overdue alarms that have come due, and takes the
//! cases still overdue a further span of their limit one level further up (see
//! [`crate::engine::deadline`] for the rules and [`Store::raise_due_alarms`] for how each is
//! raised once), and puts them on the live feed.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::engine::{DeadlineConfig, TimeLimit, WorkingCalendar, deferral};
use crate::live::{LiveFeed, LiveItem};
use crate::reference;
use crate::store::{AlarmRaised, ParkedClock, Restored, Store, StoreError};

/// Cases handled per transaction.
const BATCH: i64 = 200;

/// Raises every alarm due at `now`, batch after batch.
pub async fn sweep(
    store: &Store,
    config: &DeadlineConfig,
    now: DateTime<Utc>,
) -> Result<Vec<AlarmRaised>, StoreError> {
    let mut all = Vec::new();
    loop {
        let raised = store
            .raise_due_alarms(now, &config.escalate_to, BATCH)
            .await?;
        let cases: std::collections::HashSet<_> = raised.iter().map(|r| &r.case_id).collect();
        let done = (cases.len() as i64) < BATCH;
        all.extend(raised);
        if done {
            return Ok(all);
        }
    }
}

/// Takes the cases still overdue past their next escalation time one level further up the
/// department list in force (each department's `parent`), batch after batch.
pub async fn escalate(
    store: &Store,
    reference: &reference::Shared,
    now: DateTime<Utc>,
) -> Result<Vec<AlarmRaised>, StoreError> {
    let list = reference.current();
    let parent_of = |id: &str| list.department(id).and_then(|d| d.parent.clone());
    let mut all = Vec::new();
    loop {
        let raised = store.escalate_overdue(now, &parent_of, BATCH).await?;
        let done = (raised.len() as i64) < BATCH;
        all.extend(raised);
        if done {
            return Ok(all);
        }
    }
}

/// The deadline a deferral parked, given back when it ends at `at`
/// ([`deferral::resume`] on the case's limit; a limit that does not parse counts as
/// continuous time).
pub fn restored(calendar: &WorkingCalendar, clock: &ParkedClock, at: DateTime<Utc>) -> Restored {
    let limit = clock
        .time_limit
        .as_deref()
        .and_then(|l| l.parse::<TimeLimit>().ok());
    let moved = |t| deferral::resume(calendar, limit, clock.deferred_at, at, t);
    Restored {
        due_at: moved(clock.due_at),
        warn_at: clock.warn_at.map(moved),
    }
}

/// Ends every deferral (缓办) whose date has come by `now`; returns those ended.
pub async fn resume_deferrals(
    store: &Store,
    calendar: &WorkingCalendar,
    now: DateTime<Utc>,
) -> Result<Vec<ParkedClock>, StoreError> {
    let mut resumed = Vec::new();
    loop {
        let due = store.deferrals_due(now, BATCH).await?;
        let done = (due.len() as i64) < BATCH;
        for clock in due {
            let back = restored(calendar, &clock, now);
            if store
                .end_deferral(
                    &clock,
                    back,
                    "缓办到期 the deferral's date came",
                    ACTOR,
                    now,
                )
                .await?
            {
                resumed.push(clock);
            }
        }
        if done {
            return Ok(resumed);
        }
    }
}

/// Who the worker's writes are by on the timeline.
const ACTOR: &str = "system:deadlines";

/// Sweeps until `shutdown`; a failed sweep is logged and tried again next time.
pub async fn run(
    store: Store,
    config: DeadlineConfig,
    calendar: Arc<WorkingCalendar>,
    reference: reference::Shared,
    live: LiveFeed,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(config.sweep_interval_s));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = Utc::now();
        match resume_deferrals(&store, &calendar, now).await {
            Ok(resumed) => {
                for clock in resumed {
                    tracing::info!(case = %clock.case_id, "deferral ended on its date");
                    if let Ok(state) = clock.state.parse() {
                        live.publish(LiveItem::case_note(
                            &clock.case_id,
                            clock.department.as_deref(),
                            "deferral_ended",
                            state,
                            ACTOR,
                        ));
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "resuming deferrals failed; trying again next time")
            }
        }
        match sweep(&store, &config, now).await {
            Ok(raised) => publish(&live, &raised),
            Err(e) => {
                tracing::warn!(error = %e, "the deadline sweep failed; trying again next time")
            }
        }
        match escalate(&store, &reference, now).await {
            Ok(raised) => publish(&live, &raised),
            Err(e) => {
                tracing::warn!(error = %e, "escalating overdue cases failed; trying again next time")
            }
        }
    }
}

/// Logs each alarm and puts it on the live feed as a case event.
pub fn publish(live: &LiveFeed, raised: &[AlarmRaised]) {
    for r in raised {
        tracing::info!(
            case = %r.case_id,
            alarm = r.alarm.as_str(),
            department = r.department.as_deref().unwrap_or("-"),
            escalated_to = r.escalated_to.as_deref().unwrap_or("-"),
            "deadline alarm"
        );
        live.publish(LiveItem::new(
            "case",
            r.department.clone(),
            &serde_json::json!({
                "id": r.case_id,
                "action": r.alarm,
                "from": r.state,
                "to": r.state,
                "actor": ACTOR,
                "department": r.department,
                "escalated_to": r.escalated_to,
            }),
        ));
    }
}
