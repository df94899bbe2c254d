//! Turning a BGR frame into the model's input tensor, CHW float: letterboxed anchored
//! top-left and padded with the manifest's pad value, or stretched to the input size.
//! Pure, so it is tested without a model.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use ndarray::Array4;

use super::manifest::InputSpec;
use super::tiling::Region;

/// RGB pixels as BGR, or BGR as RGB: the first and third byte of each pixel swapped.
pub fn swap_red_blue(pixels: &[u8]) -> Vec<u8> {
    pixels
        .chunks_exact(3)
        .flat_map(|p| [p[2], p[1], p[0]])
        .collect()
}

/// The model input and the factors that map model coordinates back to frame pixels.
pub struct Letterboxed {
    pub tensor: Array4<f32>,
    /// Model pixels per frame pixel, across and down: divide model coordinates by them.
    pub ratio: (f32, f32),
}

/// Fits a tightly packed BGR frame (`width * height * 3` bytes) to the model's input as
/// `spec.resize` says: `letterbox_top_left` (aspect kept) or `stretch`.
pub fn letterbox(
    resizer: &mut Resizer,
    bgr: &[u8],
    width: u32,
    height: u32,
    spec: &InputSpec,
) -> Letterboxed {
    letterbox_region(
        resizer,
        bgr,
        width,
        height,
        Region::whole(width, height),
        spec,
    )
}

/// As [`letterbox`], for `region` of the frame only (a tile): model coordinates divided by
/// the ratio are then pixels of the region, from its top-left corner.
pub fn letterbox_region(
    resizer: &mut Resizer,
    bgr: &[u8],
    width: u32,
    height: u32,
    region: Region,
    spec: &InputSpec,
) -> Letterboxed {
    let (iw, ih) = (spec.width as usize, spec.height as usize);
    let mut tensor = Array4::<f32>::zeros((1, 3, ih, iw));
    let data = tensor.as_slice_mut().expect("a new array is contiguous");
    let ratio = letterbox_into(resizer, bgr, width, height, region, spec, data);
    Letterboxed { tensor, ratio }
}

/// As [`letterbox_region`], into `out`: one image of a batch, CHW (`3 × height × width` of
/// the model's input); returns the ratio.
pub fn letterbox_into(
    resizer: &mut Resizer,
    bgr: &[u8],
    width: u32,
    height: u32,
    region: Region,
    spec: &InputSpec,
    out: &mut [f32],
) -> (f32, f32) {
    let (iw, ih) = (spec.width, spec.height);
    let (rx, ry) = (iw as f32 / region.w, ih as f32 / region.h);
    let ratio = if spec.resize == "stretch" {
        (rx, ry)
    } else {
        (rx.min(ry), rx.min(ry))
    };
    let nw = ((region.w * ratio.0) as u32).clamp(1, iw);
    let nh = ((region.h * ratio.1) as u32).clamp(1, ih);
    let src = ImageRef::new(width, height, bgr, PixelType::U8x3)
        .expect("the frame buffer matches its size");
    let mut dst = Image::new(nw, nh, PixelType::U8x3);
    resizer
        .resize(
            &src,
            &mut dst,
            &ResizeOptions::new()
                .crop(
                    f64::from(region.x),
                    f64::from(region.y),
                    f64::from(region.w),
                    f64::from(region.h),
                )
                .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)),
        )
        .expect("U8x3 to U8x3 resize cannot fail");
    out.fill(f32::from(spec.pad_value) * spec.scale);
    // Interleaved rows into three planes, row by row with iterators (no per-pixel indexing).
    let (iw, nw) = (iw as usize, nw as usize);
    let plane = iw * ih as usize;
    let (p0, rest) = out.split_at_mut(plane);
    let (p1, p2) = rest.split_at_mut(plane);
    let rows = dst.buffer().chunks_exact(nw * 3);
    let planes = p0
        .chunks_exact_mut(iw)
        .zip(p1.chunks_exact_mut(iw))
        .zip(p2.chunks_exact_mut(iw));
    for (row, ((r0, r1), r2)) in rows.zip(planes) {
        for (px, ((a, b), c)) in row
            .chunks_exact(3)
            .zip(r0.iter_mut().zip(r1.iter_mut()).zip(r2.iter_mut()))
        {
            *a = f32::from(px[0]) * spec.scale;
            *b = f32::from(px[1]) * spec.scale;
            *c = f32::from(px[2]) * spec.scale;
        }
    }
    ratio
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
        assert_eq!(out.ratio, (0.5, 0.5));
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
        assert_eq!(out.ratio, (1.0, 1.0));
        assert!((out.tensor[[0, 0, 0, 0]] - 1.0).abs() < 1e-6);
        assert!((out.tensor[[0, 0, 0, 5]] - 114.0 / 255.0).abs() < 1e-6);
    }

    #[test]
    fn a_region_is_cut_out_before_scaling() {
        // Left half dark, right half bright: the right 8×8 region is all bright.
        let frame: Vec<u8> = (0..8)
            .flat_map(|_| (0..16).flat_map(|x| if x < 8 { [0u8; 3] } else { [200u8; 3] }))
            .collect();
        let right = Region {
            x: 8.0,
            y: 0.0,
            w: 8.0,
            h: 8.0,
        };
        let out = letterbox_region(&mut Resizer::new(), &frame, 16, 8, right, &spec());
        assert_eq!(out.ratio, (1.0, 1.0));
        assert!(out.tensor.iter().all(|v| *v == 200.0));
    }

    #[test]
    fn red_and_blue_swap_per_pixel() {
        assert_eq!(swap_red_blue(&[1, 2, 3, 4, 5, 6]), [3, 2, 1, 6, 5, 4]);
    }

    #[test]
    fn stretch_fills_the_input_without_padding() {
        let frame: Vec<u8> = std::iter::repeat_n([10u8, 20, 30], 16 * 4)
            .flatten()
            .collect();
        let spec = InputSpec {
            resize: "stretch".into(),
            ..spec()
        };
        let out = letterbox(&mut Resizer::new(), &frame, 16, 4, &spec);
        assert_eq!(out.ratio, (0.5, 2.0));
        assert_eq!(out.tensor[[0, 0, 7, 7]], 10.0);
        assert_eq!(out.tensor[[0, 2, 7, 0]], 30.0);
    }
}
