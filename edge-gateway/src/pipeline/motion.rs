//! Motion gating: cheap before expensive. A frame due for analysis is first shrunk to a
//! small luma thumbnail (the decoder's Y plane, mean-pooled: no colour conversion) and
//! compared with the thumbnail of the last frame analysed; a still scene skips the
//! conversion and the inference. A forced check every `force_every` keeps a standing hazard
//! in view. Pure: the decode thread feeds it planes and times.

use std::time::{Duration, Instant};

/// Thumbnail size: coarse enough to ignore sensor noise and compression flicker, fine enough
/// that a person walking into a street scene changes several cells.
pub const THUMB_W: usize = 32;
pub const THUMB_H: usize = 18;
/// How much a cell's mean luma must change (0–255) to count as changed.
const CELL_DELTA: u8 = 10;

/// Settings (`[motion]` in the gateway's settings).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MotionSettings {
    /// The fraction of thumbnail cells that must change for a frame to be analysed.
    pub min_changed: f32,
    /// A frame is analysed at least this often, moving or not.
    pub force_every: Duration,
}

/// A mean-pooled luma thumbnail, `THUMB_W × THUMB_H`.
#[derive(Debug, Clone, PartialEq)]
pub struct Thumb(Vec<u8>);

impl Thumb {
    /// Pools a luma plane of `width × height` pixels, rows `stride` bytes apart. `None` for
    /// a plane too small or shorter than its size says.
    pub fn from_luma(plane: &[u8], stride: usize, width: usize, height: usize) -> Option<Self> {
        if width < THUMB_W || height < THUMB_H || stride < width {
            return None;
        }
        if plane.len() < stride * (height - 1) + width {
            return None;
        }
        let mut cells = vec![0u8; THUMB_W * THUMB_H];
        for (cy, row_of_cells) in cells.chunks_mut(THUMB_W).enumerate() {
            let (y0, y1) = (cy * height / THUMB_H, (cy + 1) * height / THUMB_H);
            for (cx, cell) in row_of_cells.iter_mut().enumerate() {
                let (x0, x1) = (cx * width / THUMB_W, (cx + 1) * width / THUMB_W);
                // Every other row and column: the mean of a few hundred pixels is as good.
                let (mut sum, mut n) = (0u64, 0u64);
                for y in (y0..y1).step_by(2) {
                    let row = &plane[y * stride..y * stride + width];
                    for &p in row[x0..x1].iter().step_by(2) {
                        sum += u64::from(p);
                        n += 1;
                    }
                }
                *cell = (sum / n.max(1)) as u8;
            }
        }
        Some(Self(cells))
    }

    /// The fraction of cells whose mean changed by more than `CELL_DELTA`.
    fn changed_since(&self, before: &Thumb) -> f32 {
        let changed = self
            .0
            .iter()
            .zip(&before.0)
            .filter(|(a, b)| a.abs_diff(**b) > CELL_DELTA)
            .count();
        changed as f32 / self.0.len() as f32
    }
}

/// Whether each frame due for analysis is analysed.
#[derive(Debug)]
pub struct MotionGate {
    settings: MotionSettings,
    /// The last frame analysed: its thumbnail and when.
    last: Option<(Thumb, Instant)>,
}

impl MotionGate {
    pub fn new(settings: MotionSettings) -> Self {
        Self {
            settings,
            last: None,
        }
    }

    /// `true`: analyse this frame (the first, one that moved, or the forced check); it
    /// becomes the reference. A frame without a thumbnail is always analysed.
    pub fn admit(&mut self, thumb: Option<Thumb>, now: Instant) -> bool {
        let Some(thumb) = thumb else {
            return true;
        };
        let admit = match &self.last {
            None => true,
            Some((before, at)) => {
                now.duration_since(*at) >= self.settings.force_every
                    || thumb.changed_since(before) >= self.settings.min_changed
            }
        };
        if admit {
            self.last = Some((thumb, now));
        }
        admit
    }

    /// Forget the reference (a new stream: its first frame is analysed).
    pub fn reset(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: usize = 320;
    const H: usize = 180;

    fn scene(patch: Option<(usize, usize)>, noise: u8) -> Vec<u8> {
        let mut plane = vec![0u8; W * H];
        for y in 0..H {
            for x in 0..W {
                // A gradient with a little flicker, as compression leaves it.
                let flicker = if (x + y) % 7 == 0 { noise } else { 0 };
                plane[y * W + x] = ((x + y) % 200) as u8 + flicker;
            }
        }
        if let Some((px, py)) = patch {
            for y in py..py + 40 {
                for x in px..px + 20 {
                    plane[y * W + x] = 250;
                }
            }
        }
        plane
    }

    fn thumb(plane: &[u8]) -> Option<Thumb> {
        Thumb::from_luma(plane, W, W, H)
    }

    fn gate() -> MotionGate {
        MotionGate::new(MotionSettings {
            min_changed: 0.005,
            force_every: Duration::from_secs(10),
        })
    }

    #[test]
    fn a_still_scene_is_skipped_until_the_forced_check() {
        let mut g = gate();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_millis(s * 500);
        assert!(g.admit(thumb(&scene(None, 0)), at(0)), "the first frame");
        for i in 1..20 {
            assert!(
                !g.admit(thumb(&scene(None, 6)), at(i)),
                "still, with flicker, at {i}"
            );
        }
        assert!(g.admit(thumb(&scene(None, 0)), at(20)), "forced after 10 s");
        assert!(!g.admit(thumb(&scene(None, 0)), at(21)));
    }

    #[test]
    fn something_moving_in_is_analysed_and_becomes_the_reference() {
        let mut g = gate();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert!(g.admit(thumb(&scene(None, 0)), at(0)));
        assert!(
            g.admit(thumb(&scene(Some((100, 60)), 0)), at(500)),
            "a person walks in"
        );
        assert!(
            !g.admit(thumb(&scene(Some((100, 60)), 0)), at(1000)),
            "and stands"
        );
        assert!(
            g.admit(thumb(&scene(Some((160, 60)), 0)), at(1500)),
            "and moves on"
        );
        g.reset();
        assert!(
            g.admit(thumb(&scene(Some((160, 60)), 0)), at(2000)),
            "a new stream"
        );
    }

    #[test]
    fn planes_that_do_not_fit_give_no_thumbnail_and_are_analysed() {
        assert_eq!(Thumb::from_luma(&[0; 10], 10, 10, 1), None);
        assert_eq!(Thumb::from_luma(&vec![0; W * H - 1], W, W, H), None);
        let padded = vec![7u8; (W + 64) * H];
        assert!(
            Thumb::from_luma(&padded, W + 64, W, H).is_some(),
            "stride past the width"
        );
        assert!(gate().admit(None, Instant::now()));
    }
}
