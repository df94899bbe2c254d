//! The deadline worker: every `deadlines.sweep_interval_s` it raises the warnings and
//! overdue alarms that have come due (see [`crate::engine::deadline`] for the rules and
//! [`Store::raise_due_alarms`] for how each is raised once), and puts them on the live feed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::engine::DeadlineConfig;
use crate::live::{LiveFeed, LiveItem};
use crate::store::{AlarmRaised, Store, StoreError};

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

/// Sweeps until `shutdown`; a failed sweep is logged and tried again next time.
pub async fn run(
    store: Store,
    config: DeadlineConfig,
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
        match sweep(&store, &config, Utc::now()).await {
            Ok(raised) => publish(&live, &raised),
            Err(e) => {
                tracing::warn!(error = %e, "the deadline sweep failed; trying again next time")
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
                "actor": "system:deadlines",
                "department": r.department,
                "escalated_to": r.escalated_to,
            }),
        ));
    }
}
