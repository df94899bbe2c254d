//! Decoding YOLOX's raw grid output (`[1, cells, 5 + classes]`, see the model's notes):
//! per cell `[tx, ty, tw, th, obj, cls…]` with objectness and classes already sigmoided.

use super::geometry::Detection;

/// Decodes `output` (row-major cells × `5 + classes`) for a `width × height` model input
/// with the given head strides. Boxes are in model pixels; the best class per cell is kept
/// when `obj * cls` reaches `threshold`.
pub fn decode(
    output: &[f32],
    classes: usize,
    width: u32,
    height: u32,
    strides: &[u32],
    threshold: f32,
) -> Vec<Detection> {
    let row = 5 + classes;
    let mut out = Vec::new();
    let mut cell = 0usize;
    for &s in strides {
        let (gw, gh) = (width / s, height / s);
        for gy in 0..gh {
            for gx in 0..gw {
                let Some(v) = output.get(cell * row..(cell + 1) * row) else {
                    return out;
                };
                cell += 1;
                let obj = v[4];
                if obj < threshold {
                    continue;
                }
                let (class, cls) = v[5..]
                    .iter()
                    .copied()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .unwrap_or((0, 0.0));
                let score = obj * cls;
                if score < threshold {
                    continue;
                }
                let s = s as f32;
                let cx = (v[0] + gx as f32) * s;
                let cy = (v[1] + gy as f32) * s;
                let w = v[2].exp() * s;
                let h = v[3].exp() * s;
                out.push(Detection::from_centre(class, score, cx, cy, w, h));
            }
        }
    }
    out
}

/// The number of output rows a model with these strides produces.
pub fn expected_cells(width: u32, height: u32, strides: &[u32]) -> usize {
    strides
        .iter()
        .map(|&s| ((width / s) * (height / s)) as usize)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_cell_of_the_second_head() {
        // 32×32 input, strides 8 and 16: 16 + 4 cells, 2 classes.
        let classes = 2;
        let cells = expected_cells(32, 32, &[8, 16]);
        assert_eq!(cells, 20);
        let mut out = vec![0.0f32; cells * (5 + classes)];
        // Cell (gx=1, gy=0) of the stride-16 head is row 16 + 1.
        let r = 17 * 7;
        out[r..r + 7].copy_from_slice(&[0.5, 0.5, 0.0, (2.0f32).ln(), 0.9, 0.1, 0.8]);
        let d = decode(&out, classes, 32, 32, &[8, 16], 0.3);
        assert_eq!(d.len(), 1);
        let d = d[0];
        assert_eq!(d.class, 1);
        assert!((d.score - 0.72).abs() < 1e-6);
        // centre (1.5 * 16, 0.5 * 16) = (24, 8); w = 16, h = 32.
        assert_eq!((d.x1, d.y1, d.x2, d.y2), (16.0, -8.0, 32.0, 24.0));
    }

    #[test]
    fn low_scores_and_short_output_are_ignored() {
        let out = vec![0.1f32; 3 * 7];
        assert!(decode(&out, 2, 32, 32, &[8, 16], 0.3).is_empty());
    }
}
