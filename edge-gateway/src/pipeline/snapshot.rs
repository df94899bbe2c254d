//! Evidence snapshots: the analysed frame as JPEG with the counted objects' boxes drawn.

use image::codecs::jpeg::JpegEncoder;
use image::{Rgb, RgbImage};
use imageproc::drawing::draw_hollow_rect_mut;
use imageproc::rect::Rect;

use crate::detect::Detection;
use crate::event::Blob;

const BOX_COLOUR: Rgb<u8> = Rgb([255, 40, 40]);
const LINE_WIDTH: i32 = 3;

/// Encodes a tightly packed BGR frame with `boxes` drawn on it.
pub fn render(
    bgr: &[u8],
    width: u32,
    height: u32,
    boxes: &[Detection],
) -> Result<Blob, image::ImageError> {
    let rgb = crate::detect::preprocess::swap_red_blue(bgr);
    let mut img =
        RgbImage::from_raw(width, height, rgb).expect("the frame buffer matches its size");
    for b in boxes {
        for i in 0..LINE_WIDTH {
            let (x, y) = (b.x1 as i32 - i, b.y1 as i32 - i);
            let w = (b.x2 - b.x1) as u32 + 2 * i as u32;
            let h = (b.y2 - b.y1) as u32 + 2 * i as u32;
            if w > 0 && h > 0 {
                draw_hollow_rect_mut(&mut img, Rect::at(x, y).of_size(w, h), BOX_COLOUR);
            }
        }
    }
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, 80).encode_image(&img)?;
    Ok(Blob::jpeg(jpeg))
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    #[test]
    fn draws_boxes_into_a_decodable_jpeg() {
        let (w, h) = (64u32, 48u32);
        let frame = vec![0u8; (w * h * 3) as usize];
        let b = Detection {
            class: 0,
            score: 0.9,
            x1: 10.0,
            y1: 10.0,
            x2: 40.0,
            y2: 30.0,
        };
        let snap = render(&frame, w, h, &[b]).unwrap();
        assert!(snap.data.starts_with(&[0xFF, 0xD8, 0xFF]));
        assert_eq!(snap.sha256, hex::encode(Sha256::digest(&snap.data)));
        let decoded = image::load_from_memory(&snap.data).unwrap().to_rgb8();
        assert_eq!(decoded.dimensions(), (w, h));
        // The box edge is red-ish, the centre stays black (JPEG is lossy: compare loosely).
        let edge = decoded.get_pixel(25, 10);
        assert!(edge[0] > 150 && edge[1] < 120, "{edge:?}");
        assert!(decoded.get_pixel(25, 20)[0] < 60);
    }
}
