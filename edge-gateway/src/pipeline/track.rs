//! Tracking: objects keep an id from one analysed frame to the next, so an event can say
//! that the persons (or the cover) it shows are the same ones as before. Pure, no clock:
//! `step(detections)` per analysed frame of one camera.
//!
//! IoU matching with a constant-velocity guess (SORT's idea without its Kalman filter):
//! each track's box is moved on by its last displacement per frame before it is compared,
//! and detections and tracks of a class are paired greedily from the highest overlap down.
//! A detection left over starts a track; a track not seen for `max_missed` frames ends. A
//! track is confirmed once seen in `min_hits` frames, so a one-frame false alarm never
//! becomes one.

use crate::detect::Detection;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackerSettings {
    /// The least overlap of a detection with a track's predicted box to continue it.
    pub iou: f32,
    /// Frames a track may go unseen before it ends.
    pub max_missed: u32,
    /// Frames a track must be seen in before it is confirmed.
    pub min_hits: u32,
}

impl Default for TrackerSettings {
    fn default() -> Self {
        Self {
            iou: 0.2,
            max_missed: 4,
            min_hits: 2,
        }
    }
}

/// A detection with the id of the track it continues or starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tracked {
    pub id: u64,
    pub detection: Detection,
    /// Seen in at least `min_hits` frames.
    pub confirmed: bool,
}

#[derive(Debug, Clone)]
struct Track {
    id: u64,
    last: Detection,
    /// Displacement per frame (x, y) between its last two sightings.
    velocity: (f32, f32),
    hits: u32,
    missed: u32,
}

impl Track {
    /// Where the box should be now, `missed + 1` frames after it was last seen.
    fn predicted(&self) -> Detection {
        let k = (self.missed + 1) as f32;
        let (dx, dy) = (self.velocity.0 * k, self.velocity.1 * k);
        Detection {
            x1: self.last.x1 + dx,
            y1: self.last.y1 + dy,
            x2: self.last.x2 + dx,
            y2: self.last.y2 + dy,
            ..self.last
        }
    }
}

fn centre(d: &Detection) -> (f32, f32) {
    ((d.x1 + d.x2) / 2.0, (d.y1 + d.y2) / 2.0)
}

/// One camera's tracks.
#[derive(Debug, Default)]
pub struct Tracker {
    settings: TrackerSettings,
    tracks: Vec<Track>,
    next_id: u64,
}

impl Tracker {
    pub fn new(settings: TrackerSettings) -> Self {
        Self {
            settings,
            tracks: Vec::new(),
            next_id: 1,
        }
    }

    /// Tracks going on (confirmed or not).
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// Takes one analysed frame's detections; returns them in the same order, tracked.
    pub fn step(&mut self, detections: &[Detection]) -> Vec<Tracked> {
        let predicted: Vec<Detection> = self.tracks.iter().map(Track::predicted).collect();
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (t, p) in predicted.iter().enumerate() {
            for (d, det) in detections.iter().enumerate() {
                if det.class != p.class {
                    continue;
                }
                let iou = p.iou(det);
                if iou >= self.settings.iou {
                    pairs.push((iou, t, d));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut track_of: Vec<Option<usize>> = vec![None; detections.len()];
        let mut matched = vec![false; self.tracks.len()];
        for (_, t, d) in pairs {
            if matched[t] || track_of[d].is_some() {
                continue;
            }
            matched[t] = true;
            track_of[d] = Some(t);
        }
        let mut out = Vec::with_capacity(detections.len());
        for (d, det) in detections.iter().enumerate() {
            let track = match track_of[d] {
                Some(t) => {
                    let track = &mut self.tracks[t];
                    let ((x0, y0), (x1, y1)) = (centre(&track.last), centre(det));
                    let frames = (track.missed + 1) as f32;
                    track.velocity = ((x1 - x0) / frames, (y1 - y0) / frames);
                    track.last = *det;
                    track.hits += 1;
                    track.missed = 0;
                    track.clone()
                }
                None => {
                    let track = Track {
                        id: self.next_id,
                        last: *det,
                        velocity: (0.0, 0.0),
                        hits: 1,
                        missed: 0,
                    };
                    self.next_id += 1;
                    self.tracks.push(track.clone());
                    matched.push(true);
                    track
                }
            };
            out.push(Tracked {
                id: track.id,
                detection: *det,
                confirmed: track.hits >= self.settings.min_hits,
            });
        }
        let max_missed = self.settings.max_missed;
        let mut seen = matched.into_iter();
        self.tracks.retain_mut(|t| {
            if !seen.next().unwrap_or(true) {
                t.missed += 1;
            }
            t.missed <= max_missed
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(x: f32, y: f32) -> Detection {
        Detection {
            class: 0,
            score: 0.9,
            x1: x,
            y1: y,
            x2: x + 20.0,
            y2: y + 60.0,
        }
    }

    fn ids(tracked: &[Tracked]) -> Vec<u64> {
        tracked.iter().map(|t| t.id).collect()
    }

    #[test]
    fn walkers_keep_their_ids_even_when_they_move_fast() {
        let mut tracker = Tracker::new(TrackerSettings::default());
        // Two people walking towards each other and past each other, 8 px a frame, then
        // 16: a 20 px wide box 16 px on overlaps its last position by 0.11, under the
        // settings' 0.2; the velocity guess keeps them, and keeps them apart as they cross.
        let mut first = None;
        let mut x = 100.0;
        for f in 0..10 {
            x += match f {
                0 => 0.0,
                1..3 => 8.0,
                _ => 16.0,
            };
            let dets = [person(x, 50.0), person(400.0 - x, 50.0)];
            let tracked = tracker.step(&dets);
            let now = ids(&tracked);
            assert_eq!(*first.get_or_insert(now.clone()), now, "frame {f}");
            assert_eq!(tracked[0].confirmed, f >= 1);
        }
        assert_eq!(tracker.len(), 2);
    }

    #[test]
    fn a_missed_frame_is_bridged_and_a_long_absence_ends_the_track() {
        let mut tracker = Tracker::new(TrackerSettings::default());
        let a = tracker.step(&[person(100.0, 50.0)])[0].id;
        assert_eq!(tracker.step(&[person(102.0, 50.0)])[0].id, a);
        // Hidden behind a bus for two frames.
        tracker.step(&[]);
        tracker.step(&[]);
        assert_eq!(tracker.step(&[person(104.0, 50.0)])[0].id, a);
        for _ in 0..5 {
            tracker.step(&[]);
        }
        assert!(tracker.is_empty());
        assert_ne!(tracker.step(&[person(104.0, 50.0)])[0].id, a, "a new track");
    }

    #[test]
    fn classes_never_share_a_track_and_new_objects_get_new_ids() {
        let mut tracker = Tracker::new(TrackerSettings::default());
        let first = tracker.step(&[person(100.0, 50.0)]);
        let cover = Detection {
            class: 1,
            ..person(100.0, 50.0)
        };
        let second = tracker.step(&[cover, person(300.0, 50.0)]);
        assert!(second.iter().all(|t| t.id != first[0].id));
        assert_ne!(second[0].id, second[1].id);
        assert!(!second[0].confirmed);
    }
}
