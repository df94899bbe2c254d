//! Deferrals (缓办, 挂账) and appeals (申诉), the side records that change how a case is
//! measured. A deferral parks the deadline: while it is in effect no alarm fires and the case
//! is not due to close; when it ends the deadline gets back the time that was left on the
//! limit's own clock. Pure: [`resume`] computes the moments; the store parks and restores.

use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};

use super::calendar::WorkingCalendar;
use super::routing::{TimeLimit, TimeUnit};

/// What kind of deferral a department asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeferralKind {
    /// 缓办: the work cannot go on before a date (season, budget, a permit); the clock
    /// starts again by itself on that date.
    Defer,
    /// 挂账: a long-running item kept on the ledger until the centre resumes it.
    Ledger,
}

impl DeferralKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeferralKind::Defer => "defer",
            DeferralKind::Ledger => "ledger",
        }
    }

    /// The timeline's word for it.
    pub fn label(self) -> &'static str {
        match self {
            DeferralKind::Defer => "缓办",
            DeferralKind::Ledger => "挂账",
        }
    }
}

impl FromStr for DeferralKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "defer" => Ok(Self::Defer),
            "ledger" => Ok(Self::Ledger),
            _ => Err("must be defer (缓办) or ledger (挂账)".into()),
        }
    }
}

/// What a department's appeal disputes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppealSubject {
    /// The case was found overdue; upheld, it counts as handled and closed on time.
    Overdue,
    /// Verification sent the case back; upheld, one rework fewer is counted.
    Rework,
}

impl AppealSubject {
    pub fn as_str(self) -> &'static str {
        match self {
            AppealSubject::Overdue => "overdue",
            AppealSubject::Rework => "rework",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            AppealSubject::Overdue => "超期",
            AppealSubject::Rework => "返工",
        }
    }
}

impl FromStr for AppealSubject {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "overdue" => Ok(Self::Overdue),
            "rework" => Ok(Self::Rework),
            _ => Err("must be overdue or rework".into()),
        }
    }
}

/// Where a moment parked at `paused_at` lands when the deferral ends at `resumed_at`: the
/// time that was left until it, on the clock of the case's limit (working time for working
/// hours and days, continuous time otherwise or with no limit), counted again from
/// `resumed_at`. A moment already past when parked stays where it was: its alarm has had
/// its turn.
pub fn resume(
    calendar: &WorkingCalendar,
    limit: Option<TimeLimit>,
    paused_at: DateTime<Utc>,
    resumed_at: DateTime<Utc>,
    moment: DateTime<Utc>,
) -> DateTime<Utc> {
    if moment <= paused_at {
        return moment;
    }
    let working =
        limit.is_some_and(|l| matches!(l.unit, TimeUnit::WorkingHours | TimeUnit::WorkingDays));
    if working {
        let left = calendar.working_minutes_between(paused_at, moment);
        calendar.add_working_minutes(resumed_at, left)
    } else {
        resumed_at + (moment - paused_at).max(Duration::zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_str(&format!("{s} +0800"), "%Y-%m-%d %H:%M %z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn limit(s: &str) -> Option<TimeLimit> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn working_time_left_is_given_back_on_the_working_clock() {
        let cal = WorkingCalendar::default();
        // Parked Monday 10:00 with the deadline Tuesday 10:00: 8 working hours left.
        let (paused, due) = (local("2026-11-23 10:00"), local("2026-11-24 10:00"));
        // Resumed Thursday 16:00: 2 hours that day, 6 on Friday.
        assert_eq!(
            resume(
                &cal,
                limit("2 working_days"),
                paused,
                local("2026-11-26 16:00"),
                due
            ),
            local("2026-11-27 16:00")
        );
        // Resumed on a Saturday: the clock waits for Monday.
        assert_eq!(
            resume(
                &cal,
                limit("8 working_hours"),
                paused,
                local("2026-11-28 09:00"),
                due
            ),
            local("2026-11-30 18:00")
        );
    }

    #[test]
    fn continuous_limits_get_back_continuous_time() {
        let cal = WorkingCalendar::default();
        let (paused, due) = (local("2026-11-23 10:00"), local("2026-11-23 14:30"));
        let resumed = local("2026-11-28 23:00");
        for l in [limit("6 urgent_hours"), limit("1 calendar_days"), None] {
            assert_eq!(
                resume(&cal, l, paused, resumed, due),
                local("2026-11-29 03:30")
            );
        }
    }

    #[test]
    fn a_moment_already_past_when_parked_stays() {
        let cal = WorkingCalendar::default();
        let paused = local("2026-11-23 10:00");
        let warned = local("2026-11-23 09:00");
        assert_eq!(
            resume(
                &cal,
                limit("2 working_days"),
                paused,
                local("2026-12-01 08:00"),
                warned
            ),
            warned
        );
    }

    #[test]
    fn kinds_and_subjects_read_back_what_they_write() {
        for k in [DeferralKind::Defer, DeferralKind::Ledger] {
            assert_eq!(k.as_str().parse::<DeferralKind>(), Ok(k));
        }
        for s in [AppealSubject::Overdue, AppealSubject::Rework] {
            assert_eq!(s.as_str().parse::<AppealSubject>(), Ok(s));
        }
        assert!("later".parse::<DeferralKind>().is_err());
        assert!("unfair".parse::<AppealSubject>().is_err());
    }
}
