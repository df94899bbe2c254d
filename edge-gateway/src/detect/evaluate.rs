//! Detection quality against labelled images: precision and recall at an operating score,
//! average precision at an IoU threshold (all-point interpolation, as PASCAL VOC and COCO's
//! mAP@0.5), and a confusion table between classes. Pure: images go in as truths and
//! detections, numbers come out.

use super::geometry::Detection;

/// Detections scored on one class.
#[derive(Debug, Default, Clone)]
struct ClassTally {
    truths: usize,
    /// Every detection of the class: its score and whether it matched a truth.
    scored: Vec<(f32, bool)>,
}

/// Numbers for one class.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassReport {
    pub class: usize,
    pub truths: usize,
    /// At the operating score; 1.0 when nothing was detected (no false alarms).
    pub precision: f64,
    /// At the operating score; 1.0 when there was nothing to find.
    pub recall: f64,
    pub ap: f64,
}

/// Accumulates images, then reports.
#[derive(Debug, Clone)]
pub struct Evaluation {
    classes: usize,
    iou: f32,
    score: f32,
    tallies: Vec<ClassTally>,
    /// `confusion[truth][detected]` at the operating score; the last column is "missed".
    confusion: Vec<Vec<usize>>,
}

impl Evaluation {
    /// `iou`: how much a detection must overlap a truth to count; `score`: the operating
    /// score for precision, recall and the confusion table.
    pub fn new(classes: usize, iou: f32, score: f32) -> Self {
        Self {
            classes,
            iou,
            score,
            tallies: vec![ClassTally::default(); classes],
            confusion: vec![vec![0; classes + 1]; classes],
        }
    }

    /// Adds one image. Truths use `Detection` with any score; classes outside the model's
    /// range are ignored.
    pub fn add(&mut self, truths: &[Detection], detections: &[Detection]) {
        for class in 0..self.classes {
            let t: Vec<&Detection> = truths.iter().filter(|d| d.class == class).collect();
            let mut d: Vec<&Detection> = detections.iter().filter(|d| d.class == class).collect();
            d.sort_by(|a, b| b.score.total_cmp(&a.score));
            let tally = &mut self.tallies[class];
            tally.truths += t.len();
            let mut taken = vec![false; t.len()];
            for det in d {
                let best = t
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !taken[*i])
                    .map(|(i, truth)| (i, det.iou(truth)))
                    .filter(|(_, iou)| *iou >= self.iou)
                    .max_by(|a, b| a.1.total_cmp(&b.1));
                if let Some((i, _)) = best {
                    taken[i] = true;
                }
                tally.scored.push((det.score, best.is_some()));
            }
        }
        // Confusion: each truth against the best-overlapping confident detection of any class.
        for truth in truths.iter().filter(|t| t.class < self.classes) {
            let seen = detections
                .iter()
                .filter(|d| d.score >= self.score && d.class < self.classes)
                .map(|d| (d.class, d.iou(truth)))
                .filter(|(_, iou)| *iou >= self.iou)
                .max_by(|a, b| a.1.total_cmp(&b.1));
            let column = seen.map_or(self.classes, |(c, _)| c);
            self.confusion[truth.class][column] += 1;
        }
    }

    pub fn report(&self) -> Vec<ClassReport> {
        self.tallies
            .iter()
            .enumerate()
            .map(|(class, t)| {
                let mut scored = t.scored.clone();
                scored.sort_by(|a, b| b.0.total_cmp(&a.0));
                let confident: Vec<bool> = scored
                    .iter()
                    .filter(|(s, _)| *s >= self.score)
                    .map(|(_, tp)| *tp)
                    .collect();
                let tp = confident.iter().filter(|m| **m).count();
                ClassReport {
                    class,
                    truths: t.truths,
                    precision: ratio_or_one(tp, confident.len()),
                    recall: ratio_or_one(tp, t.truths),
                    ap: average_precision(&scored, t.truths),
                }
            })
            .collect()
    }

    /// `confusion[truth][detected]`, with a last column for truths nothing confident found.
    pub fn confusion(&self) -> &[Vec<usize>] {
        &self.confusion
    }

    /// Of the truths of classes `a` and `b` that were found, the share found as the other
    /// one of the two.
    pub fn confusion_rate(&self, a: usize, b: usize) -> f64 {
        let c = &self.confusion;
        let crossed = c[a][b] + c[b][a];
        let found = c[a][a] + c[a][b] + c[b][b] + c[b][a];
        if found == 0 {
            0.0
        } else {
            crossed as f64 / found as f64
        }
    }
}

fn ratio_or_one(n: usize, d: usize) -> f64 {
    if d == 0 { 1.0 } else { n as f64 / d as f64 }
}

/// Area under the precision–recall curve of detections sorted by score, with precision
/// made monotone (each point takes the best precision at any higher recall).
fn average_precision(sorted: &[(f32, bool)], truths: usize) -> f64 {
    if truths == 0 {
        return if sorted.is_empty() { 1.0 } else { 0.0 };
    }
    let mut points = Vec::with_capacity(sorted.len());
    let mut tp = 0usize;
    for (i, (_, hit)) in sorted.iter().enumerate() {
        tp += usize::from(*hit);
        points.push((tp as f64 / truths as f64, tp as f64 / (i + 1) as f64));
    }
    let mut best = 0.0f64;
    for p in points.iter_mut().rev() {
        best = best.max(p.1);
        p.1 = best;
    }
    let mut ap = 0.0;
    let mut last_recall = 0.0;
    for (recall, precision) in points {
        ap += (recall - last_recall) * precision;
        last_recall = recall;
    }
    ap
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(class: usize, score: f32, x: f32) -> Detection {
        Detection {
            class,
            score,
            x1: x,
            y1: 0.0,
            x2: x + 10.0,
            y2: 10.0,
        }
    }

    #[test]
    fn perfect_detections_score_one() {
        let mut e = Evaluation::new(2, 0.5, 0.3);
        let truths = [boxed(0, 1.0, 0.0), boxed(1, 1.0, 50.0)];
        e.add(&truths, &[boxed(0, 0.9, 1.0), boxed(1, 0.8, 50.0)]);
        for r in e.report() {
            assert_eq!((r.precision, r.recall, r.ap, r.truths), (1.0, 1.0, 1.0, 1));
        }
        assert_eq!(e.confusion_rate(0, 1), 0.0);
    }

    #[test]
    fn misses_false_alarms_and_duplicates_count_against() {
        let mut e = Evaluation::new(1, 0.5, 0.3);
        // Two truths; one found twice (the second is a false alarm), one missed, one
        // detection where there is nothing, and one below the operating score.
        e.add(
            &[boxed(0, 1.0, 0.0), boxed(0, 1.0, 100.0)],
            &[
                boxed(0, 0.9, 0.0),
                boxed(0, 0.8, 1.0),
                boxed(0, 0.7, 200.0),
                boxed(0, 0.1, 100.0),
            ],
        );
        let r = &e.report()[0];
        assert_eq!(r.precision, 1.0 / 3.0);
        assert_eq!(r.recall, 0.5);
        // Sorted: hit, miss, miss, hit → recall 0.5 at precision 1, then 1.0 at 0.5.
        assert!((r.ap - 0.75).abs() < 1e-9, "{}", r.ap);
    }

    #[test]
    fn a_box_off_by_more_than_the_iou_is_a_miss() {
        let mut e = Evaluation::new(1, 0.5, 0.3);
        // Shifted by 5 of 10 px: IoU 1/3.
        e.add(&[boxed(0, 1.0, 0.0)], &[boxed(0, 0.9, 5.0)]);
        let r = &e.report()[0];
        assert_eq!((r.precision, r.recall, r.ap), (0.0, 0.0, 0.0));
    }

    #[test]
    fn confusion_counts_the_wrong_class_and_misses() {
        let mut e = Evaluation::new(3, 0.5, 0.3);
        e.add(
            &[
                boxed(0, 1.0, 0.0),
                boxed(1, 1.0, 50.0),
                boxed(2, 1.0, 100.0),
            ],
            // The intact cover seen as broken; the broken one right; the open one missed.
            &[boxed(1, 0.9, 0.0), boxed(1, 0.9, 50.0)],
        );
        assert_eq!(e.confusion()[0], vec![0, 1, 0, 0]);
        assert_eq!(e.confusion()[1], vec![0, 1, 0, 0]);
        assert_eq!(e.confusion()[2], vec![0, 0, 0, 1]);
        assert_eq!(e.confusion_rate(0, 1), 0.5);
    }

    #[test]
    fn empty_classes_do_not_divide_by_zero() {
        let mut e = Evaluation::new(1, 0.5, 0.3);
        e.add(&[], &[]);
        let r = &e.report()[0];
        assert_eq!((r.precision, r.recall, r.ap), (1.0, 1.0, 1.0));
        e.add(&[], &[boxed(0, 0.9, 0.0)]);
        let r = &e.report()[0];
        assert_eq!((r.precision, r.ap), (0.0, 0.0));
    }
}
