//! Tiling: a wide frame cut into overlapping tiles, each analysed at the model's full input
//! size, so people far from a street camera are seen large enough to count; the whole frame
//! is analysed too (for what is larger than a tile), and the boxes merged. Pure: the layout
//! and the merge, tested without a model.
//!
//! Merging: the usual class-wise NMS, and besides it a box cut by a tile's inner edge (a
//! part of someone standing across two tiles) is dropped when most of it lies inside a box
//! kept already. Boxes not cut come first, so the whole person wins over their halves.

use super::geometry::Detection;

/// A rectangle of the frame, in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

impl Region {
    pub fn whole(width: u32, height: u32) -> Self {
        Self {
            x: 0.0,
            y: 0.0,
            w: width as f32,
            h: height as f32,
        }
    }
}

/// How a camera's frames are tiled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tiling {
    pub cols: u32,
    pub rows: u32,
    /// The share of a tile's width (height) it overlaps with its neighbour, 0..0.5.
    pub overlap: f32,
}

/// How much of a cut box must lie inside a kept box for it to be taken as a part of it.
const PART_OF: f32 = 0.6;
/// A box this close (in pixels) to a tile's inner edge was cut by it.
const EDGE: f32 = 2.0;

impl Tiling {
    /// The tiles of a `width × height` frame, row by row, then the whole frame.
    pub fn regions(&self, width: u32, height: u32) -> Vec<Region> {
        let along = |size: f32, n: u32| -> Vec<(f32, f32)> {
            let n = n.max(1) as f32;
            let tile = size / (n - (n - 1.0) * self.overlap);
            let step = tile * (1.0 - self.overlap);
            (0..n as u32)
                .map(|i| {
                    let start = (i as f32 * step).min(size - tile).max(0.0);
                    (start.round(), tile.round().min(size))
                })
                .collect()
        };
        let (w, h) = (width as f32, height as f32);
        let mut regions: Vec<Region> = along(h, self.rows)
            .into_iter()
            .flat_map(|(y, th)| {
                along(w, self.cols)
                    .into_iter()
                    .map(move |(x, tw)| Region { x, y, w: tw, h: th })
            })
            .collect();
        regions.push(Region::whole(width, height));
        regions
    }
}

/// A box found in `region` of a `width × height` frame, in frame pixels.
#[derive(Debug, Clone, Copy)]
pub struct Found {
    pub detection: Detection,
    /// Whether it touches an edge of its region that is not an edge of the frame.
    pub cut: bool,
}

impl Found {
    pub fn new(detection: Detection, region: Region, width: u32, height: u32) -> Self {
        let d = &detection;
        let (fw, fh) = (width as f32, height as f32);
        let (rx2, ry2) = (region.x + region.w, region.y + region.h);
        let cut = (region.x > 0.0 && d.x1 - region.x <= EDGE)
            || (region.y > 0.0 && d.y1 - region.y <= EDGE)
            || (rx2 < fw && rx2 - d.x2 <= EDGE)
            || (ry2 < fh && ry2 - d.y2 <= EDGE);
        Self { detection, cut }
    }
}

/// The share of `part`'s area that lies inside `whole`.
fn inside(part: &Detection, whole: &Detection) -> f32 {
    let area = part.area();
    if area <= 0.0 {
        0.0
    } else {
        part.intersection(whole) / area
    }
}

/// The boxes of all regions as one set: class-wise NMS at `iou`, cut parts dropped.
pub fn merge(mut found: Vec<Found>, iou: f32) -> Vec<Detection> {
    found.sort_by(|a, b| {
        a.cut
            .cmp(&b.cut)
            .then(b.detection.score.total_cmp(&a.detection.score))
    });
    let mut kept: Vec<Detection> = Vec::new();
    for f in found {
        let c = f.detection;
        let duplicate = kept
            .iter()
            .any(|k| k.class == c.class && (k.iou(&c) > iou || (f.cut && inside(&c, k) > PART_OF)));
        if !duplicate {
            kept.push(c);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(score: f32, x1: f32, y1: f32, x2: f32, y2: f32) -> Detection {
        Detection {
            class: 0,
            score,
            x1,
            y1,
            x2,
            y2,
        }
    }

    #[test]
    fn tiles_cover_the_frame_with_overlap_then_the_whole() {
        let t = Tiling {
            cols: 3,
            rows: 2,
            overlap: 0.2,
        };
        let regions = t.regions(1280, 720);
        assert_eq!(regions.len(), 7);
        assert_eq!(*regions.last().unwrap(), Region::whole(1280, 720));
        let tiles = &regions[..6];
        // 1280 / (3 - 2 × 0.2) = 492 wide, each 394 px (80%) on from the last.
        assert_eq!(
            tiles[..3].iter().map(|r| (r.x, r.w)).collect::<Vec<_>>(),
            vec![(0.0, 492.0), (394.0, 492.0), (788.0, 492.0)]
        );
        // 720 / 1.8 = 400 high.
        assert_eq!(
            tiles.iter().map(|r| r.y).collect::<Vec<_>>(),
            vec![0.0, 0.0, 0.0, 320.0, 320.0, 320.0]
        );
        for r in tiles {
            assert!(r.x + r.w <= 1280.0 && r.y + r.h <= 720.0, "{r:?}");
        }
        let one = Tiling {
            cols: 1,
            rows: 1,
            overlap: 0.2,
        };
        assert_eq!(one.regions(640, 360)[0], Region::whole(640, 360));
    }

    #[test]
    fn a_box_at_an_inner_edge_is_cut_one_at_the_frame_edge_is_not() {
        let left = Region {
            x: 0.0,
            y: 0.0,
            w: 500.0,
            h: 400.0,
        };
        let right = Region { x: 400.0, ..left };
        assert!(Found::new(d(0.9, 450.0, 10.0, 499.0, 90.0), left, 900, 400).cut);
        assert!(!Found::new(d(0.9, 0.0, 10.0, 60.0, 90.0), left, 900, 400).cut);
        assert!(Found::new(d(0.9, 401.0, 10.0, 460.0, 90.0), right, 900, 400).cut);
        assert!(!Found::new(d(0.9, 800.0, 300.0, 900.0, 400.0), right, 900, 400).cut);
    }

    #[test]
    fn the_whole_person_wins_over_their_halves() {
        let whole = Region::whole(900, 400);
        let left = Region {
            x: 0.0,
            y: 0.0,
            w: 500.0,
            h: 400.0,
        };
        let right = Region { x: 400.0, ..left };
        let found = vec![
            // A person across the tiles' shared edge: halves in each tile, sure of
            // themselves, and the whole person in the whole frame, less sure.
            Found::new(d(0.9, 440.0, 100.0, 499.0, 300.0), left, 900, 400),
            Found::new(d(0.8, 401.0, 100.0, 480.0, 300.0), right, 900, 400),
            Found::new(d(0.5, 440.0, 100.0, 480.0, 300.0), whole, 900, 400),
            // Someone small, seen only in a tile.
            Found::new(d(0.4, 100.0, 100.0, 110.0, 130.0), left, 900, 400),
            // Two people side by side in the whole frame: both stay.
            Found::new(d(0.7, 600.0, 100.0, 650.0, 300.0), whole, 900, 400),
            Found::new(d(0.7, 640.0, 100.0, 690.0, 300.0), whole, 900, 400),
        ];
        let kept = merge(found, 0.45);
        let scores: Vec<f32> = kept.iter().map(|k| k.score).collect();
        assert_eq!(scores, vec![0.7, 0.7, 0.5, 0.4]);
    }
}
