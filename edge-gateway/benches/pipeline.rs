//! The video pipeline against raw inference and against a Python peer, on one recorded clip,
//! in one run on one machine (see docs/benchmarks.md):
//!
//! - **pipeline**: every frame of the clip through the gateway's own stages, on the
//!   gateway's threads: FFmpeg decode and BGR conversion on a decoding thread, handed to the
//!   detection thread, which letterboxes, runs the model through `ort`, decodes the grid,
//!   applies NMS, tracks and steps the crowd rule (`pipeline::watch`);
//! - **raw**: `session.run` alone on one letterboxed frame of the clip, same model, input
//!   size and intra-op threads;
//! - **python**: `models/tools/peer_pipeline.py` (OpenCV decode and letterbox, ONNX
//!   Runtime, NumPy decode and NMS) on the same clip, model and threads; its packages are
//!   installed into `.cache/peer/venv` on first use.
//!
//! Each is run `--rounds` times, interleaved, and reported at its best round.
//!
//! `cargo bench -p edge-gateway --bench pipeline -- [--seconds 20] [--threads 2] [--rounds 3] [--no-python]`
//! (from the repository root, with `source .cache/env.sh`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use clap::Parser;
use edge_gateway::detect::{Detector, preprocess};
use edge_gateway::pipeline::episode::Timing;
use edge_gateway::pipeline::frames::Frame;
use edge_gateway::pipeline::rules::CrowdRule;
use edge_gateway::pipeline::watch::{Rules, Watch};
use ffmpeg_next as ffmpeg;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::Tensor;
use support::{Model, ModelArgs};
use system_tests::make_camera_clip;

#[path = "support/clip.rs"]
mod clip;
mod support;

#[derive(Parser)]
struct Args {
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
    #[command(flatten)]
    model: ModelArgs,
    /// The still image the clip pans across (640×360 H.264 at 25 fps).
    #[arg(long, default_value = "../../shared/testdata/crowd_office_ibm_stc.jpg")]
    image: PathBuf,
    /// Length of the clip.
    #[arg(long, default_value_t = 20)]
    seconds: u32,
    /// Leave the Python peer out.
    #[arg(long)]
    no_python: bool,
    /// Rounds of all three, one after another; each is reported at its best round, so a
    /// burst of load from elsewhere on a shared machine does not decide a ratio.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

/// Decodes every picture of `clip` with the gateway's decoder, calling `each` per picture
/// as a BGR frame (handed from the decoding thread to the detection thread) until it
/// returns false. Returns how many pictures there were.
fn decode_clip(clip: &Path, mut each: impl FnMut(Frame) -> bool) -> anyhow::Result<usize> {
    clip::for_each_picture(clip, |decoder, picture| {
        let (width, height, bgr) = decoder.convert_to_bgr(picture)?;
        Ok(each(Frame {
            camera: 0,
            width,
            height,
            bgr,
            captured_at: Utc::now(),
        }))
    })
}

fn crowd_rule() -> CrowdRule {
    CrowdRule {
        min_persons: 5,
        clear_below: 4,
        min_score: 0.25,
        tracked: true,
        timing: Timing {
            dwell: Duration::from_secs(10),
            clear: Duration::from_secs(30),
            update_every: Duration::from_secs(60),
            refresh: Duration::from_secs(600),
            cooldown: Duration::from_secs(60),
        },
        medium_at: 10,
        high_at: 20,
        zone: None,
        category: "event:0407".parse().expect("a valid category"),
    }
}

/// Frames per second through the gateway's stages; also the persons counted in all.
fn pipeline(clip: &Path, mut detector: Detector) -> anyhow::Result<(f64, usize, usize)> {
    // Warm up on the first frame, as a running camera is.
    decode_clip(clip, |f| {
        let _ = detector.detect(&f.bgr, f.width, f.height);
        false
    })?;
    let (tx, rx) = sync_channel::<Frame>(2);
    let started = Instant::now();
    let analysis = std::thread::spawn(move || -> anyhow::Result<(usize, usize)> {
        let rule = crowd_rule();
        let rules = Rules {
            crowd: Some(&rule),
            hazard: None,
        };
        let mut watch = Watch::default();
        let (mut frames, mut persons) = (0, 0);
        for f in rx {
            let found = detector.detect(&f.bgr, f.width, f.height)?;
            let step = watch.analysed(rules, f, found);
            persons += rule.count(&step.tracks, step.width, step.height).len();
            frames += 1;
        }
        Ok((frames, persons))
    });
    decode_clip(clip, |f| tx.send(f).is_ok())?;
    drop(tx);
    let (frames, persons) = analysis.join().expect("the detection thread")?;
    Ok((
        frames as f64 / started.elapsed().as_secs_f64(),
        frames,
        persons,
    ))
}

/// ONNX Runtime's errors carry values that are not `Send`: keep their message.
fn ort_error(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("ONNX Runtime: {e}")
}

/// Inferences per second on one letterboxed frame, nothing else.
fn raw(model: &Model, clip: &Path, runs: usize) -> anyhow::Result<f64> {
    let mut first = None;
    decode_clip(clip, |f| {
        first = Some(f);
        false
    })?;
    let f = first.context("no frame in the clip")?;
    let mut resizer = fast_image_resize::Resizer::new();
    let spec = &model.manifest.input;
    let input = preprocess::letterbox(&mut resizer, &f.bgr, f.width, f.height, spec);
    // On the environment's pool of `model.threads` threads, as the detector's session.
    let mut session = Session::builder(&model.env)
        .map_err(ort_error)?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(ort_error)?
        .commit_from_file(&model.file)
        .map_err(ort_error)?;
    let tensor = Tensor::from_array(input.tensor).map_err(ort_error)?;
    session.run(ort::inputs![&tensor]).map_err(ort_error)?;
    let started = Instant::now();
    for _ in 0..runs {
        let out = session.run(ort::inputs![&tensor]).map_err(ort_error)?;
        std::hint::black_box(&out);
    }
    Ok(runs as f64 / started.elapsed().as_secs_f64())
}

/// The Python peer's frames per second, from its one line of output.
fn python(repo: &Path, model: &Path, clip: &Path, threads: usize) -> anyhow::Result<f64> {
    let venv = repo.join(".cache/peer/venv");
    let py = venv.join("bin/python");
    if !py.is_file() {
        eprintln!(
            "installing the Python peer's packages into {}",
            venv.display()
        );
        let ok = Command::new("/usr/bin/python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()?
            .success()
            && Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
                .arg(repo.join("models/tools/requirements-peer.txt"))
                .status()?
                .success();
        if !ok {
            bail!("installing the Python peer's packages failed");
        }
    }
    let out = Command::new(&py)
        .arg(repo.join("models/tools/peer_pipeline.py"))
        .arg("--model")
        .arg(model)
        .arg("--clip")
        .arg(clip)
        .args(["--threads", &threads.to_string()])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "the Python peer failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    eprintln!("python peer: {}", text.trim());
    text.split_whitespace()
        .find_map(|kv| kv.strip_prefix("fps=")?.parse().ok())
        .with_context(|| format!("no fps= in the peer's output {text:?}"))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ffmpeg::init()?;
    ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Error);
    let repo = std::env::current_dir()?
        .parent()
        .context("run from the edge-gateway folder, as cargo bench does")?
        .to_path_buf();
    let model = args.model.load()?;
    let (manifest, threads) = (&model.manifest, model.threads);
    let dir = tempfile::tempdir()?;
    let clip = dir.path().join("clip.h264");
    make_camera_clip(&args.image, &clip, args.seconds, true)?;

    let (mut pipeline_fps, mut raw_fps, mut python_fps) = (0.0f64, 0.0f64, None::<f64>);
    let (mut frames, mut persons) = (0, 0);
    for round in 1..=args.rounds.max(1) {
        let (fps, n, counted) = pipeline(&clip, model.detector()?)?;
        (frames, persons) = (n, counted);
        pipeline_fps = pipeline_fps.max(fps);
        let raw_now = raw(&model, &clip, frames)?;
        raw_fps = raw_fps.max(raw_now);
        let py = if args.no_python {
            None
        } else {
            Some(python(&repo, &model.file, &clip, threads)?)
        };
        python_fps = py.map(|p| python_fps.map_or(p, |best| best.max(p)));
        eprintln!("round {round}: pipeline {fps:.1}, raw {raw_now:.1}, python {py:.1?} frames/s");
    }

    println!(
        "pipeline bench: {frames} frames of 640x360 H.264 (25 fps, {} s), model {} ({}x{}), {} intra-op threads, best of {} rounds",
        args.seconds,
        manifest.id(),
        manifest.input.width,
        manifest.input.height,
        threads,
        args.rounds.max(1)
    );
    println!("{:<58} {:>10}", "", "frames/s");
    println!(
        "{:<58} {:>10.1}",
        "raw ort inference (session.run on one letterboxed frame)", raw_fps
    );
    println!(
        "{:<58} {:>10.1}",
        "gateway pipeline (decode, convert, detect, NMS, rule)", pipeline_fps
    );
    if let Some(py) = python_fps {
        println!(
            "{:<58} {:>10.1}",
            "python peer (OpenCV, onnxruntime, NumPy)", py
        );
    }
    println!(
        "persons counted by the pipeline: {persons} ({:.1} per frame)",
        persons as f64 / frames.max(1) as f64
    );
    println!("pipeline_vs_raw = {:.2}", pipeline_fps / raw_fps);
    if let Some(py) = python_fps {
        println!("pipeline_vs_python = {:.2}", pipeline_fps / py);
    }
    Ok(())
}
