//! Re-inspection (自动核查): the hub asks a camera to look again for a hazard a department
//! has reported dealt with. The camera's own hazard rule judges — its classes for the case's
//! category, its score, zone and k-of-n — over the next `window` analysed frames: seen in at
//! least `frames` of them → still present, else cleared. Pure: `step` per analysed frame
//! and `expired` against a given time, no clock and no I/O.

use std::time::Duration;

use chrono::{DateTime, Utc};
use protocol::gateway::{Reinspection, ReinspectionOutcome};

use super::hazard::HazardRule;
use crate::detect::Detection;

/// One request being looked into.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub request: Reinspection,
    /// When the gateway took it up.
    pub since: DateTime<Utc>,
    /// The rule's classes for the request's category.
    classes: Vec<usize>,
    frames: u32,
    seen: usize,
    best: Option<Detection>,
}

/// What the frames showed.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub outcome: ReinspectionOutcome,
    pub frames: u32,
    /// The best box of the category's classes over all the frames, if any passed the rule.
    pub best: Option<Detection>,
}

impl Inspection {
    /// Starts looking; `Err` says why this camera cannot judge the request (no hazard
    /// rule, or none of its classes raises the request's category).
    pub fn new(
        request: &Reinspection,
        rule: Option<&HazardRule>,
        since: DateTime<Utc>,
    ) -> Result<Self, String> {
        let rule = rule.ok_or_else(|| {
            format!(
                "camera {} has no hazard rule to look for {} with",
                request.camera_id, request.category
            )
        })?;
        let classes: Vec<usize> = rule
            .classes
            .iter()
            .filter(|c| c.category == request.category)
            .map(|c| c.class)
            .collect();
        if classes.is_empty() {
            return Err(format!(
                "no hazard class of camera {}'s model raises {}",
                request.camera_id, request.category
            ));
        }
        Ok(Self {
            request: request.clone(),
            since,
            classes,
            frames: 0,
            seen: 0,
            best: None,
        })
    }

    /// Takes one analysed frame; the finding once `rule.window` frames have been seen.
    pub fn step(
        &mut self,
        rule: &HazardRule,
        detections: &[Detection],
        width: u32,
        height: u32,
    ) -> Option<Finding> {
        let best = self
            .classes
            .iter()
            .filter_map(|&c| rule.best(c, detections, width, height))
            .max_by(|a, b| a.score.total_cmp(&b.score));
        self.frames += 1;
        if let Some(b) = best {
            self.seen += 1;
            if self.best.is_none_or(|old| b.score > old.score) {
                self.best = Some(b);
            }
        }
        if (self.frames as usize) < rule.window {
            return None;
        }
        Some(Finding {
            outcome: if self.seen >= rule.frames {
                ReinspectionOutcome::StillPresent
            } else {
                ReinspectionOutcome::Cleared
            },
            frames: self.frames,
            best: self.best,
        })
    }

    /// Frames analysed so far.
    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// Whether the camera has taken longer than `limit` to deliver its frames (offline, or
    /// sampled too slowly); the answer is then `not_checked` with how far it got.
    pub fn expired(&self, now: DateTime<Utc>, limit: Duration) -> Option<String> {
        let waited = now.signed_duration_since(self.since).to_std().ok()?;
        (waited >= limit).then(|| {
            format!(
                "camera {} analysed {} frames in {} s, fewer than the hazard rule needs",
                self.request.camera_id,
                self.frames,
                limit.as_secs()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use protocol::Severity;

    use super::*;
    use crate::pipeline::episode::Timing;
    use crate::pipeline::hazard::HazardClass;

    const BROKEN: usize = 1;

    fn rule() -> HazardRule {
        HazardRule {
            classes: vec![HazardClass {
                class: BROKEN,
                label: "manhole_broken".into(),
                category: "component:0114".parse().unwrap(),
                severity: Severity::Medium,
            }],
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

    fn request(category: &str) -> Reinspection {
        Reinspection {
            id: uuid::Uuid::now_v7(),
            case_id: uuid::Uuid::now_v7(),
            camera_id: "road".into(),
            category: category.parse().unwrap(),
            bbox: None,
            requested_at: t(0),
        }
    }

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn cover(score: f32) -> Detection {
        Detection {
            class: BROKEN,
            score,
            x1: 40.0,
            y1: 40.0,
            x2: 60.0,
            y2: 60.0,
        }
    }

    #[test]
    fn a_cover_seen_in_k_of_n_frames_is_still_present() {
        let rule = rule();
        let mut i = Inspection::new(&request("component:0114"), Some(&rule), t(0)).unwrap();
        assert_eq!(i.step(&rule, &[cover(0.7)], 100, 100), None);
        assert_eq!(i.step(&rule, &[], 100, 100), None);
        let f = i.step(&rule, &[cover(0.9)], 100, 100).unwrap();
        assert_eq!(f.outcome, ReinspectionOutcome::StillPresent);
        assert_eq!(f.frames, 3);
        assert_eq!(f.best.unwrap().score, 0.9);
    }

    #[test]
    fn one_glimpse_or_weak_scores_are_cleared() {
        let rule = rule();
        let mut i = Inspection::new(&request("component:0114"), Some(&rule), t(0)).unwrap();
        i.step(&rule, &[cover(0.8)], 100, 100);
        i.step(&rule, &[cover(0.3)], 100, 100);
        let f = i.step(&rule, &[cover(0.4)], 100, 100).unwrap();
        assert_eq!(f.outcome, ReinspectionOutcome::Cleared);
        assert_eq!(
            f.best.unwrap().score,
            0.8,
            "the one box that passed the rule"
        );
    }

    #[test]
    fn a_category_the_camera_cannot_judge_is_refused_with_the_reason() {
        let rule = rule();
        let e = Inspection::new(&request("event:0407"), Some(&rule), t(0)).unwrap_err();
        assert!(e.contains("event:0407"), "{e}");
        let e = Inspection::new(&request("component:0114"), None, t(0)).unwrap_err();
        assert!(e.contains("no hazard rule"), "{e}");
    }

    #[test]
    fn a_silent_camera_expires() {
        let rule = rule();
        let mut i = Inspection::new(&request("component:0114"), Some(&rule), t(0)).unwrap();
        i.step(&rule, &[], 100, 100);
        let limit = Duration::from_secs(120);
        assert_eq!(i.expired(t(119), limit), None);
        let note = i.expired(t(120), limit).unwrap();
        assert!(note.contains("analysed 1 frames"), "{note}");
    }
}
