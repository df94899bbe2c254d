//! A local day's cases tallied for the statistics page, and whether a tally taken earlier
//! still counts right at another instant. Pure.
//!
//! A tally is kept per local day (by opening) and broken down by department, category,
//! township and grid. Most of its sums never change with the time they are counted at;
//! two do: a case still open counts as overdue once its deadline passes `now`, and a
//! registered case still open counts as due to close once its deadline passes the end of
//! the period (or `now`, if sooner). For those the tally keeps both how many cases wait on a
//! deadline and how many had passed it when it was taken, and the earliest and latest such
//! deadline: at a later instant the count is all of them, none of them or, where the
//! instant falls among those deadlines, unknown until the day is counted again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Sums over a set of cases (one group, one key of a breakdown, or a whole day).
/// Kept as an array of its numbers in field order, a sixth the size of named fields.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "[i64; SUMS]", from = "[i64; SUMS]")]
pub struct Sums {
    pub cases: i64,
    /// Closed or force-closed.
    pub closed: i64,
    pub void: i64,
    /// Rework rounds, less those excused on appeal.
    pub reworks: i64,
    /// Registered and closed: due to close at any instant.
    pub closed_registered: i64,
    /// Registered, still open, with a deadline: due to close once it passes; and how many
    /// had passed it at the tally's `close_by`.
    pub awaiting: i64,
    pub awaiting_due: i64,
    /// Still open with a deadline: overdue once it passes; and how many were at the
    /// tally's `now`.
    pub running: i64,
    pub running_late: i64,
    /// Closed by their deadline (or excused on appeal).
    pub on_time: i64,
    /// Sent back for rework at least once (not excused).
    pub reworked: i64,
    /// Closed with a dispatch time, and their handling time summed.
    pub timed: i64,
    pub handle_ms: i64,
    pub dispatched: i64,
    pub extended: i64,
    /// Called back, and their scores summed.
    pub rated: i64,
    pub satisfaction_sum: i64,
    /// Dispatched with a dispatch deadline, and by it.
    pub dispatch_timed: i64,
    pub dispatched_on_time: i64,
    /// Reported handled, and by their deadline.
    pub handled: i64,
    pub handled_on_time: i64,
    /// Under a deferral now.
    pub deferred: i64,
}

/// The number of sums in [`Sums`].
const SUMS: usize = 22;

impl From<Sums> for [i64; SUMS] {
    fn from(s: Sums) -> Self {
        [
            s.cases,
            s.closed,
            s.void,
            s.reworks,
            s.closed_registered,
            s.awaiting,
            s.awaiting_due,
            s.running,
            s.running_late,
            s.on_time,
            s.reworked,
            s.timed,
            s.handle_ms,
            s.dispatched,
            s.extended,
            s.rated,
            s.satisfaction_sum,
            s.dispatch_timed,
            s.dispatched_on_time,
            s.handled,
            s.handled_on_time,
            s.deferred,
        ]
    }
}

impl From<[i64; SUMS]> for Sums {
    fn from(a: [i64; SUMS]) -> Self {
        let [
            cases,
            closed,
            void,
            reworks,
            closed_registered,
            awaiting,
            awaiting_due,
            running,
            running_late,
            on_time,
            reworked,
            timed,
            handle_ms,
            dispatched,
            extended,
            rated,
            satisfaction_sum,
            dispatch_timed,
            dispatched_on_time,
            handled,
            handled_on_time,
            deferred,
        ] = a;
        Sums {
            cases,
            closed,
            void,
            reworks,
            closed_registered,
            awaiting,
            awaiting_due,
            running,
            running_late,
            on_time,
            reworked,
            timed,
            handle_ms,
            dispatched,
            extended,
            rated,
            satisfaction_sum,
            dispatch_timed,
            dispatched_on_time,
            handled,
            handled_on_time,
            deferred,
        }
    }
}

impl Sums {
    pub fn add(&mut self, other: &Sums) {
        let mut sums = <[i64; SUMS]>::from(self.clone());
        for (s, o) in sums.iter_mut().zip(<[i64; SUMS]>::from(other.clone())) {
            *s += o;
        }
        *self = sums.into();
    }
}

/// The earliest and latest of a set of deadlines (ms); `None` when the set is empty.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span(pub Option<(i64, i64)>);

impl Span {
    fn include(&mut self, t: i64) {
        self.0 = Some(match self.0 {
            Some((first, last)) => (first.min(t), last.max(t)),
            None => (t, t),
        });
    }
}

/// What the indicators read of one case (times in ms).
#[derive(Debug, Clone, Default)]
pub struct CaseFacts {
    pub department: Option<String>,
    pub category: String,
    pub grid: Option<String>,
    pub area_code: Option<String>,
    pub state: String,
    pub due_at: Option<i64>,
    pub closed_at: Option<i64>,
    pub dispatched_at: Option<i64>,
    pub first_dispatched_at: Option<i64>,
    pub dispatch_due_at: Option<i64>,
    pub handled_at: Option<i64>,
    /// Found overdue, excused on appeal.
    pub overdue_excused: bool,
    pub rework_count: i64,
    pub reworks_excused: i64,
    pub extensions_approved: i64,
    pub satisfaction: Option<i64>,
    pub deferred: bool,
}

impl CaseFacts {
    /// The case's township: the first 9 digits of a division code at least that deep.
    fn township(&self) -> Option<String> {
        self.area_code
            .as_deref()
            .and_then(|code| code.get(..9))
            .map(str::to_owned)
    }
}

impl Sums {
    /// One case's sums, its deadline counted as passed or not at `now` (overdue) and at
    /// `close_by` (due to close).
    pub fn of_case(c: &CaseFacts, now: i64, close_by: i64) -> Sums {
        let closes = matches!(c.state.as_str(), "closed" | "force_closed");
        let void = c.state == "void";
        let registered = !matches!(c.state.as_str(), "reported" | "void");
        let open = !closes && !void;
        let awaiting = registered && c.closed_at.is_none() && c.due_at.is_some();
        let running = open && c.due_at.is_some();
        let by_deadline = |t: i64| c.due_at.is_none_or(|due| t <= due) || c.overdue_excused;
        let n = |b: bool| i64::from(b);
        let timed = c.closed_at.zip(c.dispatched_at);
        Sums {
            cases: 1,
            closed: n(closes),
            void: n(void),
            reworks: c.rework_count - c.reworks_excused,
            closed_registered: n(registered && c.closed_at.is_some()),
            awaiting: n(awaiting),
            awaiting_due: n(awaiting && c.due_at.is_some_and(|due| due <= close_by)),
            running: n(running),
            running_late: n(running && c.due_at.is_some_and(|due| due < now)),
            on_time: n(c.closed_at.is_some_and(by_deadline)),
            reworked: n(c.rework_count > c.reworks_excused),
            timed: n(timed.is_some()),
            handle_ms: timed.map_or(0, |(closed, dispatched)| closed - dispatched),
            dispatched: n(c.dispatched_at.is_some()),
            extended: n(c.extensions_approved > 0),
            rated: n(c.satisfaction.is_some()),
            satisfaction_sum: c.satisfaction.unwrap_or(0),
            dispatch_timed: n(c.first_dispatched_at.is_some() && c.dispatch_due_at.is_some()),
            dispatched_on_time: n(c
                .first_dispatched_at
                .zip(c.dispatch_due_at)
                .is_some_and(|(first, due)| first <= due)),
            handled: n(c.handled_at.is_some()),
            handled_on_time: n(c.handled_at.is_some_and(by_deadline)),
            deferred: n(c.deferred),
        }
    }
}

/// A breakdown by one key; `None` for cases without one (not routed, no township).
pub type Breakdown = BTreeMap<Option<String>, Sums>;

/// One local day's cases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    /// Days since 1970-01-01, local.
    pub day: i64,
    /// The instants (ms) the deadline counts were taken at.
    pub now: i64,
    pub close_by: i64,
    /// The deadlines behind the `awaiting` and `running` sums.
    pub awaiting: Span,
    pub running: Span,
    pub by_state: BTreeMap<String, i64>,
    /// Every case is under exactly one key of each breakdown but the grids, where cases
    /// without a grid are left out.
    #[serde(with = "pairs")]
    pub by_department: Breakdown,
    #[serde(with = "pairs")]
    pub by_category: Breakdown,
    #[serde(with = "pairs")]
    pub by_township: Breakdown,
    #[serde(with = "pairs")]
    pub by_grid: Breakdown,
}

/// A breakdown kept as a list of `[key, sums]`: JSON object keys cannot be `null`.
mod pairs {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Breakdown;

    pub fn serialize<S: Serializer>(b: &Breakdown, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(b.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Breakdown, D::Error> {
        Ok(Vec::deserialize(d)?.into_iter().collect())
    }
}

/// How to count the cases waiting on a deadline at another instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Their deadlines have all passed.
    All,
    /// None has.
    Nothing,
    /// As the tally counted them (it was taken at this instant).
    AsCounted,
}

impl Pick {
    pub fn count(self, all: i64, counted: i64) -> i64 {
        match self {
            Pick::All => all,
            Pick::Nothing => 0,
            Pick::AsCounted => counted,
        }
    }
}

/// How a tally's deadline counts read at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// `running_late`: deadline before `now`.
    pub late: Pick,
    /// `awaiting_due`: deadline at or before `close_by`.
    pub due: Pick,
}

impl Reading {
    /// For a tally taken at the instant it is read.
    pub const AS_COUNTED: Reading = Reading {
        late: Pick::AsCounted,
        due: Pick::AsCounted,
    };
}

impl Tally {
    /// A day without cases, its deadlines counted at `now` and `close_by` (ms).
    pub fn empty(day: i64, now: i64, close_by: i64) -> Tally {
        Tally {
            day,
            now,
            close_by,
            awaiting: Span::default(),
            running: Span::default(),
            by_state: BTreeMap::new(),
            by_department: Breakdown::new(),
            by_category: Breakdown::new(),
            by_township: Breakdown::new(),
            by_grid: Breakdown::new(),
        }
    }

    /// Counts a case opened on this day.
    pub fn add(&mut self, case: &CaseFacts) {
        let sums = Sums::of_case(case, self.now, self.close_by);
        if let Some(due) = case.due_at {
            if sums.awaiting > 0 {
                self.awaiting.include(due);
            }
            if sums.running > 0 {
                self.running.include(due);
            }
        }
        self.add_sums(case, &sums);
    }

    /// Adds `sums` under the case's keys.
    pub fn add_sums(&mut self, case: &CaseFacts, sums: &Sums) {
        fn under(b: &mut Breakdown, key: &Option<String>, sums: &Sums) {
            match b.get_mut(key) {
                Some(s) => s.add(sums),
                None => {
                    b.insert(key.clone(), sums.clone());
                }
            }
        }
        match self.by_state.get_mut(&case.state) {
            Some(n) => *n += sums.cases,
            None => {
                self.by_state.insert(case.state.clone(), sums.cases);
            }
        }
        under(&mut self.by_department, &case.department, sums);
        under(&mut self.by_category, &Some(case.category.clone()), sums);
        under(&mut self.by_township, &case.township(), sums);
        if case.grid.is_some() {
            under(&mut self.by_grid, &case.grid, sums);
        }
    }

    /// How this tally's deadline counts read at `now` for a period ending at `close_by`
    /// (ms); `None` where a deadline falls between the instants it was taken at and these,
    /// so the day must be counted again.
    pub fn read_at(&self, now: i64, close_by: i64) -> Option<Reading> {
        let late = pick(self.running, self.now, now, |due, t| due < t)?;
        let due = pick(self.awaiting, self.close_by, close_by, |due, t| due <= t)?;
        Some(Reading { late, due })
    }
}

/// Whether the deadlines in `span`, counted as passed at `taken` by `passed`, count the same
/// at `at`.
fn pick(span: Span, taken: i64, at: i64, passed: impl Fn(i64, i64) -> bool) -> Option<Pick> {
    let Some((first, last)) = span.0 else {
        return Some(Pick::AsCounted);
    };
    if at == taken {
        Some(Pick::AsCounted)
    } else if passed(last, at) {
        Some(Pick::All)
    } else if !passed(first, at) {
        Some(Pick::Nothing)
    } else {
        None
    }
}

/// The counts of cases and `stats_rev` sum of a day's cases as the store holds them now: a
/// tally taken at the same mark still stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayMark {
    pub day: i64,
    pub cases: i64,
    pub rev_sum: i64,
}

/// Of the days `first..=last`, those a kept tally serves (with how to read it) and those to
/// count again. `marks` are the days with cases now; `kept` the tallies with the marks they
/// were taken at.
pub fn plan(
    first: i64,
    last: i64,
    marks: &[DayMark],
    kept: Vec<(DayMark, Tally)>,
    now: i64,
    close_by: i64,
) -> (Vec<(Tally, Reading)>, Vec<i64>) {
    let mut kept: BTreeMap<i64, (DayMark, Tally)> =
        kept.into_iter().map(|(m, t)| (m.day, (m, t))).collect();
    let mut served = Vec::new();
    let mut recount = Vec::new();
    for mark in marks.iter().filter(|m| (first..=last).contains(&m.day)) {
        let reading = kept
            .remove(&mark.day)
            .filter(|(at, _)| at == mark)
            .and_then(|(_, t)| t.read_at(now, close_by).map(|r| (t, r)));
        match reading {
            Some(served_day) => served.push(served_day),
            None => recount.push(mark.day),
        }
    }
    (served, recount)
}

/// `days` (ascending) as runs of consecutive days, first and last of each.
pub fn runs(days: &[i64]) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    for &d in days {
        match out.last_mut() {
            Some((_, last)) if *last + 1 == d => *last = d,
            _ => out.push((d, d)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(running: Option<(i64, i64)>, awaiting: Option<(i64, i64)>) -> Tally {
        let mut t = Tally::empty(1, 100, 50);
        t.running = Span(running);
        t.awaiting = Span(awaiting);
        t
    }

    #[test]
    fn deadlines_all_passed_or_none_read_at_any_instant() {
        let t = tally(Some((10, 20)), Some((30, 40)));
        assert_eq!(
            t.read_at(21, 40),
            Some(Reading {
                late: Pick::All,
                due: Pick::All
            })
        );
        assert_eq!(
            t.read_at(10, 29),
            Some(Reading {
                late: Pick::Nothing,
                due: Pick::Nothing
            }),
            "late is strictly before now, due at or before close_by"
        );
        assert_eq!(t.read_at(20, 40), None, "one deadline before 20, one at it");
    }

    #[test]
    fn an_instant_among_the_deadlines_needs_a_recount_unless_it_is_the_one_taken() {
        let t = tally(Some((10, 200)), Some((30, 60)));
        assert_eq!(t.read_at(150, 50), None, "a deadline between 100 and 150");
        assert_eq!(t.read_at(100, 45), None, "a deadline between 45 and 50");
        assert_eq!(t.read_at(100, 50), Some(Reading::AS_COUNTED));
        assert_eq!(
            tally(None, None).read_at(7, 7),
            Some(Reading::AS_COUNTED),
            "nothing waits on a deadline"
        );
    }

    #[test]
    fn a_day_is_served_only_by_a_tally_taken_at_its_mark() {
        let mark = |day, cases, rev_sum| DayMark {
            day,
            cases,
            rev_sum,
        };
        let kept = vec![
            (mark(1, 5, 0), Tally::empty(1, 100, 50)),
            (mark(2, 5, 0), Tally::empty(2, 100, 50)),
            (mark(3, 5, 0), Tally::empty(3, 100, 50)),
        ];
        let now = [mark(1, 5, 0), mark(2, 6, 0), mark(3, 5, 1), mark(4, 1, 0)];
        let (served, recount) = plan(1, 4, &now, kept, 200, 60);
        assert_eq!(served.iter().map(|(t, _)| t.day).collect::<Vec<_>>(), [1]);
        assert_eq!(recount, [2, 3, 4], "a new case, a changed case, no tally");
        let (served, recount) = plan(2, 3, &now, vec![], 200, 60);
        assert!(served.is_empty());
        assert_eq!(recount, [2, 3], "only the days asked for");
    }

    #[test]
    fn days_run_together() {
        assert_eq!(runs(&[1, 2, 3, 5, 7, 8]), [(1, 3), (5, 5), (7, 8)]);
        assert!(runs(&[]).is_empty());
    }

    fn case(state: &str) -> CaseFacts {
        CaseFacts {
            department: Some("police".into()),
            category: "event:0407".into(),
            grid: Some("g1".into()),
            area_code: Some("330106001001".into()),
            state: state.into(),
            ..CaseFacts::default()
        }
    }

    /// Each sum against its definition (DOMAIN.md, `engine::summary`), one case at a time.
    #[test]
    fn a_case_counts_by_the_definitions() {
        let (now, close_by) = (1_000, 500);
        let sums = |c: &CaseFacts| Sums::of_case(c, now, close_by);
        // Closed late after a dispatch at 100, a rework excused on appeal, called back 4.
        let closed = CaseFacts {
            due_at: Some(300),
            closed_at: Some(400),
            dispatched_at: Some(100),
            first_dispatched_at: Some(50),
            dispatch_due_at: Some(60),
            handled_at: Some(350),
            rework_count: 1,
            reworks_excused: 1,
            satisfaction: Some(4),
            ..case("closed")
        };
        let s = sums(&closed);
        assert_eq!((s.cases, s.closed, s.void), (1, 1, 0));
        assert_eq!((s.closed_registered, s.awaiting, s.running), (1, 0, 0));
        assert_eq!((s.on_time, s.handled_on_time), (0, 0), "after the deadline");
        assert_eq!((s.reworks, s.reworked), (0, 0), "the rework was excused");
        assert_eq!((s.timed, s.handle_ms), (1, 300));
        assert_eq!((s.dispatch_timed, s.dispatched_on_time), (1, 1));
        assert_eq!((s.rated, s.satisfaction_sum), (1, 4));
        let excused = sums(&CaseFacts {
            overdue_excused: true,
            ..closed.clone()
        });
        assert_eq!((excused.on_time, excused.handled_on_time), (1, 1));
        // Open, past its deadline at `now` but not at `close_by`.
        let handling = sums(&CaseFacts {
            due_at: Some(700),
            rework_count: 2,
            extensions_approved: 1,
            ..case("handling")
        });
        assert_eq!((handling.running, handling.running_late), (1, 1));
        assert_eq!((handling.awaiting, handling.awaiting_due), (1, 0));
        assert_eq!(
            (handling.reworks, handling.reworked, handling.extended),
            (2, 1, 1)
        );
        // In intake: overdue counts it, due to close does not; void: neither.
        let reported = sums(&CaseFacts {
            due_at: Some(200),
            ..case("reported")
        });
        assert_eq!((reported.running_late, reported.awaiting), (1, 0));
        let void = sums(&CaseFacts {
            due_at: Some(200),
            ..case("void")
        });
        assert_eq!((void.void, void.running, void.awaiting), (1, 0, 0));
        // Deferred: no deadline while it lasts.
        let deferred = sums(&CaseFacts {
            deferred: true,
            ..case("handling")
        });
        assert_eq!(
            (deferred.deferred, deferred.running, deferred.awaiting),
            (1, 0, 0)
        );
    }

    #[test]
    fn a_day_adds_up_its_cases_under_every_breakdown() {
        let mut t = Tally::empty(9, 100, 50);
        for (state, due) in [("handling", 40), ("handling", 45), ("closed", 10)] {
            t.add(&CaseFacts {
                due_at: Some(due),
                closed_at: (state == "closed").then_some(20),
                ..case(state)
            });
        }
        t.add(&CaseFacts {
            department: None,
            grid: None,
            area_code: Some("3301".into()),
            due_at: Some(10),
            ..case("reported")
        });
        assert_eq!(t.running, Span(Some((10, 45))), "the open cases' deadlines");
        assert_eq!(
            t.awaiting,
            Span(Some((40, 45))),
            "the registered open ones'"
        );
        assert_eq!(t.by_state["handling"], 2);
        assert_eq!(t.by_department[&Some("police".into())].cases, 3);
        assert_eq!(t.by_department[&None].cases, 1);
        assert_eq!(t.by_category[&Some("event:0407".into())].cases, 4);
        assert_eq!(t.by_township[&Some("330106001".into())].cases, 3);
        assert_eq!(t.by_township[&None].cases, 1, "a code short of a township");
        assert_eq!(t.by_grid.len(), 1, "cases without a grid are left out");
        let back: Tally = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t, "kept as JSON");
    }
}
