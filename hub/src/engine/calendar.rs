//! The working calendar and deadline arithmetic: when is a case due, given when it was
//! dispatched and its time limit? Pure: no clock, no I/O.

use std::collections::BTreeSet;

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc, Weekday,
};
use serde::Deserialize;

use super::routing::{TimeLimit, TimeUnit};

/// Working days and hours in the centre's local time.
#[derive(Debug, Clone)]
pub struct WorkingCalendar {
    offset: FixedOffset,
    /// Working periods of a working day, in order, not overlapping.
    periods: Vec<(NaiveTime, NaiveTime)>,
    /// Weekdays that are not worked (法定节假日).
    holidays: BTreeSet<NaiveDate>,
    /// Weekend days that are worked (调休).
    working_weekends: BTreeSet<NaiveDate>,
}

/// The calendar as written in the hub's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarConfig {
    /// The centre's UTC offset, e.g. `+08:00`.
    #[serde(default = "default_offset")]
    pub utc_offset: String,
    /// Working periods as `HH:MM-HH:MM`.
    #[serde(default = "default_periods")]
    pub working_periods: Vec<String>,
    #[serde(default)]
    pub holidays: Vec<NaiveDate>,
    #[serde(default)]
    pub working_weekends: Vec<NaiveDate>,
}

fn default_offset() -> String {
    "+08:00".into()
}

fn default_periods() -> Vec<String> {
    vec!["08:00-12:00".into(), "14:00-18:00".into()]
}

impl Default for CalendarConfig {
    fn default() -> Self {
        Self {
            utc_offset: default_offset(),
            working_periods: default_periods(),
            holidays: Vec::new(),
            working_weekends: Vec::new(),
        }
    }
}

impl TryFrom<CalendarConfig> for WorkingCalendar {
    type Error = String;

    fn try_from(c: CalendarConfig) -> Result<Self, Self::Error> {
        let offset: FixedOffset = c.utc_offset.parse().map_err(|_| {
            format!(
                "calendar.utc_offset {:?} must look like +08:00",
                c.utc_offset
            )
        })?;
        let mut periods = Vec::new();
        for p in &c.working_periods {
            let parsed = p.split_once('-').and_then(|(a, b)| {
                Some((
                    NaiveTime::parse_from_str(a.trim(), "%H:%M").ok()?,
                    NaiveTime::parse_from_str(b.trim(), "%H:%M").ok()?,
                ))
            });
            match parsed {
                Some((a, b)) if a < b && periods.last().is_none_or(|&(_, end)| end <= a) => {
                    periods.push((a, b))
                }
                _ => {
                    return Err(format!(
                        "calendar.working_periods: {p:?} must be HH:MM-HH:MM, in order and not overlapping"
                    ));
                }
            }
        }
        if periods.is_empty() {
            return Err("calendar.working_periods must not be empty".into());
        }
        Ok(Self {
            offset,
            periods,
            holidays: c.holidays.into_iter().collect(),
            working_weekends: c.working_weekends.into_iter().collect(),
        })
    }
}

impl Default for WorkingCalendar {
    fn default() -> Self {
        CalendarConfig::default()
            .try_into()
            .expect("the default calendar is valid")
    }
}

/// More than ten years of holidays in a row means the calendar is broken, not the case.
const MAX_DAYS_SEARCHED: usize = 3700;

impl WorkingCalendar {
    /// The county's local time zone.
    pub fn offset(&self) -> FixedOffset {
        self.offset
    }

    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        if self.working_weekends.contains(&day) {
            return true;
        }
        !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) && !self.holidays.contains(&day)
    }

    fn minutes_per_day(&self) -> i64 {
        self.periods
            .iter()
            .map(|(a, b)| (*b - *a).num_minutes())
            .sum()
    }

    /// When a case dispatched at `start` with `limit` is due.
    pub fn due(&self, start: DateTime<Utc>, limit: TimeLimit) -> DateTime<Utc> {
        let n = i64::from(limit.amount);
        match limit.unit {
            TimeUnit::UrgentHours => start + Duration::hours(n),
            TimeUnit::CalendarDays => start + Duration::days(n),
            TimeUnit::WorkingHours => self.add_working_minutes(start, n * 60),
            TimeUnit::WorkingDays => self.add_working_minutes(start, n * self.minutes_per_day()),
        }
    }

    /// When `fraction` (0..=1) of `limit` has run from `start`, on the limit's own clock:
    /// the moment to warn that a deadline approaches. Working days count as their working
    /// minutes, so three quarters of a working day ends mid-afternoon.
    pub fn fraction_of(
        &self,
        start: DateTime<Utc>,
        limit: TimeLimit,
        fraction: f64,
    ) -> DateTime<Utc> {
        let n = f64::from(limit.amount) * fraction.clamp(0.0, 1.0);
        let minutes = |per_unit: i64| (n * per_unit as f64).round() as i64;
        match limit.unit {
            TimeUnit::UrgentHours => start + Duration::minutes(minutes(60)),
            TimeUnit::CalendarDays => start + Duration::minutes(minutes(24 * 60)),
            TimeUnit::WorkingHours => self.add_working_minutes(start, minutes(60)),
            TimeUnit::WorkingDays => {
                self.add_working_minutes(start, minutes(self.minutes_per_day()))
            }
        }
    }

    /// Advances `start` by `minutes` of working time. Time outside working periods does not
    /// count, so a case dispatched at night starts its clock at the next working period.
    pub fn add_working_minutes(&self, start: DateTime<Utc>, minutes: i64) -> DateTime<Utc> {
        let local = start.with_timezone(&self.offset).naive_local();
        let mut left = Duration::minutes(minutes);
        let mut day = local.date();
        for _ in 0..MAX_DAYS_SEARCHED {
            if self.is_working_day(day) {
                for &(from, to) in &self.periods {
                    let (from, to) = (day.and_time(from), day.and_time(to));
                    if to <= local {
                        continue;
                    }
                    let begin = from.max(local);
                    let available = to - begin;
                    if left <= available {
                        let due = begin + left;
                        return self
                            .offset
                            .from_local_datetime(&due)
                            .unwrap()
                            .with_timezone(&Utc);
                    }
                    left -= available;
                }
            }
            day = day.succ_opt().expect("dates stay far from the end of time");
        }
        // Unreachable with a sane calendar; fall back to continuous time rather than panic.
        start + Duration::minutes(minutes)
    }

    /// The working minutes in `[from, to)`: the inverse of [`Self::add_working_minutes`].
    /// Zero when `to` is not after `from`.
    pub fn working_minutes_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        if to <= from {
            return 0;
        }
        let (from, to) = (
            from.with_timezone(&self.offset).naive_local(),
            to.with_timezone(&self.offset).naive_local(),
        );
        let mut total = Duration::zero();
        let mut day = from.date();
        for _ in 0..MAX_DAYS_SEARCHED {
            if day > to.date() {
                break;
            }
            if self.is_working_day(day) {
                for &(a, b) in &self.periods {
                    let (a, b) = (day.and_time(a).max(from), day.and_time(b).min(to));
                    if a < b {
                        total += b - a;
                    }
                }
            }
            day = day.succ_opt().expect("dates stay far from the end of time");
        }
        total.num_minutes()
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

    fn limit(s: &str) -> TimeLimit {
        s.parse().unwrap()
    }

    #[test]
    fn working_minutes_between_undoes_adding_them() {
        let cal = WorkingCalendar::default();
        let friday = local("2026-11-27 10:30");
        for minutes in [0, 1, 90, 330, 480, 481, 2000] {
            let later = cal.add_working_minutes(friday, minutes);
            assert_eq!(cal.working_minutes_between(friday, later), minutes);
        }
        // Friday 17:00 to Monday 09:00: an hour each side of the weekend.
        assert_eq!(
            cal.working_minutes_between(local("2026-11-27 17:00"), local("2026-11-30 09:00")),
            120
        );
        assert_eq!(cal.working_minutes_between(friday, friday), 0);
        assert_eq!(
            cal.working_minutes_between(friday, local("2026-11-27 09:00")),
            0
        );
    }

    #[test]
    fn a_fraction_of_a_limit_runs_on_the_limit_s_clock() {
        let cal = WorkingCalendar::default();
        let monday = local("2026-11-23 08:00");
        assert_eq!(
            cal.fraction_of(monday, limit("4 urgent_hours"), 0.75),
            local("2026-11-23 11:00")
        );
        // 3 of 4 working hours: 08:00–11:00.
        assert_eq!(
            cal.fraction_of(monday, limit("4 working_hours"), 0.75),
            local("2026-11-23 11:00")
        );
        // 2 working days = 960 working minutes; 75% = 720: Monday's 480, then Tuesday's
        // morning.
        assert_eq!(
            cal.fraction_of(monday, limit("2 working_days"), 0.75),
            local("2026-11-24 12:00")
        );
        assert_eq!(
            cal.fraction_of(monday, limit("2 calendar_days"), 0.5),
            local("2026-11-24 08:00")
        );
        assert_eq!(
            cal.fraction_of(monday, limit("2 working_days"), 1.0),
            cal.due(monday, limit("2 working_days"))
        );
    }

    #[test]
    fn urgent_hours_and_calendar_days_ignore_the_calendar() {
        let cal = WorkingCalendar::default();
        // Saturday night.
        assert_eq!(
            cal.due(local("2026-11-21 23:00"), limit("2 urgent_hours")),
            local("2026-11-22 01:00")
        );
        assert_eq!(
            cal.due(local("2026-11-21 23:00"), limit("3 calendar_days")),
            local("2026-11-24 23:00")
        );
    }

    #[test]
    fn working_hours_skip_lunch_nights_and_weekends() {
        let cal = WorkingCalendar::default();
        // Monday 10:00 + 4 working hours = 10–12 and 14–16.
        assert_eq!(
            cal.due(local("2026-11-23 10:00"), limit("4 working_hours")),
            local("2026-11-23 16:00")
        );
        // Friday 17:00 + 2 h = 1 h Friday, 1 h Monday morning.
        assert_eq!(
            cal.due(local("2026-11-27 17:00"), limit("2 working_hours")),
            local("2026-11-30 09:00")
        );
        // Dispatched at lunch: the clock starts at 14:00.
        assert_eq!(
            cal.due(local("2026-11-23 12:30"), limit("1 working_hours")),
            local("2026-11-23 15:00")
        );
        // Dispatched on Sunday: starts Monday 08:00.
        assert_eq!(
            cal.due(local("2026-11-22 09:00"), limit("4 working_hours")),
            local("2026-11-23 12:00")
        );
        // Exactly at the end of a period lands on the period's end, not the next start.
        assert_eq!(
            cal.due(local("2026-11-23 08:00"), limit("4 working_hours")),
            local("2026-11-23 12:00")
        );
    }

    #[test]
    fn working_days_are_whole_days_of_working_time() {
        let cal = WorkingCalendar::default();
        // Monday 10:00 + 2 working days = Wednesday 10:00.
        assert_eq!(
            cal.due(local("2026-11-23 10:00"), limit("2 working_days")),
            local("2026-11-25 10:00")
        );
        // Thursday 15:00 + 2 working days = Monday 15:00.
        assert_eq!(
            cal.due(local("2026-11-26 15:00"), limit("2 working_days")),
            local("2026-11-30 15:00")
        );
    }

    #[test]
    fn holidays_and_swapped_weekends() {
        let cal: WorkingCalendar = CalendarConfig {
            holidays: vec!["2026-10-01".parse().unwrap(), "2026-10-02".parse().unwrap()],
            working_weekends: vec!["2026-10-10".parse().unwrap()],
            ..CalendarConfig::default()
        }
        .try_into()
        .unwrap();
        // Wednesday 30 Sep 17:00 + 2 h: 1 h Wed, holidays Thu/Fri, weekend, Monday 08–09.
        assert_eq!(
            cal.due(local("2026-09-30 17:00"), limit("2 working_hours")),
            local("2026-10-05 09:00")
        );
        // Friday 9 Oct 17:00 + 2 h: 1 h Fri, Saturday 10 Oct is a working day.
        assert_eq!(
            cal.due(local("2026-10-09 17:00"), limit("2 working_hours")),
            local("2026-10-10 09:00")
        );
    }

    #[test]
    fn bad_calendars_are_refused() {
        for periods in [
            vec!["08:00-07:00"],
            vec!["8-12"],
            vec!["08:00-12:00", "11:00-13:00"],
            vec![],
        ] {
            let c = CalendarConfig {
                working_periods: periods.into_iter().map(String::from).collect(),
                ..CalendarConfig::default()
            };
            assert!(WorkingCalendar::try_from(c).is_err());
        }
        let c = CalendarConfig {
            utc_offset: "CST".into(),
            ..CalendarConfig::default()
        };
        assert!(
            WorkingCalendar::try_from(c)
                .unwrap_err()
                .contains("utc_offset")
        );
    }
}
