//! The hazard rule: an object that is itself the problem (a broken or missing manhole
//! cover). Pure: `step(detections, frame size, now)` with no clock and no I/O.
//!
//! A class counts as seen in a frame when a box of it scores at least `min_score` (with its
//! centre inside the zone, if there is one). Seen in `frames` of the last `window` analysed
//! frames, it holds: the class's episode (`super::episode`) starts, is updated when a surer
//! box is seen, and ends once the class has not held for `clear` (the cover was mended, or
//! something stands on it for a long time). Single misses (a passing car) and single false
//! alarms (a puddle for one frame) decide nothing.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use protocol::{CategoryCode, Severity};

use super::episode::{Lifecycle, News, Phase, Report, Timing};
use super::rules::Zone;
use crate::config::HazardSettings;
use crate::detect::{Detection, ModelManifest};

/// A surer box than the last reported by at least this much is worth an update.
const BETTER_BY: f32 = 0.05;

/// A model class the rule watches, with the event it raises.
#[derive(Debug, Clone, PartialEq)]
pub struct HazardClass {
    pub class: usize,
    pub label: String,
    pub category: CategoryCode,
    pub severity: Severity,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HazardRule {
    pub classes: Vec<HazardClass>,
    pub min_score: f32,
    /// Frames of the last `window` the class must be seen in.
    pub frames: usize,
    pub window: usize,
    pub timing: Timing,
    pub zone: Option<Zone>,
}

/// A hazard event due: the class and its best box in this frame (none in the frame that
/// ends the episode).
#[derive(Debug, Clone, PartialEq)]
pub struct HazardHit {
    pub report: Report,
    pub class: HazardClass,
    pub best: Option<Detection>,
}

/// The rule's memory for one camera, per watched class.
#[derive(Debug, Default)]
pub struct HazardState {
    classes: Vec<ClassState>,
}

impl HazardState {
    /// Whether a hazard episode of any watched class is going on.
    pub fn is_active(&self) -> bool {
        self.classes.iter().any(|c| c.life.is_active())
    }
}

#[derive(Debug, Default)]
struct ClassState {
    seen: VecDeque<bool>,
    life: Lifecycle,
    /// The score of the box the episode's last event showed.
    reported: f32,
}

impl HazardRule {
    /// The camera's settings with the classes its model's manifest marks `rule = "hazard"`
    /// and, unless the camera sets one, the model's recorded operating score.
    pub fn new(settings: &HazardSettings, manifest: &ModelManifest) -> Result<Self, String> {
        let classes: Vec<HazardClass> = manifest
            .events
            .iter()
            .filter(|(_, e)| e.rule == "hazard")
            .filter_map(|(label, e)| {
                Some(HazardClass {
                    class: manifest.class_index(label)?,
                    label: label.clone(),
                    category: e.category.clone(),
                    severity: e.severity.unwrap_or(Severity::Medium),
                })
            })
            .collect();
        if classes.is_empty() {
            return Err(format!(
                "the model {} names no hazard classes (events with rule = \"hazard\" in its manifest)",
                manifest.id()
            ));
        }
        Ok(Self {
            classes,
            min_score: settings
                .min_score
                .or(manifest.evaluation.as_ref().map(|e| e.score_threshold))
                .unwrap_or(0.5),
            frames: settings.frames,
            window: settings.window,
            timing: settings.timing,
            zone: settings.zone.clone(),
        })
    }

    /// The best box of `class` this rule accepts in a `width × height` frame.
    pub(super) fn best(
        &self,
        class: usize,
        detections: &[Detection],
        width: u32,
        height: u32,
    ) -> Option<Detection> {
        detections
            .iter()
            .filter(|d| d.class == class && d.score >= self.min_score)
            .filter(|d| {
                let cx = (d.x1 + d.x2) / 2.0 / width as f32;
                let cy = (d.y1 + d.y2) / 2.0 / height as f32;
                self.zone.as_ref().is_none_or(|z| z.contains(cx, cy))
            })
            .max_by(|a, b| a.score.total_cmp(&b.score))
            .copied()
    }

    pub fn step(
        &self,
        state: &mut HazardState,
        detections: &[Detection],
        width: u32,
        height: u32,
        now: DateTime<Utc>,
    ) -> Vec<HazardHit> {
        state
            .classes
            .resize_with(self.classes.len(), ClassState::default);
        let mut hits = Vec::new();
        for (class, st) in self.classes.iter().zip(&mut state.classes) {
            let best = self.best(class.class, detections, width, height);
            st.seen.push_back(best.is_some());
            while st.seen.len() > self.window {
                st.seen.pop_front();
            }
            let holds = st.seen.iter().filter(|s| **s).count() >= self.frames;
            let news = match best {
                Some(b) if st.life.is_active() && b.score >= st.reported + BETTER_BY => {
                    News::Better
                }
                _ => News::Nothing,
            };
            let Some(report) = st.life.step(&self.timing, holds, news, now) else {
                continue;
            };
            if report.phase != Phase::End {
                st.reported = best.map_or(0.0, |b| b.score);
            }
            hits.push(HazardHit {
                report,
                class: class.clone(),
                best,
            });
        }
        hits
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const BROKEN: usize = 1;
    const MISSING: usize = 2;

    fn cover(class: usize, x: f32, score: f32) -> Detection {
        Detection {
            class,
            score,
            x1: x - 5.0,
            y1: 45.0,
            x2: x + 5.0,
            y2: 55.0,
        }
    }

    fn rule() -> HazardRule {
        let watched = |class, label: &str, severity| HazardClass {
            class,
            label: label.into(),
            category: "component:0114".parse().unwrap(),
            severity,
        };
        HazardRule {
            classes: vec![
                watched(BROKEN, "manhole_broken", Severity::Medium),
                watched(MISSING, "manhole_missing", Severity::High),
            ],
            min_score: 0.5,
            frames: 2,
            window: 3,
            timing: Timing {
                dwell: Duration::ZERO,
                clear: Duration::from_secs(60),
                update_every: Duration::from_secs(60),
                refresh: Duration::from_secs(3600),
                cooldown: Duration::from_secs(600),
            },
            zone: None,
        }
    }

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn needs_k_of_the_last_n_frames() {
        let r = rule();
        let mut s = HazardState::default();
        let seen = [cover(BROKEN, 50.0, 0.8)];
        assert!(
            r.step(&mut s, &seen, 100, 100, t(0)).is_empty(),
            "one frame is not enough"
        );
        assert!(
            r.step(&mut s, &[], 100, 100, t(1)).is_empty(),
            "a car passes over it"
        );
        let hits = r.step(&mut s, &seen, 100, 100, t(2));
        assert_eq!(hits.len(), 1, "2 of the last 3 frames");
        assert_eq!(hits[0].class.label, "manhole_broken");
        assert_eq!(hits[0].report.phase, Phase::Start);
        assert_eq!(hits[0].best, Some(seen[0]));
    }

    #[test]
    fn scattered_false_alarms_never_decide() {
        let r = rule();
        let mut s = HazardState::default();
        for i in 0..30 {
            let dets = if i % 3 == 0 {
                vec![cover(MISSING, 50.0, 0.9)]
            } else {
                vec![]
            };
            assert!(
                r.step(&mut s, &dets, 100, 100, t(i)).is_empty(),
                "frame {i}"
            );
        }
    }

    #[test]
    fn low_scores_and_unwatched_classes_are_ignored() {
        let r = rule();
        let mut s = HazardState::default();
        let dets = [cover(BROKEN, 50.0, 0.4), cover(0, 20.0, 0.99)];
        for i in 0..5 {
            assert!(r.step(&mut s, &dets, 100, 100, t(i)).is_empty());
        }
    }

    #[test]
    fn a_standing_hazard_is_one_episode_per_class_until_it_is_gone() {
        let r = rule();
        let mut s = HazardState::default();
        let both = [cover(BROKEN, 20.0, 0.8), cover(MISSING, 70.0, 0.9)];
        let mut events = Vec::new();
        for i in 0..=400 {
            // Both covers stand for 300 s; then the broken one is mended.
            let dets: &[Detection] = if i < 300 { &both } else { &both[1..] };
            for hit in r.step(&mut s, dets, 100, 100, t(i)) {
                events.push((i, hit.class.label, hit.report.phase, hit.class.severity));
            }
        }
        assert_eq!(
            events,
            vec![
                (1, "manhole_broken".into(), Phase::Start, Severity::Medium),
                (1, "manhole_missing".into(), Phase::Start, Severity::High),
                // 2 of the last 3 frames hold at second 300; it has not held from 301.
                (361, "manhole_broken".into(), Phase::End, Severity::Medium),
            ]
        );
    }

    #[test]
    fn a_surer_box_updates_when_due() {
        let r = rule();
        let mut s = HazardState::default();
        let mut phases = Vec::new();
        for (i, score) in [
            (0, 0.6),
            (1, 0.6),
            (30, 0.9),
            (61, 0.62),
            (62, 0.9),
            (200, 0.93),
        ] {
            for hit in r.step(&mut s, &[cover(BROKEN, 50.0, score)], 100, 100, t(i)) {
                phases.push((
                    i,
                    hit.report.phase,
                    hit.report.episode.seq,
                    hit.best.unwrap().score,
                ));
            }
        }
        assert_eq!(
            phases,
            vec![(1, Phase::Start, 0, 0.6), (62, Phase::Update, 1, 0.9),],
            "0.9 at second 30 came before the update was due; 0.93 is not 0.05 surer than 0.9"
        );
    }

    #[test]
    fn the_zone_takes_the_box_centre() {
        let zone = Zone::new(vec![[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]).unwrap();
        let r = HazardRule {
            zone: Some(zone),
            frames: 1,
            ..rule()
        };
        let mut s = HazardState::default();
        assert!(
            r.step(&mut s, &[cover(BROKEN, 80.0, 0.9)], 100, 100, t(0))
                .is_empty()
        );
        assert_eq!(
            r.step(&mut s, &[cover(BROKEN, 30.0, 0.9)], 100, 100, t(1))
                .len(),
            1
        );
    }
}
