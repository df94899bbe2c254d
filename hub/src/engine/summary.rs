//! The statistics page's numbers: totals, groupings by department, category and grid
//! (hotspots), and a daily trend, from the tallies of the period's days
//! ([`super::tally`]). Pure.
//!
//! Counts are over the cases opened in a period, with the GB/T 30428-style indicators
//! (DOMAIN.md) defined on them:
//! - cases due to close (应结案): registered (not void, not still in intake) and either
//!   closed or past their deadline by the end of the period;
//! - closure rate = closed / due to close; on-time closure rate = closed by the deadline /
//!   due to close (force-closed cases count as closed);
//! - rework rate = closed cases that were sent back at least once / closed;
//! - average handling time = from the (last) dispatch to closure, over closed cases;
//! - extension rate = cases given an extension / cases dispatched;
//! - on-time dispatch rate = cases first dispatched by their dispatch deadline (opening +
//!   `deadlines.dispatch_limit`) / cases dispatched (cases routed at opening are on time);
//! - on-time handling rate = cases whose (latest) handling was reported by their deadline /
//!   cases reported handled;
//! - satisfaction = the mean of the latest callback's score (1–5) over cases called back;
//! - deferred = cases under a deferral (缓办, 挂账) now: their deadline is parked, so they
//!   are not due to close (the centres that subtract deferred cases from the denominator).
//!
//! An upheld appeal (申诉) excuses a case: found overdue, it counts as closed and handled on
//! time; each upheld rework appeal takes one rework off its count.

use std::collections::BTreeMap;

use chrono::{Duration, FixedOffset, NaiveDate};
use serde::Serialize;

use super::tally::{Breakdown, Reading, Sums, Tally};

/// Counts for one group (or for everything), and the indicators on them.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Counts {
    pub cases: i64,
    pub open: i64,
    pub closed: i64,
    pub void: i64,
    pub overdue: i64,
    pub reworks: i64,
    pub due_to_close: i64,
    pub on_time: i64,
    pub deferred: i64,
    #[serde(skip)]
    reworked: i64,
    #[serde(skip)]
    timed: i64,
    #[serde(skip)]
    handle_ms: i64,
    #[serde(skip)]
    dispatched: i64,
    #[serde(skip)]
    extended: i64,
    #[serde(skip)]
    rated: i64,
    #[serde(skip)]
    satisfaction_sum: i64,
    #[serde(skip)]
    dispatch_timed: i64,
    #[serde(skip)]
    dispatched_on_time: i64,
    #[serde(skip)]
    handled: i64,
    #[serde(skip)]
    handled_on_time: i64,
    /// `null` where the denominator is 0.
    pub closure_rate: Option<f64>,
    pub on_time_closure_rate: Option<f64>,
    pub rework_rate: Option<f64>,
    pub avg_handle_hours: Option<f64>,
    pub extension_rate: Option<f64>,
    pub satisfaction: Option<f64>,
    pub on_time_dispatch_rate: Option<f64>,
    pub on_time_handling_rate: Option<f64>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Keyed {
    /// The department, category or grid; `null` for cases that have none (not routed,
    /// no grid).
    pub key: Option<String>,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Day {
    pub day: NaiveDate,
    pub cases: i64,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Summary {
    pub totals: Counts,
    pub by_state: BTreeMap<String, i64>,
    /// Most cases first.
    pub by_department: Vec<Keyed>,
    pub by_category: Vec<Keyed>,
    /// Cases without a township-level division code count under `null`.
    pub by_township: Vec<Keyed>,
    /// The grids with the most cases: the hotspots.
    pub top_grids: Vec<Keyed>,
    /// Every day from the first to the last of the period, zeros included.
    pub daily: Vec<Day>,
}

/// Grids listed as hotspots.
const TOP_GRIDS: usize = 10;

impl Counts {
    fn add(&mut self, g: &Sums, reading: Reading) {
        self.cases += g.cases;
        self.closed += g.closed;
        self.void += g.void;
        self.open = self.cases - self.closed - self.void;
        self.overdue += reading.late.count(g.running, g.running_late);
        self.reworks += g.reworks;
        self.due_to_close += g.closed_registered + reading.due.count(g.awaiting, g.awaiting_due);
        self.on_time += g.on_time;
        self.reworked += g.reworked;
        self.timed += g.timed;
        self.handle_ms += g.handle_ms;
        self.dispatched += g.dispatched;
        self.extended += g.extended;
        self.rated += g.rated;
        self.satisfaction_sum += g.satisfaction_sum;
        self.dispatch_timed += g.dispatch_timed;
        self.dispatched_on_time += g.dispatched_on_time;
        self.handled += g.handled;
        self.handled_on_time += g.handled_on_time;
        self.deferred += g.deferred;
        let ratio = |a: i64, b: i64| (b > 0).then(|| a as f64 / b as f64);
        self.closure_rate = ratio(self.closed, self.due_to_close);
        self.on_time_closure_rate = ratio(self.on_time, self.due_to_close);
        self.rework_rate = ratio(self.reworked, self.closed);
        self.avg_handle_hours = ratio(self.handle_ms, self.timed).map(|ms| ms / 3_600_000.0);
        self.extension_rate = ratio(self.extended, self.dispatched);
        self.satisfaction = ratio(self.satisfaction_sum, self.rated);
        self.on_time_dispatch_rate = ratio(self.dispatched_on_time, self.dispatch_timed);
        self.on_time_handling_rate = ratio(self.handled_on_time, self.handled);
    }
}

/// Adds up the days' tallies, each read as given, over the period `first..=last`.
pub fn summarise(days: &[(Tally, Reading)], first: NaiveDate, last: NaiveDate) -> Summary {
    let mut totals = Counts::default();
    let mut by_state = BTreeMap::new();
    let mut departments: BTreeMap<Option<String>, Counts> = BTreeMap::new();
    let mut categories: BTreeMap<Option<String>, Counts> = BTreeMap::new();
    let mut grids: BTreeMap<Option<String>, Counts> = BTreeMap::new();
    let mut townships: BTreeMap<Option<String>, Counts> = BTreeMap::new();
    let mut counted: BTreeMap<i64, i64> = BTreeMap::new();
    let add = |into: &mut BTreeMap<Option<String>, Counts>, breakdown: &Breakdown, r: Reading| {
        for (key, sums) in breakdown {
            into.entry(key.clone()).or_default().add(sums, r);
        }
    };
    for (tally, reading) in days {
        let r = *reading;
        for (state, n) in &tally.by_state {
            *by_state.entry(state.clone()).or_insert(0) += n;
        }
        let mut day = Sums::default();
        for sums in tally.by_department.values() {
            totals.add(sums, r);
            day.add(sums);
        }
        *counted.entry(tally.day).or_insert(0) += day.cases;
        add(&mut departments, &tally.by_department, r);
        add(&mut categories, &tally.by_category, r);
        add(&mut townships, &tally.by_township, r);
        add(&mut grids, &tally.by_grid, r);
    }
    let mut top_grids = ranked(grids);
    top_grids.truncate(TOP_GRIDS);
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");
    let daily = first
        .iter_days()
        .take_while(|d| *d <= last)
        .map(|day| Day {
            day,
            cases: counted.get(&(day - epoch).num_days()).copied().unwrap_or(0),
        })
        .collect();
    Summary {
        totals,
        by_state,
        by_department: ranked(departments),
        by_category: ranked(categories),
        by_township: ranked(townships),
        top_grids,
        daily,
    }
}

fn ranked(groups: BTreeMap<Option<String>, Counts>) -> Vec<Keyed> {
    let mut v: Vec<Keyed> = groups
        .into_iter()
        .map(|(key, counts)| Keyed { key, counts })
        .collect();
    // Stable: equal counts stay in key order.
    v.sort_by_key(|k| std::cmp::Reverse(k.counts.cases));
    v
}

/// The local day of an instant, for a period's first and last day.
pub fn local_day(t: chrono::DateTime<chrono::Utc>, offset: FixedOffset) -> NaiveDate {
    (t + Duration::seconds(i64::from(offset.local_minus_utc()))).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::engine::tally::CaseFacts;

    /// Cases of one day with one department, category, grid and state, and their sums.
    struct Cases {
        day: i64,
        keys: CaseFacts,
        sums: Sums,
    }

    fn group(dept: Option<&str>, cat: &str, grid: Option<&str>, state: &str, n: i64) -> Cases {
        let late = if state == "handling" { 1 } else { 0 };
        Cases {
            day: 20_393,
            keys: CaseFacts {
                department: dept.map(Into::into),
                category: cat.into(),
                grid: grid.map(Into::into),
                area_code: grid.map(|_| "330106001001".into()),
                state: state.into(),
                ..CaseFacts::default()
            },
            sums: Sums {
                cases: n,
                closed: if matches!(state, "closed" | "force_closed") {
                    n
                } else {
                    0
                },
                void: if state == "void" { n } else { 0 },
                running: late,
                running_late: late,
                ..Sums::default()
            },
        }
    }

    /// The cases as one day's tally, read at the instant it was taken.
    fn one_day(cases: &[Cases]) -> Vec<(Tally, Reading)> {
        let mut tally = Tally::empty(cases.first().map_or(0, |c| c.day), 0, 0);
        for c in cases {
            tally.add_sums(&c.keys, &c.sums);
        }
        vec![(tally, Reading::AS_COUNTED)]
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn adds_up_by_state_department_category_and_grid() {
        let groups = [
            group(Some("police"), "event:0407", Some("g1"), "closed", 3),
            group(Some("police"), "event:0407", Some("g1"), "handling", 2),
            group(
                Some("water"),
                "component:0101",
                Some("g2"),
                "force_closed",
                1,
            ),
            group(None, "event:0499", None, "reported", 3),
            group(None, "event:0499", None, "void", 1),
        ];
        let s = summarise(&one_day(&groups), day(2026, 11, 1), day(2026, 11, 1));
        let t = &s.totals;
        assert_eq!(
            (t.cases, t.open, t.closed, t.void, t.overdue, t.reworks),
            (10, 5, 4, 1, 1, 0)
        );
        assert_eq!(s.by_state["reported"], 3);
        assert_eq!(s.by_state["closed"], 3);
        let keys: Vec<_> = s.by_department.iter().map(|k| k.key.clone()).collect();
        assert_eq!(keys, [Some("police".into()), None, Some("water".into())]);
        assert_eq!(s.by_department[0].counts.closed, 3);
        assert_eq!(s.by_department[0].counts.open, 2);
        assert_eq!(s.by_category[0].key.as_deref(), Some("event:0407"));
        assert_eq!(s.top_grids.len(), 2, "cases without a grid are no hotspot");
        assert_eq!(s.top_grids[0].key.as_deref(), Some("g1"));
        assert_eq!(s.by_township[0].key.as_deref(), Some("330106001"));
        assert_eq!(s.by_township[0].counts.cases, 6);
        assert_eq!(s.by_township[1].key, None);
    }

    /// A hand-computed fixture: police closed 3 cases (2 on time, 1 reworked, 1 extended,
    /// 2 called back with 5 and 4; handled in 2 h, 4 h and 6 h; 2 first dispatched in time;
    /// all 3 reported handled, 2 by the deadline) and has 1 overdue and 1 not yet due (both
    /// dispatched in time, neither handled yet); water closed nothing and has nothing due.
    #[test]
    fn indicators_follow_their_definitions() {
        let mut closed = group(Some("police"), "event:0407", None, "closed", 3);
        closed.sums = Sums {
            closed_registered: 3,
            on_time: 2,
            reworked: 1,
            timed: 3,
            handle_ms: (2 + 4 + 6) * 3_600_000,
            dispatched: 3,
            extended: 1,
            rated: 2,
            satisfaction_sum: 5 + 4,
            dispatch_timed: 3,
            dispatched_on_time: 2,
            handled: 3,
            handled_on_time: 2,
            ..closed.sums
        };
        let mut handling = group(Some("police"), "event:0407", None, "handling", 2);
        handling.sums.awaiting = 2;
        handling.sums.awaiting_due = 1;
        handling.sums.dispatch_timed = 2;
        handling.sums.dispatched_on_time = 2;
        let water = group(Some("water"), "component:0101", None, "dispatched", 1);
        let s = summarise(
            &one_day(&[closed, handling, water]),
            day(2026, 11, 1),
            day(2026, 11, 1),
        );
        let police = &s.by_department[0].counts;
        assert_eq!(police.due_to_close, 4);
        assert_eq!(police.closure_rate, Some(0.75));
        assert_eq!(police.on_time_closure_rate, Some(0.5));
        assert_eq!(police.rework_rate, Some(1.0 / 3.0));
        assert_eq!(police.avg_handle_hours, Some(4.0));
        assert_eq!(police.extension_rate, Some(1.0 / 3.0), "1 of 3 dispatched");
        assert_eq!(police.satisfaction, Some(4.5));
        assert_eq!(
            police.on_time_dispatch_rate,
            Some(0.8),
            "4 of 5 dispatched in time"
        );
        assert_eq!(police.on_time_handling_rate, Some(2.0 / 3.0));
        let water = &s.by_department[1].counts;
        assert_eq!(water.closure_rate, None, "nothing was due");
        assert_eq!(water.rework_rate, None, "nothing was closed");
        assert_eq!(s.totals.closure_rate, Some(0.75));
    }

    #[test]
    fn every_day_of_the_period_is_listed() {
        let epoch = day(1970, 1, 1);
        let n_of = |d: NaiveDate| (d - epoch).num_days();
        let on = |d: NaiveDate, n: i64| {
            let mut g = group(Some("police"), "event:0407", None, "closed", n);
            g.day = n_of(d);
            one_day(&[g]).remove(0)
        };
        let days = [on(day(2026, 11, 2), 5), on(day(2026, 11, 4), 1)];
        let s = summarise(&days, day(2026, 11, 1), day(2026, 11, 4));
        let counts: Vec<_> = s.daily.iter().map(|d| d.cases).collect();
        assert_eq!(counts, [0, 5, 0, 1]);
        assert_eq!(s.daily[0].day, day(2026, 11, 1));
    }

    #[test]
    fn local_days_follow_the_offset() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-22T17:00:00Z")
            .unwrap()
            .to_utc();
        let east8 = FixedOffset::east_opt(8 * 3600).unwrap();
        assert_eq!(local_day(t, east8), day(2026, 11, 23));
        assert_eq!(
            local_day(t, FixedOffset::east_opt(0).unwrap()),
            day(2026, 11, 22)
        );
    }
}
