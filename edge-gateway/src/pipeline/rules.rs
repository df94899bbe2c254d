//! Rules turn detections into hits. Pure: `step(detections, frame size, now)` with no
//! clock and no I/O, so every case is tested with simulated time.
//!
//! The crowd rule: persons whose foot point (bottom centre of the box) lies in the zone,
//! counted at or above a score, at least `min_persons` of them in every analysed frame for
//! `dwell` → a hit; then silence for `cooldown` so a standing crowd raises one event, not one
//! per frame.

use std::time::Duration;

use chrono::{DateTime, Utc};
use protocol::{CategoryCode, Severity};

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
    pub min_score: f32,
    /// How long the count must stay at or above `min_persons` before a hit.
    pub dwell: Duration,
    pub cooldown: Duration,
    pub medium_at: u32,
    pub high_at: u32,
    pub zone: Option<Zone>,
    pub category: CategoryCode,
}

/// A crowd seen: who was counted and how serious it is.
#[derive(Debug, Clone, PartialEq)]
pub struct CrowdHit {
    pub persons: Vec<Detection>,
    pub severity: Severity,
    pub category: CategoryCode,
}

/// The crowd rule's memory for one camera.
#[derive(Debug, Default)]
pub struct CrowdState {
    last_hit: Option<DateTime<Utc>>,
    /// When the count last rose to the threshold, while it stays there.
    above_since: Option<DateTime<Utc>>,
}

/// COCO's class index for `person`.
pub const PERSON: usize = 0;

impl CrowdRule {
    /// Persons counted by this rule in a `width × height` frame.
    pub fn count(&self, detections: &[Detection], width: u32, height: u32) -> Vec<Detection> {
        detections
            .iter()
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
        detections: &[Detection],
        width: u32,
        height: u32,
        now: DateTime<Utc>,
    ) -> Option<CrowdHit> {
        let persons = self.count(detections, width, height);
        if (persons.len() as u32) < self.min_persons {
            state.above_since = None;
            return None;
        }
        let since = *state.above_since.get_or_insert(now);
        if now
            .signed_duration_since(since)
            .to_std()
            .unwrap_or_default()
            < self.dwell
        {
            return None;
        }
        let cooling = state.last_hit.is_some_and(|t| {
            now.signed_duration_since(t)
                .to_std()
                .is_ok_and(|d| d < self.cooldown)
        });
        if cooling {
            return None;
        }
        state.last_hit = Some(now);
        Some(CrowdHit {
            severity: self.severity(persons.len() as u32),
            persons,
            category: self.category.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
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
            min_score: 0.5,
            dwell: Duration::ZERO,
            cooldown: Duration::from_secs(60),
            medium_at: 5,
            high_at: 8,
            zone: None,
            category: "event:0407".parse().unwrap(),
        }
    }

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
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
        assert_eq!(rule().count(&dets, 100, 100).len(), 2);
        assert!(
            rule()
                .step(&mut CrowdState::default(), &dets, 100, 100, t(0))
                .is_none()
        );
    }

    #[test]
    fn raises_once_per_cooldown() {
        let r = rule();
        let mut s = CrowdState::default();
        let dets: Vec<_> = (0..3)
            .map(|i| person(10.0 + 20.0 * i as f32, 50.0, 0.9))
            .collect();
        let hit = r.step(&mut s, &dets, 100, 100, t(0)).unwrap();
        assert_eq!((hit.persons.len(), hit.severity), (3, Severity::Low));
        assert!(r.step(&mut s, &dets, 100, 100, t(30)).is_none());
        assert!(r.step(&mut s, &dets, 100, 100, t(59)).is_none());
        assert!(r.step(&mut s, &dets, 100, 100, t(60)).is_some());
    }

    #[test]
    fn a_crowd_must_stay_for_the_dwell_time() {
        let r = CrowdRule {
            dwell: Duration::from_secs(10),
            ..rule()
        };
        let mut s = CrowdState::default();
        let crowd: Vec<_> = (0..3)
            .map(|i| person(10.0 + 20.0 * i as f32, 50.0, 0.9))
            .collect();
        let few = &crowd[..2];
        assert!(
            r.step(&mut s, &crowd, 100, 100, t(0)).is_none(),
            "just formed"
        );
        assert!(r.step(&mut s, &crowd, 100, 100, t(9)).is_none());
        // One frame under the threshold restarts the clock.
        assert!(r.step(&mut s, few, 100, 100, t(10)).is_none());
        assert!(r.step(&mut s, &crowd, 100, 100, t(11)).is_none());
        assert!(r.step(&mut s, &crowd, 100, 100, t(20)).is_none());
        assert!(
            r.step(&mut s, &crowd, 100, 100, t(21)).is_some(),
            "10 s above the threshold"
        );
        // Still there: the cooldown holds the next event back.
        assert!(r.step(&mut s, &crowd, 100, 100, t(40)).is_none());
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
        assert_eq!(r.count(&dets, 100, 100).len(), 2);
        // A box reaching into the zone with its foot outside does not count.
        let straddling = Detection {
            x1: 30.0,
            x2: 90.0,
            ..person(60.0, 90.0, 0.9)
        };
        assert!(r.count(&[straddling], 100, 100).is_empty());
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
