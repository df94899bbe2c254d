//! Turning a BGR frame into the model's input tensor: letterbox anchored top-left, padded
//! with the manifest's pad value, CHW float. Pure, so it is tested without a model.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use ndarray::Array4;

use super::manifest::InputSpec;

/// The model input and the factor that maps model coordinates back to frame pixels.
pub struct Letterboxed {
    pub tensor: Array4<f32>,
    /// Frame pixels per model pixel: divide model coordinates by `ratio`.
    pub ratio: f32,
}

/// Letterboxes a tightly packed BGR frame (`width * height * 3` bytes).
pub fn letterbox(
    resizer: &mut Resizer,
    bgr: &[u8],
    width: u32,
    height: u32,
    spec: &InputSpec,
) -> Letterboxed {
    let (iw, ih) = (spec.width, spec.height);
    let ratio = (iw as f32 / width as f32).min(ih as f32 / height as f32);
    let nw = ((width as f32 * ratio) as u32).clamp(1, iw);
    let nh = ((height as f32 * ratio) as u32).clamp(1, ih);
    let src = ImageRef::new(width, height, bgr, PixelType::U8x3)
        .expect("the frame buffer matches its size");
    let mut dst = Image::new(nw, nh, PixelType::U8x3);
    resizer
        .resize(
            &src,
            &mut dst,
            &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)),
        )
        .expect("U8x3 to U8x3 resize cannot fail");
    let pad = f32::from(spec.pad_value) * spec.scale;
    let mut tensor = Array4::<f32>::from_elem((1, 3, ih as usize, iw as usize), pad);
    let resized = dst.buffer();
    for y in 0..nh as usize {
        let row = &resized[y * nw as usize * 3..(y + 1) * nw as usize * 3];
        for (x, px) in row.chunks_exact(3).enumerate() {
            for c in 0..3 {
                tensor[[0, c, y, x]] = f32::from(px[c]) * spec.scale;
            }
        }
    }
    Letterboxed { tensor, ratio }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> InputSpec {
        InputSpec {
            width: 8,
            height: 8,
            color: "bgr".into(),
            scale: 1.0,
            resize: "letterbox_top_left".into(),
            pad_value: 114,
        }
    }

    #[test]
    fn wide_frame_is_scaled_to_width_and_padded_below() {
        // 16×8 frame of one BGR colour → 8×4 picture at the top, padding under it.
        let frame: Vec<u8> = std::iter::repeat_n([10u8, 20, 30], 16 * 8)
            .flatten()
            .collect();
        let out = letterbox(&mut Resizer::new(), &frame, 16, 8, &spec());
        assert_eq!(out.ratio, 0.5);
        assert_eq!(out.tensor.shape(), &[1, 3, 8, 8]);
        assert_eq!(
            [
                out.tensor[[0, 0, 0, 0]],
                out.tensor[[0, 1, 0, 0]],
                out.tensor[[0, 2, 0, 0]]
            ],
            [10.0, 20.0, 30.0]
        );
        assert_eq!(out.tensor[[0, 0, 3, 7]], 10.0);
        assert_eq!(out.tensor[[0, 0, 4, 0]], 114.0);
        assert_eq!(out.tensor[[0, 2, 7, 7]], 114.0);
    }

    #[test]
    fn scale_applies_to_pixels_and_padding() {
        let frame = vec![255u8; 4 * 8 * 3];
        let spec = InputSpec {
            scale: 1.0 / 255.0,
            ..spec()
        };
        let out = letterbox(&mut Resizer::new(), &frame, 4, 8, &spec);
        assert_eq!(out.ratio, 1.0);
        assert!((out.tensor[[0, 0, 0, 0]] - 1.0).abs() < 1e-6);
        assert!((out.tensor[[0, 0, 0, 5]] - 114.0 / 255.0).abs() < 1e-6);
    }
}
