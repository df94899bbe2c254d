//! Times the gateway's per-frame work on a still image, stage by stage, and prints a table
//! that can be compared across machines (see docs/benchmarks.md).
//!
//! `cargo bench -p edge-gateway --bench detect -- [--manifest TOML] [--image JPEG] [--iterations N]`
//! (from the repository root, with `source .cache/env.sh`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use edge_gateway::detect::{load_bgr, preprocess};
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
}

fn time(iterations: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    for _ in 0..iterations.min(20) {
        f();
    }
    let mut samples: Vec<Duration> = (0..iterations)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    samples.sort();
    (samples[samples.len() / 2], samples[samples.len() * 9 / 10])
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
    Ok(())
}
