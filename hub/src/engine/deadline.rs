//! The deadline clock of a dispatched case: a warning when a set fraction of the time limit
//! has run (default 75%), and once the deadline passes an overdue alarm, which brings a
//! supervision notice (督办) to the department and escalates the case to its supervising
//! department. Pure: [`alarms`] says what is due at `now`; the deadline worker applies it.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::case::CaseState;
use super::routing::TimeLimit;

/// Deadline settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeadlineConfig {
    /// Warn when this fraction of the time limit has run.
    pub warn_fraction: f64,
    /// How often the worker looks for deadlines passed.
    pub sweep_interval_s: u64,
    /// Where an overdue case escalates when its ownership item names no supervising
    /// department.
    pub escalate_to: String,
    /// How soon after a case is opened the centre should have dispatched it, for the
    /// on-time dispatch indicator (a case routed at once is always on time).
    #[serde(default = "default_dispatch_limit")]
    pub dispatch_limit: TimeLimit,
}

fn default_dispatch_limit() -> TimeLimit {
    "1 urgent_hours".parse().expect("a valid time limit")
}

impl Default for DeadlineConfig {
    fn default() -> Self {
        Self {
            warn_fraction: 0.75,
            sweep_interval_s: 30,
            escalate_to: "county-centre".into(),
            dispatch_limit: default_dispatch_limit(),
        }
    }
}

impl DeadlineConfig {
    pub fn check(&self) -> Result<(), String> {
        if !(self.warn_fraction > 0.0 && self.warn_fraction < 1.0) {
            return Err("deadlines.warn_fraction must be between 0 and 1 (exclusive)".into());
        }
        if !(1..=3600).contains(&self.sweep_interval_s) {
            return Err("deadlines.sweep_interval_s must be 1..=3600".into());
        }
        if self.escalate_to.trim().is_empty() {
            return Err("deadlines.escalate_to must not be empty".into());
        }
        Ok(())
    }
}

/// A case's clock as stored.
#[derive(Debug, Clone)]
pub struct Clock {
    pub state: CaseState,
    pub warn_at: Option<DateTime<Utc>>,
    pub due_at: Option<DateTime<Utc>>,
    /// When the warning, and the overdue alarm, were raised (once each).
    pub warned_at: Option<DateTime<Utc>>,
    pub overdue_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Alarm {
    /// 预警: the deadline approaches.
    DeadlineWarning,
    /// 超期: the deadline has passed.
    Overdue,
    /// 逐级上报: still overdue a further span of the limit; one level further up.
    Escalated,
}

impl Alarm {
    pub fn as_str(self) -> &'static str {
        match self {
            Alarm::DeadlineWarning => "deadline_warning",
            Alarm::Overdue => "overdue",
            Alarm::Escalated => "escalated",
        }
    }
}

/// When a case found overdue at `at` goes one level further up if it is still held: once
/// another span of its time limit has passed (the span from dispatch to the deadline, in
/// continuous time), and at least an hour on.
pub fn next_escalation(
    at: DateTime<Utc>,
    dispatched_at: Option<DateTime<Utc>>,
    due_at: DateTime<Utc>,
) -> DateTime<Utc> {
    let span = dispatched_at.map_or(Duration::zero(), |d| due_at - d);
    at + span.max(Duration::hours(1))
}

/// The alarms to raise at `now`, in order. The clock runs while the department holds the
/// case (dispatched or handling); each alarm is raised once. A sweep that comes late
/// raises both at once rather than skipping the warning.
pub fn alarms(clock: &Clock, now: DateTime<Utc>) -> Vec<Alarm> {
    if !matches!(clock.state, CaseState::Dispatched | CaseState::Handling) {
        return Vec::new();
    }
    let mut out = Vec::new();
    let passed = |t: Option<DateTime<Utc>>| t.is_some_and(|t| t <= now);
    if clock.warned_at.is_none() && clock.overdue_at.is_none() && passed(clock.warn_at) {
        out.push(Alarm::DeadlineWarning);
    }
    if clock.overdue_at.is_none() && passed(clock.due_at) {
        if clock.warned_at.is_none() && !out.contains(&Alarm::DeadlineWarning) {
            out.push(Alarm::DeadlineWarning);
        }
        out.push(Alarm::Overdue);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(state: CaseState) -> (Clock, DateTime<Utc>) {
        let t0 = DateTime::parse_from_rfc3339("2026-11-23T00:00:00Z")
            .unwrap()
            .to_utc();
        (
            Clock {
                state,
                warn_at: Some(t0 + Duration::hours(3)),
                due_at: Some(t0 + Duration::hours(4)),
                warned_at: None,
                overdue_at: None,
            },
            t0,
        )
    }

    #[test]
    fn warns_then_marks_overdue_once_each() {
        let (mut c, t0) = clock(CaseState::Dispatched);
        assert!(alarms(&c, t0 + Duration::hours(2)).is_empty());
        assert_eq!(
            alarms(&c, t0 + Duration::hours(3)),
            [Alarm::DeadlineWarning]
        );
        c.warned_at = Some(t0 + Duration::hours(3));
        assert!(alarms(&c, t0 + Duration::minutes(210)).is_empty());
        assert_eq!(alarms(&c, t0 + Duration::hours(4)), [Alarm::Overdue]);
        c.overdue_at = Some(t0 + Duration::hours(4));
        assert!(alarms(&c, t0 + Duration::days(9)).is_empty());
    }

    #[test]
    fn the_next_level_comes_a_limit_span_later_and_never_sooner_than_an_hour() {
        let (_, t0) = clock(CaseState::Handling);
        let due = t0 + Duration::hours(48);
        let found = due + Duration::minutes(1);
        assert_eq!(
            next_escalation(found, Some(t0), due),
            found + Duration::hours(48)
        );
        assert_eq!(
            next_escalation(found, Some(due - Duration::minutes(5)), due),
            found + Duration::hours(1)
        );
        assert_eq!(
            next_escalation(found, None, due),
            found + Duration::hours(1)
        );
    }

    #[test]
    fn a_late_sweep_raises_both_in_order() {
        let (c, t0) = clock(CaseState::Handling);
        assert_eq!(
            alarms(&c, t0 + Duration::hours(5)),
            [Alarm::DeadlineWarning, Alarm::Overdue]
        );
    }

    #[test]
    fn the_clock_runs_only_while_the_department_holds_the_case() {
        for state in [
            CaseState::Reported,
            CaseState::Registered,
            CaseState::Handled,
            CaseState::Verifying,
            CaseState::Closed,
            CaseState::ForceClosed,
            CaseState::Void,
        ] {
            let (c, t0) = clock(state);
            assert!(alarms(&c, t0 + Duration::days(1)).is_empty(), "{state:?}");
        }
        let (mut c, t0) = clock(CaseState::Dispatched);
        c.due_at = None;
        c.warn_at = None;
        assert!(alarms(&c, t0 + Duration::days(1)).is_empty(), "no deadline");
    }

    #[test]
    fn settings_are_checked() {
        assert!(DeadlineConfig::default().check().is_ok());
        for bad in [0.0, 1.0, -0.5, f64::NAN] {
            let c = DeadlineConfig {
                warn_fraction: bad,
                ..DeadlineConfig::default()
            };
            assert!(c.check().is_err(), "{bad}");
        }
    }
}
