//! Boxes in pixel coordinates and class-wise non-maximum suppression.

/// One detected object, in the pixel coordinates of the analysed frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub class: usize,
    pub score: f32,
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl Detection {
    /// A box given by its centre and size, as detector heads output it.
    pub fn from_centre(class: usize, score: f32, cx: f32, cy: f32, w: f32, h: f32) -> Self {
        Self {
            class,
            score,
            x1: cx - w / 2.0,
            y1: cy - h / 2.0,
            x2: cx + w / 2.0,
            y2: cy + h / 2.0,
        }
    }

    pub fn area(&self) -> f32 {
        (self.x2 - self.x1).max(0.0) * (self.y2 - self.y1).max(0.0)
    }

    /// The area this box shares with `other`.
    pub fn intersection(&self, other: &Detection) -> f32 {
        let w = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let h = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        w * h
    }

    pub fn iou(&self, other: &Detection) -> f32 {
        let inter = self.intersection(other);
        let union = self.area() + other.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }
}

/// Keeps the best box of each overlapping group, per class: a box is dropped when a
/// higher-scoring box of the same class overlaps it by more than `iou`.
pub fn nms(mut candidates: Vec<Detection>, iou: f32) -> Vec<Detection> {
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for c in candidates {
        if kept.iter().all(|k| k.class != c.class || k.iou(&c) <= iou) {
            kept.push(c);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(class: usize, score: f32, x1: f32, y1: f32, x2: f32, y2: f32) -> Detection {
        Detection {
            class,
            score,
            x1,
            y1,
            x2,
            y2,
        }
    }

    #[test]
    fn iou_of_known_boxes() {
        let a = d(0, 1.0, 0.0, 0.0, 10.0, 10.0);
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&d(0, 1.0, 20.0, 20.0, 30.0, 30.0)), 0.0);
        // Half overlap: 50 / 150.
        assert!((a.iou(&d(0, 1.0, 5.0, 0.0, 15.0, 10.0)) - 1.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn nms_is_class_wise() {
        let boxes = vec![
            d(0, 0.6, 1.0, 1.0, 11.0, 11.0),
            d(0, 0.9, 0.0, 0.0, 10.0, 10.0),
            d(1, 0.8, 0.0, 0.0, 10.0, 10.0),
            d(0, 0.7, 50.0, 50.0, 60.0, 60.0),
        ];
        let kept = nms(boxes, 0.45);
        let scores: Vec<f32> = kept.iter().map(|k| k.score).collect();
        assert_eq!(scores, vec![0.9, 0.8, 0.7]);
    }
}
