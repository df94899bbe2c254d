//! Placing a batch of events: which are new, which case each joins or opens, and what that
//! changes on cases and episodes. Decided in memory, event by event in batch order, from
//! what the store read for the batch ([`Known`]), exactly as if each event were stored
//! before the next is looked at; the store then writes the whole [`Placement`] with a few
//! set-based statements. Pure: no I/O.
//!
//! Episodes (`protocol::Episode`): an event of a known episode joins that episode's case;
//! it moves the episode on only when its `seq` is the highest seen yet, so events that
//! arrive late or twice never undo a later one.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use protocol::{Episode, EventEnvelope, EventKind, Severity};
use uuid::Uuid;

use super::{Candidate, CorrelationConfig, NewCase};

/// A case as the batch sees it: stored, or opened earlier in the batch.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseNow {
    pub id: String,
    pub category: String,
    pub state: String,
    pub severity: String,
    pub department: Option<String>,
    pub lat: f64,
    pub lon: f64,
    pub last_event_at: DateTime<Utc>,
}

impl CaseNow {
    pub fn is_open(&self) -> bool {
        !matches!(self.state.as_str(), "void" | "closed" | "force_closed")
    }
}

/// An episode the hub follows, as stored (or as the batch has left it).
#[derive(Debug, Clone, PartialEq)]
pub struct EpisodeNow {
    pub id: Uuid,
    pub case_id: String,
    pub last_seq: u32,
    pub severity: String,
    pub started_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// What the store read for a batch, inside the transaction that will write it.
#[derive(Debug, Default)]
pub struct Known {
    /// Ids of the batch's events already stored.
    pub events: HashSet<Uuid>,
    /// The sending gateway's stored episodes that events of the batch belong to.
    pub episodes: Vec<EpisodeNow>,
    /// The cases of those episodes, and every open case of the batch's categories that an
    /// event could correlate with (a superset is fine: each event filters again).
    pub cases: Vec<CaseNow>,
}

/// A case change: its latest event and risk level after the batch.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseChange {
    pub id: String,
    pub last_event_at: DateTime<Utc>,
    pub severity: String,
}

/// An entry for a case's timeline. The case's state does not change on ingest, so an
/// entry is from and to the state the case is in (or, on opening, to its first state).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: Uuid,
    pub case_id: String,
    pub at: DateTime<Utc>,
    pub action: &'static str,
    pub from_state: Option<String>,
    pub to_state: String,
    pub note: String,
}

/// A new event of the batch and the case it is now part of.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    /// Its position in the batch.
    pub index: usize,
    pub case_id: String,
    /// Whether the event opened the case (or joined one already there).
    pub opened: bool,
    /// The case's department, if it has one.
    pub department: Option<String>,
}

/// A new episode, first seen in this batch.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEpisode {
    /// The batch position of its first event (for its source and rule).
    pub index: usize,
    pub state: EpisodeNow,
}

/// What storing a batch changes, in the order it is to be written.
#[derive(Debug, Default)]
pub struct Placement {
    /// Every event of the batch (new or already stored), in batch order.
    pub accepted: Vec<Uuid>,
    /// The new events, in batch order.
    pub placed: Vec<Placed>,
    /// Cases opened, with the batch position of the event that opened each.
    pub opened: Vec<(usize, NewCase)>,
    /// Cases whose latest event or risk level moved (stored ones, or opened in the batch
    /// and joined later in it).
    pub changed_cases: Vec<CaseChange>,
    pub timeline: Vec<Entry>,
    pub new_episodes: Vec<NewEpisode>,
    /// Stored episodes after the batch.
    pub changed_episodes: Vec<EpisodeNow>,
}

/// The higher of a stored risk level and `new`.
pub fn max_severity(stored: &str, new: Severity) -> Severity {
    [Severity::High, Severity::Medium, Severity::Low]
        .into_iter()
        .find(|s| s.as_str() == stored)
        .map_or(new, |s| s.max(new))
}

/// Places `events`, received from a gateway at `now`. Each event not stored before joins
/// its episode's case, or the open case of its category that `correlation` picks, or opens
/// the case that `open_case` returns for it.
pub fn place(
    events: &[EventEnvelope],
    known: Known,
    correlation: &CorrelationConfig,
    now: DateTime<Utc>,
    mut open_case: impl FnMut(&EventEnvelope) -> NewCase,
) -> Placement {
    let mut batch = Batch::new(known);
    let mut out = Placement::default();
    for (index, event) in events.iter().enumerate() {
        out.accepted.push(event.id);
        if !batch.seen.insert(event.id) {
            continue;
        }
        let followed = event
            .episode
            .and_then(|e| batch.episodes.get(&e.id).map(|f| (e, f.clone())));
        if let Some((episode, followed)) = &followed {
            let case = &batch.cases[&followed.case_id];
            let outlived = !case.is_open()
                && event.kind == EventKind::Update
                && episode.seq > followed.last_seq;
            if !outlived {
                out.placed.push(Placed {
                    index,
                    case_id: followed.case_id.clone(),
                    opened: false,
                    department: case.department.clone(),
                });
                batch.apply(event, *episode, now, &mut out);
                continue;
            }
        }
        // A one-off event, the first of an episode, or an update that outlived its case.
        let moved = followed.is_some();
        if let Some(case_id) = batch.correlate(event, correlation) {
            batch.touch_case(&case_id, event);
            out.timeline.push(Entry::about(
                &batch.cases[&case_id],
                now,
                "attach_event",
                format!(
                    "event {} from {} {} joined the case",
                    event.id,
                    event.source.kind(),
                    event.source.id()
                ),
            ));
            out.placed.push(Placed {
                index,
                department: batch.cases[&case_id].department.clone(),
                case_id: case_id.clone(),
                opened: false,
            });
            batch.record(index, event, &case_id, moved, &mut out);
            continue;
        }
        let case = open_case(event);
        let case_id = case.id.to_string();
        let department = case.route.as_ref().map(|r| r.department.clone());
        out.timeline.push(Entry {
            id: Uuid::now_v7(),
            case_id: case_id.clone(),
            at: case.opened_at,
            action: "open",
            from_state: None,
            to_state: case.state.as_str().to_owned(),
            note: case.note.clone(),
        });
        batch.add_case(CaseNow {
            id: case_id.clone(),
            category: event.category.as_str().to_owned(),
            state: case.state.as_str().to_owned(),
            severity: case.severity.as_str().to_owned(),
            department: department.clone(),
            lat: event.location.lat,
            lon: event.location.lon,
            last_event_at: event.occurred_at,
        });
        out.opened.push((index, case));
        batch.record(index, event, &case_id, moved, &mut out);
        out.placed.push(Placed {
            index,
            case_id,
            opened: true,
            department,
        });
    }
    batch.finish(&mut out);
    out
}

impl Entry {
    /// A note on `case` that leaves its state as it is.
    fn about(case: &CaseNow, at: DateTime<Utc>, action: &'static str, note: String) -> Self {
        Self {
            id: Uuid::now_v7(),
            case_id: case.id.clone(),
            at,
            action,
            from_state: Some(case.state.clone()),
            to_state: case.state.clone(),
            note,
        }
    }
}

/// The batch's working state: what is stored, as changed by the events placed so far.
struct Batch {
    seen: HashSet<Uuid>,
    /// Cases by id, and their ids in the order they became known (stored ones first).
    cases: HashMap<String, CaseNow>,
    order: Vec<String>,
    /// Ids of cases changed by the batch.
    changed: Vec<String>,
    /// Episodes by id: stored, or new in the batch (those in `new_episodes`).
    episodes: HashMap<Uuid, EpisodeNow>,
    /// Stored episodes the batch changed.
    changed_episodes: Vec<Uuid>,
    /// New episodes, by id: their index in `Placement::new_episodes`.
    new_episodes: HashMap<Uuid, usize>,
}

impl Batch {
    fn new(known: Known) -> Self {
        let mut batch = Self {
            seen: known.events,
            cases: HashMap::new(),
            order: Vec::new(),
            changed: Vec::new(),
            episodes: known.episodes.into_iter().map(|e| (e.id, e)).collect(),
            changed_episodes: Vec::new(),
            new_episodes: HashMap::new(),
        };
        for case in known.cases {
            batch.add_case(case);
        }
        batch
    }

    fn add_case(&mut self, case: CaseNow) {
        if !self.cases.contains_key(&case.id) {
            self.order.push(case.id.clone());
        }
        self.cases.insert(case.id.clone(), case);
    }

    /// The open case of the event's category it joins, if any.
    fn correlate(&self, event: &EventEnvelope, correlation: &CorrelationConfig) -> Option<String> {
        let loc = &event.location;
        let (min_lat, max_lat, min_lon, max_lon) = correlation.bounding_box(loc.lat, loc.lon);
        let since = event.occurred_at - correlation.window();
        let candidates: Vec<Candidate> = self
            .order
            .iter()
            .map(|id| &self.cases[id])
            .filter(|c| {
                c.category == event.category.as_str()
                    && c.is_open()
                    && c.last_event_at >= since
                    && (min_lat..=max_lat).contains(&c.lat)
                    && (min_lon..=max_lon).contains(&c.lon)
            })
            .map(|c| Candidate {
                id: c.id.clone(),
                lat: c.lat,
                lon: c.lon,
                last_event_at: c.last_event_at,
            })
            .collect();
        correlation
            .pick(loc.lat, loc.lon, event.occurred_at, &candidates)
            .map(|c| c.id.clone())
    }

    /// The case's latest event and risk level take `event` in.
    fn touch_case(&mut self, case_id: &str, event: &EventEnvelope) {
        let case = self.cases.get_mut(case_id).expect("a known case");
        case.last_event_at = case.last_event_at.max(event.occurred_at);
        case.severity = max_severity(&case.severity, event.severity)
            .as_str()
            .to_owned();
        if !self.changed.iter().any(|id| id == case_id) {
            self.changed.push(case_id.to_owned());
        }
    }

    /// Records that `event`'s episode (if it has one) now belongs to case `case_id`: its
    /// first event seen, or (`moved`) an update that outlived the episode's closed case.
    fn record(
        &mut self,
        index: usize,
        event: &EventEnvelope,
        case_id: &str,
        moved: bool,
        out: &mut Placement,
    ) {
        let Some(episode) = event.episode else { return };
        let at = event.occurred_at;
        if moved {
            let e = self
                .episodes
                .get_mut(&episode.id)
                .expect("a followed episode");
            e.case_id = case_id.to_owned();
            e.last_seq = episode.seq;
            e.severity = event.severity.as_str().to_owned();
            e.updated_at = at;
            self.episode_changed(episode.id, out);
            return;
        }
        let state = EpisodeNow {
            id: episode.id,
            case_id: case_id.to_owned(),
            last_seq: episode.seq,
            severity: event.severity.as_str().to_owned(),
            started_at: (event.kind == EventKind::Raised).then_some(at),
            updated_at: at,
            ended_at: (event.kind == EventKind::Ended).then_some(at),
        };
        self.episodes.insert(episode.id, state.clone());
        self.new_episodes.insert(episode.id, out.new_episodes.len());
        out.new_episodes.push(NewEpisode { index, state });
    }

    /// Applies `event` of a followed episode, placed on the episode's case: a newer event
    /// moves the episode on (and, while the case is open, the case's latest event time and
    /// risk level, with a timeline entry); an older one only fills in when it started.
    fn apply(
        &mut self,
        event: &EventEnvelope,
        episode: Episode,
        now: DateTime<Utc>,
        out: &mut Placement,
    ) {
        let at = event.occurred_at;
        let e = self
            .episodes
            .get_mut(&episode.id)
            .expect("a followed episode");
        let mut changed = false;
        if event.kind == EventKind::Raised && e.started_at.is_none() {
            e.started_at = Some(at);
            changed = true;
        }
        let newer = episode.seq > e.last_seq;
        if newer {
            e.last_seq = episode.seq;
            e.severity = event.severity.as_str().to_owned();
            e.updated_at = at;
            e.ended_at = (event.kind == EventKind::Ended).then_some(at);
            changed = true;
        }
        let case_id = e.case_id.clone();
        if changed {
            self.episode_changed(episode.id, out);
        }
        if !newer || !self.cases[&case_id].is_open() {
            return;
        }
        self.touch_case(&case_id, event);
        let action = match event.kind {
            EventKind::Ended => "episode_ended",
            EventKind::Update | EventKind::Raised => "episode_update",
        };
        let note = event.description.clone().unwrap_or_else(|| {
            format!(
                "{} {} {}: {}",
                event.source.kind(),
                event.source.id(),
                event.rule,
                event.kind.as_str()
            )
        });
        out.timeline
            .push(Entry::about(&self.cases[&case_id], now, action, note));
    }

    /// Notes that episode `id` changed: a stored one is written back after the batch; a
    /// new one is inserted as the batch leaves it.
    fn episode_changed(&mut self, id: Uuid, out: &mut Placement) {
        if let Some(&i) = self.new_episodes.get(&id) {
            out.new_episodes[i].state = self.episodes[&id].clone();
        } else if !self.changed_episodes.contains(&id) {
            self.changed_episodes.push(id);
        }
    }

    fn finish(self, out: &mut Placement) {
        out.changed_cases = self
            .changed
            .iter()
            .map(|id| {
                let c = &self.cases[id];
                CaseChange {
                    id: c.id.clone(),
                    last_event_at: c.last_event_at,
                    severity: c.severity.clone(),
                }
            })
            .collect();
        out.changed_episodes = self
            .changed_episodes
            .iter()
            .map(|id| self.episodes[id].clone())
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use protocol::{Location, Source};

    use super::*;
    use crate::engine::{DeadlineConfig, WorkingCalendar, open_case};

    fn t(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap() + Duration::minutes(minute)
    }

    /// An event of camera `cam-1` at `minute`, `metres` north of a fixed point.
    fn event(minute: i64, metres: f64, severity: Severity) -> EventEnvelope {
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
            occurred_at: t(minute),
            location: Location {
                lat: 30.0 + metres / 111_195.0,
                lon: 120.0,
                area_code: None,
                grid: None,
            },
            severity,
            description: None,
            detection: None,
            evidence: vec![],
        }
    }

    fn of_episode(mut e: EventEnvelope, id: Uuid, seq: u32, kind: EventKind) -> EventEnvelope {
        e.kind = kind;
        e.episode = Some(Episode {
            id,
            seq,
            refresh_s: None,
        });
        e
    }

    fn stored_case(id: &str, state: &str, minute: i64) -> CaseNow {
        CaseNow {
            id: id.into(),
            category: "event:0407".into(),
            state: state.into(),
            severity: "low".into(),
            department: Some("police".into()),
            lat: 30.0,
            lon: 120.0,
            last_event_at: t(minute),
        }
    }

    fn run(events: &[EventEnvelope], known: Known) -> Placement {
        place(events, known, &CorrelationConfig::default(), t(100), |e| {
            open_case(
                e,
                None,
                &WorkingCalendar::default(),
                &DeadlineConfig::default(),
                t(100),
            )
        })
    }

    #[test]
    fn duplicates_are_accepted_and_placed_once() {
        let stored = event(0, 0.0, Severity::Low);
        let new = event(1, 0.0, Severity::Low);
        let known = Known {
            events: [stored.id].into(),
            ..Known::default()
        };
        let p = run(&[stored.clone(), new.clone(), new.clone()], known);
        assert_eq!(p.accepted, vec![stored.id, new.id, new.id]);
        assert_eq!(p.placed.len(), 1);
        assert_eq!(p.placed[0].index, 1);
        assert_eq!(p.opened.len(), 1);
    }

    #[test]
    fn events_near_each_other_share_a_case_opened_in_the_batch() {
        let first = event(0, 0.0, Severity::Low);
        let near = event(5, 30.0, Severity::High);
        let far = event(6, 500.0, Severity::Low);
        let p = run(&[first, near, far], Known::default());
        assert_eq!(p.opened.len(), 2, "{p:?}");
        let case = p.opened[0].1.id.to_string();
        assert!(p.placed[0].opened && !p.placed[1].opened && p.placed[2].opened);
        assert_eq!(p.placed[1].case_id, case);
        assert_eq!(
            p.changed_cases,
            vec![CaseChange {
                id: case.clone(),
                last_event_at: t(5),
                severity: "high".into(),
            }]
        );
        let actions: Vec<_> = p.timeline.iter().map(|e| (e.action, &e.case_id)).collect();
        assert_eq!(actions[..2], [("open", &case), ("attach_event", &case)]);
    }

    #[test]
    fn an_event_joins_the_nearest_open_stored_case_within_the_window() {
        let known = Known {
            cases: vec![
                stored_case("closed", "closed", 0),
                stored_case("old", "dispatched", -24 * 60 - 1),
                stored_case("open", "handling", 0),
            ],
            ..Known::default()
        };
        let p = run(&[event(10, 10.0, Severity::Low)], known);
        assert!(p.opened.is_empty());
        assert_eq!(p.placed[0].case_id, "open");
        let entry = &p.timeline[0];
        assert_eq!(entry.from_state.as_deref(), Some("handling"));
        assert_eq!(entry.to_state, "handling");
        assert_eq!(entry.at, t(100), "noted when received");
    }

    #[test]
    fn a_late_event_of_an_episode_fills_in_its_start_and_changes_nothing_else() {
        let id = Uuid::now_v7();
        let stored = EpisodeNow {
            id,
            case_id: "c".into(),
            last_seq: 3,
            severity: "medium".into(),
            started_at: None,
            updated_at: t(30),
            ended_at: None,
        };
        let known = Known {
            episodes: vec![stored.clone()],
            cases: vec![stored_case("c", "dispatched", 30)],
            ..Known::default()
        };
        let start = of_episode(event(0, 0.0, Severity::High), id, 1, EventKind::Raised);
        let p = run(&[start], known);
        assert_eq!(p.placed[0].case_id, "c");
        assert!(p.changed_cases.is_empty() && p.timeline.is_empty());
        assert_eq!(
            p.changed_episodes,
            vec![EpisodeNow {
                started_at: Some(t(0)),
                ..stored
            }]
        );
    }

    #[test]
    fn an_update_that_outlived_its_closed_case_moves_the_episode_to_a_new_case() {
        let id = Uuid::now_v7();
        let known = Known {
            episodes: vec![EpisodeNow {
                id,
                case_id: "c".into(),
                last_seq: 1,
                severity: "medium".into(),
                started_at: Some(t(0)),
                updated_at: t(0),
                ended_at: None,
            }],
            cases: vec![stored_case("c", "closed", 0)],
            ..Known::default()
        };
        let update = of_episode(event(50, 0.0, Severity::Low), id, 2, EventKind::Update);
        let p = run(&[update], known);
        let new_case = p.opened[0].1.id.to_string();
        assert_eq!(p.placed[0].case_id, new_case);
        let moved = &p.changed_episodes[0];
        assert_eq!(
            (moved.case_id.as_str(), moved.last_seq),
            (new_case.as_str(), 2)
        );
        assert_eq!(moved.started_at, Some(t(0)), "its start is kept");
    }

    #[test]
    fn an_episode_first_seen_in_the_batch_is_inserted_as_the_batch_leaves_it() {
        let id = Uuid::now_v7();
        let events = [
            of_episode(event(0, 0.0, Severity::Medium), id, 1, EventKind::Raised),
            of_episode(event(9, 0.0, Severity::Low), id, 3, EventKind::Ended),
            of_episode(event(5, 0.0, Severity::High), id, 2, EventKind::Update),
        ];
        let p = run(&events, Known::default());
        assert_eq!(p.opened.len(), 1);
        assert!(p.changed_episodes.is_empty());
        let new = &p.new_episodes[0];
        assert_eq!(new.index, 0);
        assert_eq!(
            new.state.last_seq, 3,
            "the late seq 2 does not undo the end"
        );
        assert_eq!(new.state.ended_at, Some(t(9)));
        assert_eq!(new.state.severity, "low");
        let actions: Vec<_> = p.timeline.iter().map(|e| e.action).collect();
        assert_eq!(actions, ["open", "episode_ended"]);
    }
}
