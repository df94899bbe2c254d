//! Times the gateway's per-frame work on a still image, stage by stage, and prints a table
//! that can be compared across machines (see docs/benchmarks.md).
//!
//! `cargo bench -p edge-gateway --bench detect -- [--manifest TOML] [--image JPEG] [--iterations N]
//! [--free-batch ONNX] [--second-manifest TOML]` (from the repository root, with `source .cache/env.sh`). With
//! `--free-batch`, a copy of the model with a free batch dimension
//! (`models/tools/free_batch.py`), it also times several frames, and a frame's tiles, in one
//! inference against one by one. With `--second-manifest`, it times the two models run
//! alternately on ONNX Runtime's shared thread pool against a pool per session.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use edge_gateway::detect::{Detector, Picture, Tiling, load_bgr, preprocess};
use edge_gateway::pipeline::snapshot;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::Tensor;
use support::{Model, ModelArgs};

mod support;

#[derive(Parser)]
struct Args {
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
    #[command(flatten)]
    model: ModelArgs,
    #[arg(
        long,
        default_value = "../../shared/testdata/crowd_seminar_ibm_stc-brownbag.jpg"
    )]
    image: PathBuf,
    #[arg(long, default_value_t = 200)]
    iterations: usize,
    /// A copy of the model with a free batch dimension.
    #[arg(long)]
    free_batch: Option<PathBuf>,
    /// A second model's manifest, to time the two run alternately.
    #[arg(long)]
    second_manifest: Option<PathBuf>,
}

fn time(iterations: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    for _ in 0..iterations.min(20) {
        f();
    }
    let mut samples: Vec<Duration> = (0..iterations).map(|_| timed(&mut f)).collect();
    samples.sort();
    (samples[samples.len() / 2], samples[samples.len() * 9 / 10])
}

fn ort_error(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("ONNX Runtime: {e}")
}

fn timed(mut f: impl FnMut()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let model = args.model.load()?;
    let manifest = &model.manifest;
    let mut detector = model.detector()?;
    let (bgr, w, h) =
        load_bgr(&args.image).with_context(|| format!("reading {}", args.image.display()))?;
    let n = args.iterations;

    let mut resizer = fast_image_resize::Resizer::new();
    let letterbox = time(n, || {
        std::hint::black_box(preprocess::letterbox(
            &mut resizer,
            &bgr,
            w,
            h,
            &manifest.input,
        ));
    });
    let mut found = 0;
    let detect = time(n, || found = detector.detect(&bgr, w, h).unwrap().len());
    let boxes = detector.detect(&bgr, w, h)?;
    let snap = time(n.min(50), || {
        std::hint::black_box(snapshot::render(&bgr, w, h, &boxes).unwrap());
    });

    println!(
        "detect bench: {} ({w}x{h}), model {} ({}x{}), {} intra-op threads, {n} iterations",
        args.image.display(),
        manifest.id(),
        manifest.input.width,
        manifest.input.height,
        model.threads
    );
    println!("{:<40} {:>10} {:>10}", "stage", "median ms", "p90 ms");
    println!(
        "{:<40} {:>10} {:>10}",
        "letterbox (resize + CHW float)",
        ms(letterbox.0),
        ms(letterbox.1)
    );
    println!(
        "{:<40} {:>10} {:>10}",
        "detect (letterbox + inference + NMS)",
        ms(detect.0),
        ms(detect.1)
    );
    println!(
        "{:<40} {:>10} {:>10}",
        "  of which inference + decode + NMS",
        ms(detect.0.saturating_sub(letterbox.0)),
        ""
    );
    println!(
        "{:<40} {:>10} {:>10}",
        "snapshot (boxes + JPEG q80)",
        ms(snap.0),
        ms(snap.1)
    );
    println!("objects found: {found}");
    println!(
        "analysed frames/s on one detection thread: {:.0}",
        1.0 / detect.0.as_secs_f64()
    );
    println!(
        "cameras at 2 analysed fps one detection thread can serve: {:.0}",
        1.0 / detect.0.as_secs_f64() / 2.0
    );
    if let Some(path) = &args.free_batch {
        compare_batched(&model, &mut detector, path, (&bgr, w, h), n)?;
    }
    if let Some(second) = &args.second_manifest {
        compare_pools(&args.model, &model, second, (&bgr, w, h), n)?;
    }
    Ok(())
}

/// The model's detector one image at a time against its copy with a free batch at
/// `path`, on several frames and on a tiled frame.
fn compare_batched(
    model: &Model,
    detector: &mut Detector,
    path: &Path,
    (bgr, w, h): (&[u8], u32, u32),
    n: usize,
) -> anyhow::Result<()> {
    let mut batched = Detector::new(&model.env, path, model.manifest.clone())?;
    anyhow::ensure!(batched.batch() > 1, "{} has a fixed batch", path.display());
    let frame = Picture {
        bgr,
        width: w,
        height: h,
        tiling: None,
    };
    let tiling = Tiling {
        cols: 3,
        rows: 1,
        overlap: 0.2,
    };
    let tiled = Picture {
        tiling: Some(&tiling),
        ..frame
    };
    println!(
        "{:<40} {:>10} {:>10} {:>8}",
        "images at once (median ms)", "one by one", "batched", "ratio"
    );
    for (name, pictures) in [
        ("2 frames", vec![frame; 2]),
        ("4 frames", vec![frame; 4]),
        ("8 frames", vec![frame; 8]),
        ("one frame, 3x1 tiles + whole", vec![tiled]),
    ] {
        // In alternating blocks, so both meet the machine in the same state (its speed
        // drifts).
        let [alone, together] = alternating(n, [&mut *detector, &mut batched], |d| {
            std::hint::black_box(d.detect_many(&pictures));
        });
        println!(
            "{name:<40} {:>10} {:>10} {:>7.2}x",
            ms(alone),
            ms(together),
            alone.as_secs_f64() / together.as_secs_f64()
        );
    }
    Ok(())
}

/// The model and the one of `second` run alternately, a frame each (a gateway with crowd
/// and manhole cameras), with ONNX Runtime's calls only: on the environment's one pool of
/// threads (as the gateway runs them) against a pool per session of as many threads.
fn compare_pools(
    args: &ModelArgs,
    model: &Model,
    second: &Path,
    (bgr, w, h): (&[u8], u32, u32),
    n: usize,
) -> anyhow::Result<()> {
    let (second_manifest, second_file) = args.find(second)?;
    let models = [
        (&model.manifest, &model.file),
        (&second_manifest, &second_file),
    ];
    // A session for each model, on the environment's pool or each on a pool of its own.
    let sessions = |own_pool: bool| -> anyhow::Result<Vec<Session>> {
        let session = |file: &Path| -> anyhow::Result<Session> {
            let mut builder = Session::builder(&model.env)
                .map_err(ort_error)?
                .with_optimization_level(GraphOptimizationLevel::Level3)
                .map_err(ort_error)?;
            if own_pool {
                builder = builder
                    .with_independent_thread_pool()
                    .map_err(ort_error)?
                    .with_intra_threads(model.threads)
                    .map_err(ort_error)?
                    .with_inter_threads(1)
                    .map_err(ort_error)?;
            }
            builder.commit_from_file(file).map_err(ort_error)
        };
        models.iter().map(|(_, file)| session(file)).collect()
    };
    let mut resizer = fast_image_resize::Resizer::new();
    let mut inputs = Vec::new();
    for (manifest, _) in models {
        let input = preprocess::letterbox(&mut resizer, bgr, w, h, &manifest.input);
        inputs.push(Tensor::from_array(input.tensor).map_err(ort_error)?);
    }
    let [shared, own] = alternating(n, [sessions(false)?, sessions(true)?], |sessions| {
        for (session, input) in sessions.iter_mut().zip(&inputs) {
            std::hint::black_box(session.run(ort::inputs![input]).expect("an inference"));
        }
    });
    println!(
        "{} then {}, a frame each (median ms a pair): one shared pool {}, a pool per session {}: {:.2}x",
        model.manifest.id(),
        second_manifest.id(),
        ms(shared),
        ms(own),
        own.as_secs_f64() / shared.as_secs_f64()
    );
    Ok(())
}

/// The median time of `run` on each of `subjects`, timed in alternating blocks of 10 runs
/// (after one left out), about `n / 4` runs each: both meet the machine in the same state,
/// as its speed drifts.
fn alternating<T, const K: usize>(
    n: usize,
    mut subjects: [T; K],
    mut run: impl FnMut(&mut T),
) -> [Duration; K] {
    let mut samples: [Vec<Duration>; K] = std::array::from_fn(|_| Vec::new());
    for _ in 0..(n / 40).max(1) {
        for (subject, samples) in subjects.iter_mut().zip(&mut samples) {
            for round in 0..11 {
                let t = timed(|| run(subject));
                if round > 0 {
                    samples.push(t);
                }
            }
        }
    }
    samples.map(median)
}
