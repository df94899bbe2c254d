//! Decoding the common Ultralytics-style outputs, whose boxes are already in input pixels
//! (`cx, cy, w, h`), with sigmoided scores:
//! - `yolov5`: `[1, candidates, 5 + classes]`, rows `[cx, cy, w, h, obj, cls…]`, score
//!   `obj · cls`;
//! - `yolov8`: `[1, 4 + classes, candidates]` (channel-major), columns
//!   `[cx, cy, w, h, cls…]`, score `cls` (no objectness).
//!
//! No model of either kind ships with the project yet; the decoders are tested on made-up
//! outputs laid out as those exporters write them.

use super::geometry::Detection;

/// The best class of `scores` (index, value).
fn best(scores: impl Iterator<Item = f32>) -> (usize, f32) {
    scores
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0, 0.0))
}

/// YOLOv5 layout: row-major candidates of `5 + classes` values.
pub fn decode_v5(output: &[f32], classes: usize, threshold: f32) -> Vec<Detection> {
    output
        .chunks_exact(5 + classes)
        .filter(|r| r[4] >= threshold)
        .filter_map(|r| {
            let (class, cls) = best(r[5..].iter().copied());
            let score = r[4] * cls;
            (score >= threshold)
                .then(|| Detection::from_centre(class, score, r[0], r[1], r[2], r[3]))
        })
        .collect()
}

/// YOLOv8 layout: `4 + classes` channels of `output.len() / (4 + classes)` candidates each.
pub fn decode_v8(output: &[f32], classes: usize, threshold: f32) -> Vec<Detection> {
    let n = output.len() / (4 + classes);
    let at = |channel: usize, i: usize| output[channel * n + i];
    (0..n)
        .filter_map(|i| {
            let (class, score) = best((0..classes).map(|c| at(4 + c, i)));
            let (cx, cy, w, h) = (at(0, i), at(1, i), at(2, i), at(3, i));
            (score >= threshold).then(|| Detection::from_centre(class, score, cx, cy, w, h))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v5_rows_score_objectness_times_class() {
        // Two candidates, 2 classes: the first confident, the second weak.
        let out = [
            50.0, 40.0, 20.0, 10.0, 0.9, 0.2, 0.8, //
            10.0, 10.0, 4.0, 4.0, 0.3, 0.9, 0.1,
        ];
        let d = decode_v5(&out, 2, 0.5);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].class, 1);
        assert!((d[0].score - 0.72).abs() < 1e-6);
        assert_eq!(
            (d[0].x1, d[0].y1, d[0].x2, d[0].y2),
            (40.0, 35.0, 60.0, 45.0)
        );
    }

    #[test]
    fn v8_columns_are_read_channel_by_channel() {
        // 3 candidates, 2 classes: channels cx, cy, w, h, cls0, cls1.
        let out = [
            10.0, 50.0, 90.0, // cx
            10.0, 60.0, 90.0, // cy
            4.0, 20.0, 8.0, // w
            4.0, 30.0, 8.0, // h
            0.1, 0.2, 0.6, // class 0
            0.2, 0.9, 0.1, // class 1
        ];
        let d = decode_v8(&out, 2, 0.5);
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].class, d[0].score), (1, 0.9));
        assert_eq!(
            (d[0].x1, d[0].y1, d[0].x2, d[0].y2),
            (40.0, 45.0, 60.0, 75.0)
        );
        assert_eq!((d[1].class, d[1].score), (0, 0.6));
        assert_eq!((d[1].x1, d[1].y1), (86.0, 86.0));
    }

    #[test]
    fn nothing_above_the_threshold_gives_nothing() {
        assert!(decode_v5(&[1.0, 1.0, 1.0, 1.0, 0.2, 0.9], 1, 0.5).is_empty());
        assert!(decode_v8(&[1.0, 1.0, 1.0, 1.0, 0.4], 1, 0.5).is_empty());
        assert!(decode_v8(&[], 1, 0.5).is_empty());
    }
}
