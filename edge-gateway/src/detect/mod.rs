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
use ndarray::Array4;
use ort::environment::{Environment, GlobalThreadPoolOptions};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::Tensor;
use tiling::Region;

pub use geometry::Detection;
pub use manifest::{ModelError, ModelManifest};
pub use tiling::Tiling;

#[derive(Debug, Clone, thiserror::Error)]
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

/// Loads ONNX Runtime from `dylib` (or `ORT_DYLIB_PATH`) once for the process, with one
/// pool of `intra_threads` threads that every model's session runs on. (Sessions with pools
/// of their own, run one after the other on the same cores, slow each other down: a pool's
/// threads spin for a while after its call. With two models, a pair of inferences took
/// about twice as long; docs/benchmarks.md.)
pub fn init_runtime(
    dylib: Option<&Path>,
    intra_threads: usize,
) -> Result<Environment, DetectError> {
    let path = dylib.ok_or_else(|| DetectError::Runtime {
        path: "(not set)".into(),
        message: "no library path given".into(),
    })?;
    let pool = GlobalThreadPoolOptions::default()
        .with_intra_threads(intra_threads)
        .and_then(|pool| pool.with_inter_threads(1))
        .map_err(ort_err)?;
    ort::init_from(path)
        .map_err(|e| DetectError::Runtime {
            path: path.display().to_string(),
            message: e.to_string(),
        })?
        .with_name("edge-gateway")
        .with_global_thread_pool(pool)
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

/// At most this many images (frames and tiles) go into one inference of a model with a
/// free batch dimension; a model with a fixed batch of 1 takes them one by one.
pub const MAX_BATCH: usize = 8;

/// A frame to analyse, as tightly packed BGR, whole or cut into tiles.
#[derive(Debug, Clone, Copy)]
pub struct Picture<'a> {
    pub bgr: &'a [u8],
    pub width: u32,
    pub height: u32,
    pub tiling: Option<&'a Tiling>,
}

/// A region of a frame and the boxes found in it.
type RegionBoxes = (Region, Vec<Detection>);

/// One loaded model, ready to run on frames.
pub struct Detector {
    session: Session,
    manifest: ModelManifest,
    resizer: Resizer,
    /// Images per inference: [`MAX_BATCH`] where the model's batch is free, else 1 (also
    /// once a batch has failed).
    batch: usize,
}

impl Detector {
    /// Loads `model` into a session on the threads of `env` (see [`init_runtime`]).
    pub fn new(
        env: &Environment,
        model: &Path,
        manifest: ModelManifest,
    ) -> Result<Self, DetectError> {
        let session = Session::builder(env)
            .map_err(ort_err)?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(ort_err)?
            .commit_from_file(model)
            .map_err(ort_err)?;
        let free_batch = session
            .inputs()
            .first()
            .and_then(|input| input.dtype().tensor_shape())
            .and_then(|shape| shape.first().copied())
            .is_some_and(|batch| batch < 0);
        Ok(Self {
            session,
            manifest,
            resizer: Resizer::new(),
            batch: if free_batch { MAX_BATCH } else { 1 },
        })
    }

    pub fn manifest(&self) -> &ModelManifest {
        &self.manifest
    }

    /// How many images go into one inference.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Detects objects in a tightly packed BGR frame; boxes come back in frame pixels,
    /// clipped to the frame.
    pub fn detect(
        &mut self,
        bgr: &[u8],
        width: u32,
        height: u32,
    ) -> Result<Vec<Detection>, DetectError> {
        self.detect_one(Picture {
            bgr,
            width,
            height,
            tiling: None,
        })
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
        self.detect_one(Picture {
            bgr,
            width,
            height,
            tiling: Some(tiling),
        })
    }

    fn detect_one(&mut self, picture: Picture) -> Result<Vec<Detection>, DetectError> {
        self.detect_many(&[picture])
            .pop()
            .expect("one result per picture")
    }

    /// Detects objects in each of `pictures` (tiled where they say), their images run
    /// [`Detector::batch`] at a time; a failed inference of one image fails its picture.
    pub fn detect_many(
        &mut self,
        pictures: &[Picture],
    ) -> Vec<Result<Vec<Detection>, DetectError>> {
        let images: Vec<(usize, Region)> = pictures
            .iter()
            .enumerate()
            .flat_map(|(n, p)| {
                let regions = match p.tiling {
                    Some(tiling) => tiling.regions(p.width, p.height),
                    None => vec![Region::whole(p.width, p.height)],
                };
                regions.into_iter().map(move |region| (n, region))
            })
            .collect();
        // Per picture, the NMS-filtered boxes of each of its regions.
        let mut found: Vec<Result<Vec<RegionBoxes>, DetectError>> =
            pictures.iter().map(|_| Ok(Vec::new())).collect();
        let mut start = 0;
        while start < images.len() {
            let batch = &images[start..images.len().min(start + self.batch)];
            match self.infer(pictures, batch) {
                Ok(boxes) => {
                    for (&(n, region), boxes) in batch.iter().zip(boxes) {
                        if let Ok(regions) = &mut found[n] {
                            regions.push((region, boxes));
                        }
                    }
                }
                Err(e) if batch.len() > 1 => {
                    // A model whose batch is free on paper but whose graph pins it (a
                    // reshape to a batch of 1, say): the same images again, one at a time.
                    tracing::warn!(model = %self.manifest.id(), error = %e, "the model fails on a batch of images; analysing one at a time from now on");
                    self.batch = 1;
                    continue;
                }
                Err(e) => {
                    for &(n, _) in batch {
                        found[n] = Err(e.clone());
                    }
                }
            }
            start += batch.len();
        }
        let iou = self.manifest.decoder.nms_iou;
        found
            .into_iter()
            .zip(pictures)
            .map(|(regions, p)| {
                let regions = regions?;
                Ok(match p.tiling {
                    None => regions.into_iter().flat_map(|(_, boxes)| boxes).collect(),
                    Some(_) => tiling::merge(
                        regions
                            .into_iter()
                            .flat_map(|(region, boxes)| {
                                boxes
                                    .into_iter()
                                    .map(move |d| tiling::Found::new(d, region, p.width, p.height))
                            })
                            .collect(),
                        iou,
                    ),
                })
            })
            .collect()
    }

    /// One inference on `images` (regions of `pictures`): each image's boxes, in frame
    /// pixels, after NMS.
    fn infer(
        &mut self,
        pictures: &[Picture],
        images: &[(usize, Region)],
    ) -> Result<Vec<Vec<Detection>>, DetectError> {
        let spec = &self.manifest.input;
        let (iw, ih) = (spec.width as usize, spec.height as usize);
        let mut input = Array4::<f32>::zeros((images.len(), 3, ih, iw));
        let data = input.as_slice_mut().expect("a new array is contiguous");
        let ratios: Vec<(f32, f32)> = images
            .iter()
            .zip(data.chunks_exact_mut(3 * ih * iw))
            .map(|(&(n, region), out)| {
                let p = &pictures[n];
                preprocess::letterbox_into(
                    &mut self.resizer,
                    p.bgr,
                    p.width,
                    p.height,
                    region,
                    spec,
                    out,
                )
            })
            .collect();
        let tensor = Tensor::from_array(input).map_err(ort_err)?;
        let outputs = self.session.run(ort::inputs![tensor]).map_err(ort_err)?;
        let (_, data) = outputs[0].try_extract_tensor::<f32>().map_err(ort_err)?;
        if !data.len().is_multiple_of(images.len()) {
            return Err(DetectError::OutputShape {
                actual: data.len(),
                expected: data.len() / images.len() * images.len(),
            });
        }
        let iou = self.manifest.decoder.nms_iou;
        data.chunks_exact(data.len() / images.len())
            .zip(images)
            .zip(ratios)
            .map(|((out, &(n, region)), ratio)| {
                let p = &pictures[n];
                let boxes = decode(&self.manifest, out, p.width, p.height, region, ratio)?;
                Ok(geometry::nms(boxes, iou))
            })
            .collect()
    }
}

/// One image's share of the model's output as boxes in frame pixels (of the `width ×
/// height` frame the image was cut from as `region`, scaled by `ratio`), before NMS.
fn decode(
    manifest: &ModelManifest,
    data: &[f32],
    width: u32,
    height: u32,
    region: Region,
    ratio: (f32, f32),
) -> Result<Vec<Detection>, DetectError> {
    let spec = &manifest.input;
    let d = &manifest.decoder;
    let classes = manifest.labels.len();
    // Grid layouts have 5 + classes values per cell of the strides' grids; the
    // Ultralytics layouts any number of candidates of 5 + classes (v5) or 4 + classes (v8).
    let grid = yolox::expected_cells(spec.width, spec.height, &d.strides) * (5 + classes);
    let row = if d.kind == "yolov8" {
        4 + classes
    } else {
        5 + classes
    };
    let fits = match d.kind.as_str() {
        "yolov5" | "yolov8" => data.len().is_multiple_of(row),
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
    let (w, h, (rx, ry)) = (width as f32, height as f32, ratio);
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
