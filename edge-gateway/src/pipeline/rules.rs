//! Rules turn detections into events. Pure: `step(detections, frame size, now)` with no
//! clock and no I/O, so every case is tested with simulated time.
//!
//! The crowd rule: persons whose foot point (bottom centre of the box) lies in the zone,
//! counted at or above a score — by default only those the tracker has confirmed (seen in
//! two analysed frames), so a one-frame false detection never counts. At least `min_persons` of them for `dwell` starts a crowd
//! episode (`super::episode`); it is updated when the count reaches a new high (at once
//! when the risk level rises) and ends once the count has stayed under `clear_below` for
//! `clear` — a lower threshold to end than to start, so a crowd hovering at the threshold
//! raises one episode, not one per frame.

use chrono::{DateTime, Utc};
use protocol::{CategoryCode, Severity};

use super::episode::{Lifecycle, News, Phase, Report, Timing};
use super::track::Tracked;
use crate::detect::Detection;

/// A polygon in normalised frame coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone(Vec<[f32; 2]>);

impl Zone {
    pub fn new(points: Vec<[f32; 2]>) -> Result<Self, String> {
        protocol::device::check_zone(Some(&points))?;
        Ok(Self(points))
    }

    /// A zone `CameraSpec::validate` has already checked.
    pub fn checked(points: Vec<[f32; 2]>) -> Self {
        debug_assert!(protocol::device::check_zone(Some(&points)).is_ok());
        Self(points)
    }

    /// Even-odd ray casting.
    pub fn contains(&self, x: f32, y: f32) -> bool {
        let p = &self.0;
        let mut inside = false;
        let mut j = p.len() - 1;
        for i in 0..p.len() {
            let ([xi, yi], [xj, yj]) = (p[i], p[j]);
            if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
                inside = !inside;
            }
            j = i;
        }
        inside
    }
}

/// The crowd rule's settings for one camera.
#[derive(Debug, Clone, PartialEq)]
pub struct CrowdRule {
    pub min_persons: u32,
    /// While a crowd episode goes on, it ends only once the count stays under this.
    pub clear_below: u32,
    pub min_score: f32,
    /// Count confirmed tracks only (see [`Self::step`]).
    pub tracked: bool,
    pub timing: Timing,
    pub medium_at: u32,
    pub high_at: u32,
    pub zone: Option<Zone>,
    pub category: CategoryCode,
}

/// A crowd event due: who was counted in this frame and how serious the crowd is.
#[derive(Debug, Clone, PartialEq)]
pub struct CrowdHit {
    pub report: Report,
    pub persons: Vec<Detection>,
    /// The most persons counted in one frame of the episode so far.
    pub peak: u32,
    /// The risk level of the peak.
    pub severity: Severity,
    pub category: CategoryCode,
}

/// The crowd rule's memory for one camera.
#[derive(Debug, Default)]
pub struct CrowdState {
    life: Lifecycle,
    /// The count the last event of the episode reported.
    reported: u32,
    peak: u32,
}

impl CrowdState {
    /// Whether a crowd episode is going on.
    pub fn is_active(&self) -> bool {
        self.life.is_active()
    }
}

/// COCO's class index for `person`.
pub const PERSON: usize = 0;

impl CrowdRule {
    /// Persons counted by this rule in a `width × height` frame: of the frame's tracked
    /// detections, the confirmed ones (all of them when the rule is not `tracked`).
    pub fn count(&self, tracks: &[Tracked], width: u32, height: u32) -> Vec<Detection> {
        tracks
            .iter()
            .filter(|t| t.confirmed || !self.tracked)
            .map(|t| &t.detection)
            .filter(|d| d.class == PERSON && d.score >= self.min_score)
            .filter(|d| {
                let foot_x = (d.x1 + d.x2) / 2.0 / width as f32;
                let foot_y = d.y2 / height as f32;
                self.zone
                    .as_ref()
                    .is_none_or(|z| z.contains(foot_x, foot_y))
            })
            .copied()
            .collect()
    }

    pub fn severity(&self, count: u32) -> Severity {
        if count >= self.high_at {
            Severity::High
        } else if count >= self.medium_at {
            Severity::Medium
        } else {
            Severity::Low
        }
    }

    pub fn step(
        &self,
        state: &mut CrowdState,
        tracks: &[Tracked],
        width: u32,
        height: u32,
        now: DateTime<Utc>,
    ) -> Option<CrowdHit> {
        let persons = self.count(tracks, width, height);
        let count = persons.len() as u32;
        let active = state.life.is_active();
        let holds = count
            >= if active {
                self.clear_below
            } else {
                self.min_persons
            };
        let news = if !active || count <= state.reported {
            News::Nothing
        } else if self.severity(count) > self.severity(state.reported) {
            News::Graver
        } else {
            News::Better
        };
        if active {
            state.peak = state.peak.max(count);
        }
        let report = state.life.step(&self.timing, holds, news, now)?;
        match report.phase {
            Phase::Start => {
                (state.reported, state.peak) = (count, count);
            }
            Phase::Update => state.reported = count,
            Phase::End => {}
        }
        Some(CrowdHit {
            report,
            persons,
            peak: state.peak,
            severity: self.severity(state.peak),
            category: self.category.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn person(x: f32, y: f32, score: f32) -> Detection {
        // A 10×40 box whose foot point is (x, y) in a 100×100 frame.
        Detection {
            class: PERSON,
            score,
            x1: x - 5.0,
            y1: y - 40.0,
            x2: x + 5.0,
            y2: y,
        }
    }

    fn rule() -> CrowdRule {
        CrowdRule {
            min_persons: 3,
            clear_below: 3,
            min_score: 0.5,
            tracked: true,
            timing: Timing {
                dwell: Duration::ZERO,
                clear: Duration::ZERO,
                update_every: Duration::ZERO,
                refresh: Duration::from_secs(3600),
                cooldown: Duration::from_secs(60),
            },
            medium_at: 5,
            high_at: 8,
            zone: None,
            category: "event:0407".parse().unwrap(),
        }
    }

    /// Detections as tracks the tracker has confirmed.
    fn confirmed(detections: &[Detection]) -> Vec<Tracked> {
        detections
            .iter()
            .zip(1..)
            .map(|(d, id)| Tracked {
                id,
                detection: *d,
                confirmed: true,
            })
            .collect()
    }

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn crowd(n: usize) -> Vec<Detection> {
        (0..n)
            .map(|i| person(5.0 + 9.0 * i as f32, 50.0, 0.9))
            .collect()
    }

    /// Steps through `(second, persons)` and returns what each event said, by second.
    fn run(
        r: &CrowdRule,
        frames: impl IntoIterator<Item = (i64, usize)>,
    ) -> Vec<(i64, Phase, usize, u32, Severity)> {
        let mut s = CrowdState::default();
        frames
            .into_iter()
            .filter_map(|(sec, n)| {
                let hit = r.step(&mut s, &confirmed(&crowd(n)), 100, 100, t(sec))?;
                Some((
                    sec,
                    hit.report.phase,
                    hit.persons.len(),
                    hit.peak,
                    hit.severity,
                ))
            })
            .collect()
    }

    #[test]
    fn counts_confident_persons_only() {
        let mut dets = vec![
            person(10.0, 50.0, 0.9),
            person(20.0, 50.0, 0.9),
            person(30.0, 50.0, 0.4),
        ];
        dets.push(Detection {
            class: 2,
            ..person(40.0, 50.0, 0.9)
        });
        assert_eq!(rule().count(&confirmed(&dets), 100, 100).len(), 2);
        assert!(
            rule()
                .step(
                    &mut CrowdState::default(),
                    &confirmed(&dets),
                    100,
                    100,
                    t(0)
                )
                .is_none()
        );
    }

    #[test]
    fn a_person_seen_in_one_frame_only_is_not_counted() {
        use crate::pipeline::track::{Tracker, TrackerSettings};
        let r = CrowdRule {
            min_persons: 4,
            clear_below: 4,
            ..rule()
        };
        let mut tracker = Tracker::new(TrackerSettings::default());
        let mut state = CrowdState::default();
        // Three people stand still; a fourth box flickers every other frame, each time at
        // a place it has not been for longer than a track outlives a miss.
        let mut raised = Vec::new();
        for frame in 0..20 {
            let mut dets = crowd(3);
            if frame % 2 == 1 {
                let spot = (frame / 2) % 5;
                dets.push(person(45.0 + spot as f32 * 11.0, 90.0, 0.9));
            }
            let tracks = tracker.step(&dets);
            raised.extend(r.step(&mut state, &tracks, 100, 100, t(frame)));
        }
        assert!(raised.is_empty(), "{raised:?}");
        // Counting every detection, the flicker makes a crowd of four at once.
        let untracked = CrowdRule {
            tracked: false,
            ..r.clone()
        };
        let mut tracker = Tracker::new(TrackerSettings::default());
        let mut dets = crowd(3);
        dets.push(person(60.0, 90.0, 0.9));
        let tracks = tracker.step(&dets);
        assert!(tracks.iter().all(|t| !t.confirmed));
        assert!(
            untracked
                .step(&mut CrowdState::default(), &tracks, 100, 100, t(0))
                .is_some()
        );
        assert!(r.count(&tracks, 100, 100).is_empty());
    }

    #[test]
    fn a_standing_crowd_is_one_episode() {
        let r = rule();
        let events = run(&r, (0..600).map(|s| (s, 3)));
        assert_eq!(events, vec![(0, Phase::Start, 3, 3, Severity::Low)]);
    }

    #[test]
    fn a_crowd_must_stay_for_the_dwell_time() {
        let r = CrowdRule {
            timing: Timing {
                dwell: Duration::from_secs(10),
                ..rule().timing
            },
            ..rule()
        };
        // One frame under the threshold (second 10) restarts the clock.
        let frames = (0..=30).map(|s| (s, if s == 10 { 2 } else { 3 }));
        assert_eq!(
            run(&r, frames),
            vec![(21, Phase::Start, 3, 3, Severity::Low)]
        );
    }

    #[test]
    fn growth_updates_and_a_lower_threshold_ends() {
        let r = CrowdRule {
            min_persons: 4,
            clear_below: 2,
            timing: Timing {
                clear: Duration::from_secs(5),
                update_every: Duration::from_secs(60),
                ..rule().timing
            },
            medium_at: 6,
            high_at: 9,
            ..rule()
        };
        let counts = [
            (0, 4),
            (10, 5), // more, but the next update is not due: held back
            (20, 6), // medium risk: at once
            (30, 3), // under min_persons but not under clear_below: goes on
            (70, 9), // high risk: at once
            (80, 1), // gone...
            (84, 1), // ...not yet for 5 s
            (85, 1), // ended, with the episode's peak
            (86, 4), // cooldown
        ];
        assert_eq!(
            run(&r, counts),
            vec![
                (0, Phase::Start, 4, 4, Severity::Low),
                (20, Phase::Update, 6, 6, Severity::Medium),
                (70, Phase::Update, 9, 9, Severity::High),
                (85, Phase::End, 1, 9, Severity::High),
            ]
        );
    }

    #[test]
    fn a_new_high_within_a_level_waits_for_the_update_time() {
        let r = CrowdRule {
            timing: Timing {
                update_every: Duration::from_secs(60),
                ..rule().timing
            },
            high_at: 100,
            medium_at: 50,
            ..rule()
        };
        let events = run(&r, [(0, 3), (30, 7), (59, 8), (60, 8), (61, 9), (200, 8)]);
        assert_eq!(
            events,
            vec![
                (0, Phase::Start, 3, 3, Severity::Low),
                (60, Phase::Update, 8, 8, Severity::Low),
            ],
            "the 9 at second 61 was not due, and 8 at second 200 is no news"
        );
    }

    #[test]
    fn severity_follows_the_count() {
        let r = rule();
        assert_eq!(r.severity(4), Severity::Low);
        assert_eq!(r.severity(5), Severity::Medium);
        assert_eq!(r.severity(8), Severity::High);
    }

    #[test]
    fn zone_counts_by_foot_point() {
        // The left half of the frame.
        let zone = Zone::new(vec![[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]).unwrap();
        let r = CrowdRule {
            zone: Some(zone),
            min_persons: 2,
            ..rule()
        };
        let dets = vec![
            person(10.0, 90.0, 0.9),
            person(40.0, 90.0, 0.9),
            person(80.0, 90.0, 0.9),
        ];
        assert_eq!(r.count(&confirmed(&dets), 100, 100).len(), 2);
        // A box reaching into the zone with its foot outside does not count.
        let straddling = Detection {
            x1: 30.0,
            x2: 90.0,
            ..person(60.0, 90.0, 0.9)
        };
        assert!(r.count(&confirmed(&[straddling]), 100, 100).is_empty());
    }

    #[test]
    fn zones_are_checked() {
        assert!(Zone::new(vec![[0.0, 0.0], [1.0, 0.0]]).is_err());
        assert!(Zone::new(vec![[0.0, 0.0], [1.5, 0.0], [0.0, 1.0]]).is_err());
        let triangle = Zone::new(vec![[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]).unwrap();
        assert!(triangle.contains(0.2, 0.2));
        assert!(!triangle.contains(0.8, 0.8));
    }
}
