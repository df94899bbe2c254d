//! Times the gateway's per-frame work on a still image, stage by stage, and prints a table
//! that can be compared across machines (see docs/benchmarks.md).
//!
//! `cargo bench -p edge-gateway --bench detect -- [--manifest TOML] [--image JPEG] [--iterations N]
//! [--free-batch ONNX]` (from the repository root, with `source .cache/env.sh`). With
//! `--free-batch`, a copy of the model with a free batch dimension
//! (`models/tools/free_batch.py`), it also times several frames, and a frame's tiles, in one
//! inference against one by one.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use edge_gateway::detect::{Detector, Picture, Tiling, load_bgr, preprocess};
use edge_gateway::pipeline::snapshot;
use support::ModelArgs;

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
}

fn time(iterations: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    for _ in 0..iterations.min(20) {
        f();
    }
    let mut samples: Vec<Duration> = (0..iterations).map(|_| timed(&mut f)).collect();
    samples.sort();
    (samples[samples.len() / 2], samples[samples.len() * 9 / 10])
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
        let mut batched = Detector::new(&model.env, path, manifest.clone(), model.threads)?;
        anyhow::ensure!(batched.batch() > 1, "{} has a fixed batch", path.display());
        let frame = Picture {
            bgr: &bgr,
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
            // drifts); a block's first run is left out, as the other session's threads may
            // still be spinning then.
            let (mut alone, mut together) = (Vec::new(), Vec::new());
            for _ in 0..(n / 40).max(1) {
                for (detector, samples) in
                    [(&mut detector, &mut alone), (&mut batched, &mut together)]
                {
                    for run in 0..11 {
                        let t = timed(|| {
                            std::hint::black_box(detector.detect_many(&pictures));
                        });
                        if run > 0 {
                            samples.push(t);
                        }
                    }
                }
            }
            let (alone, together) = (median(alone), median(together));
            println!(
                "{name:<40} {:>10} {:>10} {:>7.2}x",
                ms(alone),
                ms(together),
                alone.as_secs_f64() / together.as_secs_f64()
            );
        }
    }
    Ok(())
}
