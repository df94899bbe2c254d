//! The hand-over from decoders to the detector: one slot per running camera holding the
//! newest frame due. Frames are perishable, so a newer frame replaces an unanalysed one
//! (counted as a drop) and a slow detector never builds a queue. A frame due but skipped as
//! still (motion gating) is handed over as a notice without pixels, so the camera's rules
//! keep time with the scene (see `super::watch`). Slots are numbered as cameras start
//! (`crate::cameras`); a stopped camera's slot is emptied and never used again.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// A decoded frame chosen for analysis, as tightly packed BGR.
pub struct Frame {
    pub camera: usize,
    pub width: u32,
    pub height: u32,
    pub bgr: Vec<u8>,
    pub captured_at: DateTime<Utc>,
}

/// What a camera's decoder hands the detector.
pub enum Due {
    /// A frame to analyse.
    Frame(Frame),
    /// A frame skipped as still: the scene looks as it did in the last frame analysed.
    Still {
        camera: usize,
        captured_at: DateTime<Utc>,
    },
}

impl Due {
    pub fn camera(&self) -> usize {
        match self {
            Due::Frame(f) => f.camera,
            Due::Still { camera, .. } => *camera,
        }
    }
}

pub struct FrameSlots {
    slots: Mutex<(Vec<Option<Due>>, bool)>,
    ready: Condvar,
}

impl Default for FrameSlots {
    fn default() -> Self {
        Self {
            slots: Mutex::new((Vec::new(), false)),
            ready: Condvar::new(),
        }
    }
}

impl FrameSlots {
    /// Offers a frame; returns true when it replaced one the detector never saw.
    pub fn put(&self, frame: Frame) -> bool {
        let camera = frame.camera;
        let replaced = self.offer(camera, |_| Some(Due::Frame(frame)));
        matches!(replaced, Some(Due::Frame(_)))
    }

    /// Tells of a frame of `camera` skipped as still. A frame waiting in the slot stays: it
    /// is the view the still frame was compared with, and it still needs analysing.
    pub fn still(&self, camera: usize, captured_at: DateTime<Utc>) {
        self.offer(camera, |waiting| match waiting {
            Some(Due::Frame(_)) => None,
            _ => Some(Due::Still {
                camera,
                captured_at,
            }),
        });
    }

    /// Puts what `next` makes of the waiting offer (`None`: leave it) into `camera`'s
    /// slot; returns the offer replaced.
    fn offer(&self, camera: usize, next: impl FnOnce(Option<&Due>) -> Option<Due>) -> Option<Due> {
        let mut guard = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if guard.0.len() <= camera {
            guard.0.resize_with(camera + 1, || None);
        }
        let due = next(guard.0[camera].as_ref())?;
        let replaced = guard.0[camera].replace(due);
        self.ready.notify_one();
        replaced
    }

    /// Drops the frame waiting in a stopped camera's slot.
    pub fn forget(&self, camera: usize) {
        let mut guard = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = guard.0.get_mut(camera) {
            *slot = None;
        }
    }

    /// Takes everything waiting, waiting up to `timeout` for something. `None` once closed.
    pub fn take(&self, timeout: Duration) -> Option<Vec<Due>> {
        let guard = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let (mut guard, _) = self
            .ready
            .wait_timeout_while(guard, timeout, |(slots, closed)| {
                !*closed && slots.iter().all(Option::is_none)
            })
            .unwrap_or_else(|e| e.into_inner());
        if guard.1 {
            return None;
        }
        Some(guard.0.iter_mut().filter_map(Option::take).collect())
    }

    /// Wakes the detector for good.
    pub fn close(&self) {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(camera: usize, tag: u8) -> Frame {
        Frame {
            camera,
            width: 1,
            height: 1,
            bgr: vec![tag; 3],
            captured_at: Utc::now(),
        }
    }

    /// (camera, tag) of each frame taken, 0 for a still notice.
    fn tags(mut taken: Vec<Due>) -> Vec<(usize, u8)> {
        taken.sort_by_key(Due::camera);
        taken
            .iter()
            .map(|due| match due {
                Due::Frame(f) => (f.camera, f.bgr[0]),
                Due::Still { camera, .. } => (*camera, 0),
            })
            .collect()
    }

    #[test]
    fn latest_frame_wins_per_camera() {
        let slots = FrameSlots::default();
        assert!(!slots.put(frame(0, 1)));
        assert!(
            slots.put(frame(0, 2)),
            "the unanalysed frame counts as dropped"
        );
        assert!(!slots.put(frame(1, 3)));
        assert_eq!(
            tags(slots.take(Duration::ZERO).unwrap()),
            vec![(0, 2), (1, 3)]
        );
        assert!(slots.take(Duration::from_millis(1)).unwrap().is_empty());
        slots.put(frame(1, 4));
        slots.forget(1);
        slots.forget(7);
        assert!(slots.take(Duration::from_millis(1)).unwrap().is_empty());
    }

    #[test]
    fn a_still_notice_never_displaces_a_frame_and_is_no_drop() {
        let slots = FrameSlots::default();
        slots.put(frame(0, 1));
        slots.still(0, Utc::now());
        slots.still(1, Utc::now());
        slots.still(1, Utc::now());
        assert_eq!(
            tags(slots.take(Duration::ZERO).unwrap()),
            vec![(0, 1), (1, 0)]
        );
        slots.still(0, Utc::now());
        assert!(
            !slots.put(frame(0, 5)),
            "a still notice is not a frame dropped"
        );
        assert_eq!(tags(slots.take(Duration::ZERO).unwrap()), vec![(0, 5)]);
    }

    #[test]
    fn close_wakes_a_waiting_detector() {
        let slots = std::sync::Arc::new(FrameSlots::default());
        let s = slots.clone();
        let waiter = std::thread::spawn(move || s.take(Duration::from_secs(60)));
        std::thread::sleep(Duration::from_millis(20));
        slots.close();
        assert!(waiter.join().unwrap().is_none());
    }
}
