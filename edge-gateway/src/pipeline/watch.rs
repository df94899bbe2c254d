//! One camera's rules over time. An analysed frame's detections are tracked and step the
//! camera's rules at the frame's capture time. A frame skipped as still (motion gating)
//! steps them again with what the last analysed frame held, as if it had been analysed: the
//! scene has not changed, so neither would the detections. A rule's dwell, its `k` of `n`
//! frames and its clear time then run as they would without gating, and a hazard seen once
//! in a still scene is not lost while the gate waits for its forced check. Pure: no clock,
//! no I/O.

use chrono::{DateTime, Utc};

use super::frames::Frame;
use super::hazard::{HazardHit, HazardRule, HazardState};
use super::rules::{CrowdHit, CrowdRule, CrowdState, PERSON};
use super::track::{Tracked, Tracker, TrackerSettings};
use crate::detect::Detection;

/// The rules a camera runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rules<'a> {
    pub crowd: Option<&'a CrowdRule>,
    pub hazard: Option<&'a HazardRule>,
}

impl Rules<'_> {
    /// Whether one of the rules looks at objects of `class`.
    fn watch(&self, class: usize) -> bool {
        self.crowd.is_some() && class == PERSON
            || self
                .hazard
                .is_some_and(|r| r.classes.iter().any(|c| c.class == class))
    }
}

/// One camera's tracker and rule states, and the last frame analysed.
pub struct Watch {
    tracker: Tracker,
    crowd: CrowdState,
    hazard: HazardState,
    last: Option<Last>,
}

/// What the last analysed frame held; its pixels only while something a rule watches is in
/// view or an episode goes on (only then can a still frame raise an event needing a
/// snapshot).
struct Last {
    width: u32,
    height: u32,
    detections: Vec<Detection>,
    frame: Option<Frame>,
}

/// The rules' hits at one frame, analysed or still, with what they were judged on.
pub struct Step<'w> {
    pub at: DateTime<Utc>,
    pub width: u32,
    pub height: u32,
    /// The pixels to draw evidence on: the frame itself or, for a still frame, the last
    /// one analysed.
    pub frame: Option<&'w Frame>,
    pub detections: &'w [Detection],
    pub tracks: Vec<Tracked>,
    pub crowd: Option<CrowdHit>,
    pub hazard: Vec<HazardHit>,
}

impl Default for Watch {
    fn default() -> Self {
        Self {
            tracker: Tracker::new(TrackerSettings::default()),
            crowd: CrowdState::default(),
            hazard: HazardState::default(),
            last: None,
        }
    }
}

impl Watch {
    /// An analysed frame and the detections found in it.
    pub fn analysed(&mut self, rules: Rules, frame: Frame, detections: Vec<Detection>) -> Step<'_> {
        let at = frame.captured_at;
        self.last = Some(Last {
            width: frame.width,
            height: frame.height,
            detections,
            frame: Some(frame),
        });
        self.step(rules, at).expect("a frame was just analysed")
    }

    /// A frame captured `at` and skipped as still; `None` before any frame was analysed.
    pub fn still(&mut self, rules: Rules, at: DateTime<Utc>) -> Option<Step<'_>> {
        self.step(rules, at)
    }

    fn step(&mut self, rules: Rules, at: DateTime<Utc>) -> Option<Step<'_>> {
        let last = self.last.as_mut()?;
        let (width, height) = (last.width, last.height);
        let tracks = self.tracker.step(&last.detections);
        let crowd = rules
            .crowd
            .and_then(|r| r.step(&mut self.crowd, &tracks, width, height, at));
        let hazard = rules.hazard.map_or_else(Vec::new, |r| {
            r.step(&mut self.hazard, &last.detections, width, height, at)
        });
        let in_view = last.detections.iter().any(|d| rules.watch(d.class));
        if !in_view && !self.crowd.is_active() && !self.hazard.is_active() {
            last.frame = None;
        }
        Some(Step {
            at,
            width,
            height,
            frame: last.frame.as_ref(),
            detections: &last.detections,
            tracks,
            crowd,
            hazard,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use protocol::Severity;

    use super::*;
    use crate::pipeline::episode::{Phase, Timing};
    use crate::pipeline::hazard::HazardClass;

    const COVER: usize = 1;

    fn timing() -> Timing {
        Timing {
            dwell: Duration::ZERO,
            clear: Duration::from_secs(5),
            update_every: Duration::from_secs(60),
            refresh: Duration::from_secs(3600),
            cooldown: Duration::from_secs(60),
        }
    }

    fn hazard_rule() -> HazardRule {
        HazardRule {
            classes: vec![HazardClass {
                class: COVER,
                label: "manhole_missing".into(),
                category: "component:0114".parse().unwrap(),
                severity: Severity::High,
            }],
            min_score: 0.5,
            frames: 3,
            window: 5,
            timing: timing(),
            zone: None,
        }
    }

    fn crowd_rule() -> CrowdRule {
        CrowdRule {
            min_persons: 3,
            clear_below: 3,
            min_score: 0.5,
            tracked: true,
            timing: timing(),
            medium_at: 5,
            high_at: 8,
            zone: None,
            category: "event:0407".parse().unwrap(),
        }
    }

    fn object(class: usize, x: f32) -> Detection {
        Detection {
            class,
            score: 0.9,
            x1: x,
            y1: 40.0,
            x2: x + 8.0,
            y2: 60.0,
        }
    }

    fn frame(at: DateTime<Utc>) -> Frame {
        Frame {
            camera: 0,
            width: 100,
            height: 100,
            bgr: vec![0; 100 * 100 * 3],
            captured_at: at,
        }
    }

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn a_hazard_seen_once_in_a_still_scene_starts_on_the_still_frames() {
        let rule = hazard_rule();
        let rules = Rules {
            crowd: None,
            hazard: Some(&rule),
        };
        let mut watch = Watch::default();
        assert!(watch.still(rules, t(0)).is_none(), "nothing analysed yet");
        let step = watch.analysed(rules, frame(t(1)), vec![object(COVER, 10.0)]);
        assert!(step.hazard.is_empty(), "seen in 1 of the 3 frames needed");
        assert!(watch.still(rules, t(2)).unwrap().hazard.is_empty());
        let step = watch.still(rules, t(3)).unwrap();
        let [hit] = step.hazard.as_slice() else {
            panic!(
                "the third frame, still, starts the hazard: {:?}",
                step.hazard
            );
        };
        assert_eq!(hit.report.phase, Phase::Start);
        assert_eq!(step.at, t(3), "the event is dated by the still frame");
        assert!(step.frame.is_some(), "with the analysed frame's pixels");
        assert_eq!(step.detections, &[object(COVER, 10.0)]);
    }

    #[test]
    fn persons_appearing_are_confirmed_and_counted_on_still_frames() {
        let rule = crowd_rule();
        let rules = Rules {
            crowd: Some(&rule),
            hazard: None,
        };
        let persons: Vec<Detection> = (0..4).map(|i| object(PERSON, i as f32 * 20.0)).collect();
        let mut watch = Watch::default();
        let step = watch.analysed(rules, frame(t(0)), persons);
        assert!(step.crowd.is_none(), "tracks seen once are not yet counted");
        assert_eq!(step.tracks.iter().filter(|t| t.confirmed).count(), 0);
        let step = watch.still(rules, t(1)).unwrap();
        assert_eq!(step.tracks.iter().filter(|t| t.confirmed).count(), 4);
        let hit = step.crowd.expect("the crowd starts on the still frame");
        assert_eq!((hit.report.phase, hit.persons.len()), (Phase::Start, 4));
    }

    #[test]
    fn a_scene_without_watched_objects_keeps_no_pixels_and_a_still_frame_ends_what_went_on() {
        let rule = hazard_rule();
        let rules = Rules {
            crowd: None,
            hazard: Some(&rule),
        };
        let mut watch = Watch::default();
        for s in 0..3 {
            watch.analysed(rules, frame(t(s)), vec![object(COVER, 10.0)]);
        }
        // The cover is mended: an analysed empty frame, then the scene stands still.
        let step = watch.analysed(rules, frame(t(3)), Vec::new());
        assert!(step.hazard.is_empty());
        assert!(step.frame.is_some(), "kept while the hazard goes on");
        let ended: Vec<DateTime<Utc>> = (4..20)
            .filter_map(|s| {
                let step = watch.still(rules, t(s)).unwrap();
                let ends = step.hazard.iter().any(|h| h.report.phase == Phase::End);
                ends.then_some(step.at)
            })
            .collect();
        // Seen in 3 of the last 5 until the frame of t(5); gone from then for `clear` (5 s).
        assert_eq!(ended, vec![t(10)]);
        let step = watch.still(rules, t(21)).unwrap();
        assert!(step.frame.is_none(), "nothing in view, nothing going on");
        // A person is nothing this camera's rules watch.
        let step = watch.analysed(rules, frame(t(22)), vec![object(PERSON, 10.0)]);
        assert!(step.frame.is_none(), "no rule watches persons here");
    }
}
