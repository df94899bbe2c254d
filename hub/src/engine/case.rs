//! What a new event turns into: a case, routed to a department with a deadline, or placed in
//! the joint review queue when the ownership list has no answer.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use protocol::{EventEnvelope, Severity};
use serde::Serialize;
use uuid::Uuid;

use super::calendar::WorkingCalendar;
use super::deadline::DeadlineConfig;
use super::routing::OwnershipItem;

/// Case states from the closed loop (闭环) in DOMAIN.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseState {
    /// 上报: raised, not yet registered by the centre.
    Reported,
    /// 作废: a false alarm.
    Void,
    /// 立案
    Registered,
    /// 派遣: sent to the responsible department, the deadline clock running.
    Dispatched,
    /// 处置中
    Handling,
    /// 已处置: the department reported back.
    Handled,
    /// 核查中
    Verifying,
    /// 结案
    Closed,
    /// 强制结案 by a supervisor.
    ForceClosed,
}

impl CaseState {
    pub const ALL: [CaseState; 9] = [
        CaseState::Reported,
        CaseState::Void,
        CaseState::Registered,
        CaseState::Dispatched,
        CaseState::Handling,
        CaseState::Handled,
        CaseState::Verifying,
        CaseState::Closed,
        CaseState::ForceClosed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseState::Reported => "reported",
            CaseState::Void => "void",
            CaseState::Registered => "registered",
            CaseState::Dispatched => "dispatched",
            CaseState::Handling => "handling",
            CaseState::Handled => "handled",
            CaseState::Verifying => "verifying",
            CaseState::Closed => "closed",
            CaseState::ForceClosed => "force_closed",
        }
    }
}

impl FromStr for CaseState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown case state {s:?}"))
    }
}

impl fmt::Display for CaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which queue a case waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Queue {
    /// With the responsible department.
    Department,
    /// 联合研判: no ownership item matched; the centre must decide who handles it.
    JointReview,
}

impl Queue {
    pub fn as_str(self) -> &'static str {
        match self {
            Queue::Department => "department",
            Queue::JointReview => "joint_review",
        }
    }
}

/// A case to be stored, with its first timeline entry's note.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCase {
    pub id: Uuid,
    pub title: String,
    pub state: CaseState,
    pub queue: Queue,
    pub severity: Severity,
    pub route: Option<OwnershipItem>,
    pub due_at: Option<DateTime<Utc>>,
    /// When to warn that the deadline approaches.
    pub warn_at: Option<DateTime<Utc>>,
    /// By when the centre should have dispatched it (on-time dispatch).
    pub dispatch_due_at: DateTime<Utc>,
    pub opened_at: DateTime<Utc>,
    pub note: String,
}

/// Opens a case for `event`. A routed case is dispatched at once with its deadline from the
/// working calendar, warned about when `deadlines.warn_fraction` of its limit has run; an
/// unrouted one waits in joint review with no deadline, to be dispatched within
/// `deadlines.dispatch_limit`.
pub fn open_case(
    event: &EventEnvelope,
    route: Option<&OwnershipItem>,
    calendar: &WorkingCalendar,
    deadlines: &DeadlineConfig,
    now: DateTime<Utc>,
) -> NewCase {
    let (state, queue, due_at, note) = match route {
        Some(item) => (
            CaseState::Dispatched,
            Queue::Department,
            Some(calendar.due(now, item.time_limit)),
            format!(
                "auto-dispatched to {} by the ownership list ({})",
                item.department, item.time_limit
            ),
        ),
        None => (
            CaseState::Reported,
            Queue::JointReview,
            None,
            format!(
                "no ownership item for {}: sent to joint review",
                event.category
            ),
        ),
    };
    NewCase {
        id: Uuid::now_v7(),
        title: title(event),
        state,
        queue,
        severity: event.severity,
        route: route.cloned(),
        due_at,
        warn_at: route.map(|r| calendar.fraction_of(now, r.time_limit, deadlines.warn_fraction)),
        dispatch_due_at: calendar.due(now, deadlines.dispatch_limit),
        opened_at: now,
        note,
    }
}

fn title(event: &EventEnvelope) -> String {
    let counts = event
        .detection
        .as_ref()
        .map(|d| {
            d.counts
                .iter()
                .map(|(class, n)| format!(" {n} {class}"))
                .collect::<String>()
        })
        .unwrap_or_default();
    format!(
        "{}{} @ {} {}",
        event.rule,
        counts,
        event.source.kind(),
        event.source.id()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::OwnershipList;
    use protocol::{Detection, EventKind, Location, Source};

    fn event() -> EventEnvelope {
        EventEnvelope {
            v: 1,
            id: Uuid::now_v7(),
            gateway_id: "gw".into(),
            source: Source::Camera {
                camera_id: "cam-1".into(),
            },
            kind: EventKind::Raised,
            episode: None,
            rule: "crowd".into(),
            category: "event:0407".parse().unwrap(),
            occurred_at: Utc::now(),
            location: Location {
                lat: 30.0,
                lon: 120.0,
                area_code: Some("330106001001".into()),
                grid: None,
            },
            severity: Severity::High,
            description: None,
            detection: Some(Detection {
                model: "m".into(),
                objects: vec![],
                counts: [("person".to_string(), 14)].into(),
            }),
            evidence: vec![],
        }
    }

    #[test]
    fn routed_event_is_dispatched_with_a_deadline() {
        let list = OwnershipList::parse(
            "[[item]]\ncategory = \"event:0407\"\ndepartment = \"police\"\ntime_limit = \"2 urgent_hours\"",
        )
        .unwrap();
        let e = event();
        let now = Utc::now();
        let case = open_case(
            &e,
            list.route(&e.category, None),
            &WorkingCalendar::default(),
            &DeadlineConfig::default(),
            now,
        );
        assert_eq!(case.state, CaseState::Dispatched);
        assert_eq!(case.queue, Queue::Department);
        assert_eq!(case.route.unwrap().department, "police");
        assert_eq!(case.due_at, Some(now + chrono::Duration::hours(2)));
        assert_eq!(case.warn_at, Some(now + chrono::Duration::minutes(90)));
        assert_eq!(case.dispatch_due_at, now + chrono::Duration::hours(1));
        assert_eq!(case.severity, Severity::High);
        assert_eq!(case.title, "crowd 14 person @ camera cam-1");
    }

    #[test]
    fn unrouted_event_goes_to_joint_review() {
        let case = open_case(
            &event(),
            None,
            &WorkingCalendar::default(),
            &DeadlineConfig::default(),
            Utc::now(),
        );
        assert_eq!(
            (case.state, case.queue, case.due_at),
            (CaseState::Reported, Queue::JointReview, None)
        );
        assert!(case.note.contains("joint review"));
    }

    #[test]
    fn states_round_trip_through_text() {
        for s in CaseState::ALL {
            assert_eq!(s.as_str().parse::<CaseState>().unwrap(), s);
        }
    }
}
