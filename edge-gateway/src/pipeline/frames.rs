//! The hand-over from decoders to the detector: one slot per running camera holding the
//! newest frame. Frames are perishable, so a newer frame replaces an unanalysed one (counted
//! as a drop) and a slow detector never builds a queue. Slots are numbered as cameras start
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

pub struct FrameSlots {
    slots: Mutex<(Vec<Option<Frame>>, bool)>,
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
        let mut guard = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let camera = frame.camera;
        if guard.0.len() <= camera {
            guard.0.resize_with(camera + 1, || None);
        }
        let replaced = guard.0[camera].replace(frame).is_some();
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

    /// Takes every waiting frame, waiting up to `timeout` for one. `None` once closed.
    pub fn take(&self, timeout: Duration) -> Option<Vec<Frame>> {
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

    #[test]
    fn latest_frame_wins_per_camera() {
        let slots = FrameSlots::default();
        assert!(!slots.put(frame(0, 1)));
        assert!(
            slots.put(frame(0, 2)),
            "the unanalysed frame counts as dropped"
        );
        assert!(!slots.put(frame(1, 3)));
        let mut taken = slots.take(Duration::ZERO).unwrap();
        taken.sort_by_key(|f| f.camera);
        let tags: Vec<u8> = taken.iter().map(|f| f.bgr[0]).collect();
        assert_eq!(tags, vec![2, 3]);
        assert!(slots.take(Duration::from_millis(1)).unwrap().is_empty());
        slots.put(frame(1, 4));
        slots.forget(1);
        slots.forget(7);
        assert!(slots.take(Duration::from_millis(1)).unwrap().is_empty());
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
