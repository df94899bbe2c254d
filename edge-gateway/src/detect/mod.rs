//! Object detection: an ONNX model run by ONNX Runtime (`ort`, loaded at run time) on a
//! BGR frame, giving class-wise NMS-filtered boxes in frame pixels.
//!
//! The [`Detector`] is synchronous and CPU-bound: it lives on the detection thread.

pub mod evaluate;
pub mod fastestdet;
pub mod geometry;
pub mod manifest;
pub mod preprocess;
pub mod tiling;
pub mod yolo_pixels;
pub mod yolox;

use std::path::Path;

use fast_image_resize::Resizer;
use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::Tensor;
use tiling::Region;

pub use geometry::Detection;
pub use manifest::{ModelError, ModelManifest};
pub use tiling::Tiling;

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(
        "cannot load ONNX Runtime from {path}: {message}. Install it with scripts/install-deps.sh, \
         or point ORT_DYLIB_PATH (or model.onnxruntime) at libonnxruntime.so"
    )]
    Runtime { path: String, message: String },
    #[error("ONNX Runtime: {0}")]
    Ort(String),
    #[error(
        "the model's output has {actual} values, expected {expected} for its input size and strides"
    )]
    OutputShape { actual: usize, expected: usize },
}

fn ort_err(e: impl std::fmt::Display) -> DetectError {
    DetectError::Ort(e.to_string())
}

/// Loads ONNX Runtime from `dylib` (or `ORT_DYLIB_PATH`) once for the process.
pub fn init_runtime(dylib: Option<&Path>) -> Result<Environment, DetectError> {
    let path = dylib.ok_or_else(|| DetectError::Runtime {
        path: "(not set)".into(),
        message: "no library path given".into(),
    })?;
    ort::init_from(path)
        .map_err(|e| DetectError::Runtime {
            path: path.display().to_string(),
            message: e.to_string(),
        })?
        .with_name("edge-gateway")
        .build()
        .map_err(ort_err)
}

/// Reads a still image (JPEG) into tightly packed BGR, as decoded camera frames come:
/// for evaluation, benchmarks and tests.
pub fn load_bgr(path: &Path) -> Result<(Vec<u8>, u32, u32), image::ImageError> {
    let img = image::open(path)?.to_rgb8();
    let (w, h) = img.dimensions();
    Ok((preprocess::swap_red_blue(img.as_raw()), w, h))
}

/// One loaded model, ready to run on frames.
pub struct Detector {
    session: Session,
    manifest: ModelManifest,
    resizer: Resizer,
}

impl Detector {
    pub fn new(
        env: &Environment,
        model: &Path,
        manifest: ModelManifest,
        intra_threads: usize,
    ) -> Result<Self, DetectError> {
        let session = Session::builder(env)
            .map_err(ort_err)?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(ort_err)?
            .with_intra_threads(intra_threads)
            .map_err(ort_err)?
            .with_inter_threads(1)
            .map_err(ort_err)?
            .commit_from_file(model)
            .map_err(ort_err)?;
        Ok(Self {
            session,
            manifest,
            resizer: Resizer::new(),
        })
    }

    pub fn manifest(&self) -> &ModelManifest {
        &self.manifest
    }

    /// Detects objects in a tightly packed BGR frame; boxes come back in frame pixels,
    /// clipped to the frame.
    pub fn detect(
        &mut self,
        bgr: &[u8],
        width: u32,
        height: u32,
    ) -> Result<Vec<Detection>, DetectError> {
        let found = self.detect_region(bgr, width, height, Region::whole(width, height))?;
        Ok(geometry::nms(found, self.manifest.decoder.nms_iou))
    }

    /// As [`Detector::detect`], with the frame cut into `tiling`'s tiles (and the whole
    /// frame), each analysed at the model's input size, the boxes merged.
    pub fn detect_tiled(
        &mut self,
        bgr: &[u8],
        width: u32,
        height: u32,
        tiling: &Tiling,
    ) -> Result<Vec<Detection>, DetectError> {
        let mut found = Vec::new();
        for region in tiling.regions(width, height) {
            let boxes = self.detect_region(bgr, width, height, region)?;
            let boxes = geometry::nms(boxes, self.manifest.decoder.nms_iou);
            found.extend(
                boxes
                    .into_iter()
                    .map(|d| tiling::Found::new(d, region, width, height)),
            );
        }
        Ok(tiling::merge(found, self.manifest.decoder.nms_iou))
    }

    /// The model's boxes for `region` of the frame, in frame pixels, before NMS.
    fn detect_region(
        &mut self,
        bgr: &[u8],
        width: u32,
        height: u32,
        region: Region,
    ) -> Result<Vec<Detection>, DetectError> {
        let spec = &self.manifest.input;
        let input =
            preprocess::letterbox_region(&mut self.resizer, bgr, width, height, region, spec);
        let tensor = Tensor::from_array(input.tensor).map_err(ort_err)?;
        let outputs = self.session.run(ort::inputs![tensor]).map_err(ort_err)?;
        let (_, data) = outputs[0].try_extract_tensor::<f32>().map_err(ort_err)?;
        let d = &self.manifest.decoder;
        let classes = self.manifest.labels.len();
        // Grid layouts have 5 + classes values per cell of the strides' grids; the
        // Ultralytics layouts any number of candidates of 5 + classes (v5) or 4 + classes (v8).
        let grid = yolox::expected_cells(spec.width, spec.height, &d.strides) * (5 + classes);
        let row = if d.kind == "yolov8" {
            4 + classes
        } else {
            5 + classes
        };
        let fits = match d.kind.as_str() {
            "yolov5" | "yolov8" => data.len() % row == 0,
            _ => data.len() == grid,
        };
        if !fits {
            return Err(DetectError::OutputShape {
                actual: data.len(),
                expected: if d.strides.is_empty() { row } else { grid },
            });
        }
        let (iw, ih, t) = (spec.width, spec.height, d.score_threshold);
        let raw = match d.kind.as_str() {
            "fastestdet" => fastestdet::decode(data, classes, iw, ih, d.strides[0], t),
            "yolov5" => yolo_pixels::decode_v5(data, classes, t),
            "yolov8" => yolo_pixels::decode_v8(data, classes, t),
            _ => yolox::decode(data, classes, iw, ih, &d.strides, t),
        };
        let (w, h, (rx, ry)) = (width as f32, height as f32, input.ratio);
        Ok(raw
            .into_iter()
            .map(|b| Detection {
                x1: (region.x + b.x1 / rx).clamp(region.x, w),
                y1: (region.y + b.y1 / ry).clamp(region.y, h),
                x2: (region.x + b.x2 / rx).clamp(0.0, (region.x + region.w).min(w)),
                y2: (region.y + b.y2 / ry).clamp(0.0, (region.y + region.h).min(h)),
                ..b
            })
            .filter(|b| b.area() > 0.0)
            .collect())
    }
}
