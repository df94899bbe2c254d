//! Decoding FastestDet's output (`[1, 5 + classes, H, W]`, one grid, channel-major; see the
//! model's notes): per cell objectness (sigmoided), centre offsets (apply `tanh`), width and
//! height as fractions of the input (apply the sigmoid), and class probabilities (softmaxed).
//! The score is `obj^0.6 · cls^0.4`, as the reference code computes it.

use super::geometry::Detection;

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Decodes `output` for a `width × height` model input whose grid has `stride`-pixel cells.
/// Boxes are in model pixels; a cell's best class is kept when its score reaches `threshold`.
pub fn decode(
    output: &[f32],
    classes: usize,
    width: u32,
    height: u32,
    stride: u32,
    threshold: f32,
) -> Vec<Detection> {
    let (gw, gh) = ((width / stride) as usize, (height / stride) as usize);
    let cells = gw * gh;
    if output.len() < (5 + classes) * cells {
        return Vec::new();
    }
    let channel = |c: usize| &output[c * cells..(c + 1) * cells];
    let (obj, ox, oy, sw, sh) = (channel(0), channel(1), channel(2), channel(3), channel(4));
    let mut out = Vec::new();
    for i in 0..cells {
        if obj[i] < threshold {
            continue;
        }
        let (class, p) = (0..classes)
            .map(|c| (c, output[(5 + c) * cells + i]))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0));
        let score = obj[i].max(0.0).powf(0.6) * p.max(0.0).powf(0.4);
        if score < threshold {
            continue;
        }
        let (gx, gy) = ((i % gw) as f32, (i / gw) as f32);
        let (w, h) = (width as f32, height as f32);
        let cx = (gx + ox[i].tanh()) / gw as f32 * w;
        let cy = (gy + oy[i].tanh()) / gh as f32 * h;
        let (bw, bh) = (sigmoid(sw[i]) * w, sigmoid(sh[i]) * h);
        out.push(Detection::from_centre(class, score, cx, cy, bw, bh));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_one_cell() {
        // 32×32 input, stride 16: a 2×2 grid; 2 classes → 7 channels of 4 cells.
        let cells = 4;
        let mut out = vec![0.0f32; 7 * cells];
        let cell = 3; // (gx=1, gy=1)
        out[cell] = 0.81; // objectness
        out[cells + cell] = 0.0; // tanh(0) = 0: the cell's corner
        out[2 * cells + cell] = 0.0;
        out[3 * cells + cell] = 0.0; // sigmoid(0) = 0.5 of the input
        out[4 * cells + cell] = 0.0;
        out[5 * cells + cell] = 0.19;
        out[6 * cells + cell] = 0.81;
        let d = decode(&out, 2, 32, 32, 16, 0.5);
        assert_eq!(d.len(), 1);
        let d = d[0];
        assert_eq!(d.class, 1);
        assert!((d.score - 0.81).abs() < 1e-5, "{}", d.score);
        // centre (16, 16), 16×16.
        assert_eq!((d.x1, d.y1, d.x2, d.y2), (8.0, 8.0, 24.0, 24.0));
    }

    #[test]
    fn weak_cells_and_short_output_give_nothing() {
        assert!(decode(&[0.1; 28], 2, 32, 32, 16, 0.5).is_empty());
        assert!(decode(&[0.9; 10], 2, 32, 32, 16, 0.5).is_empty());
    }
}
