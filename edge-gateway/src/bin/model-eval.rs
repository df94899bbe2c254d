//! `model-eval`: how well a model finds what a folder of labelled images holds.
//!
//! Runs the gateway's own detector (the manifest's preprocessing, decoder and NMS, through
//! ONNX Runtime) on every image of a YOLO-format folder (`images/*.jpg`, `labels/*.txt` with
//! `class cx cy w h` normalised; a missing label file means nothing to find) and prints
//! precision and recall at the manifest's operating score, AP at IoU 0.5 per class, the
//! confusion table and the latency per frame. With `--check` it exits non-zero when a
//! number falls below the manifest's `[evaluation]` record by more than its margin.
//!
//!     model-eval --manifest models/manhole-v1.toml --data held-out/ --check

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Parser;
use edge_gateway::detect::evaluate::Evaluation;
use edge_gateway::detect::{Detection, Detector, ModelManifest, init_runtime, load_bgr};

#[derive(Parser)]
#[command(about = "Precision, recall, AP@0.5 and latency of a model on labelled images")]
struct Args {
    /// The model's manifest (models/*.toml).
    #[arg(long)]
    manifest: PathBuf,
    /// A YOLO-format folder: images/ and labels/.
    #[arg(long)]
    data: PathBuf,
    /// ONNX Runtime threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Operating score; the manifest's `evaluation.score_threshold` when not given.
    #[arg(long)]
    score: Option<f32>,
    /// Overlap needed to count as found; the manifest's `evaluation.iou` (else 0.5) when
    /// not given.
    #[arg(long)]
    iou: Option<f32>,
    /// Evaluate only the first N images.
    #[arg(long)]
    limit: Option<usize>,
    /// Fail when a number is below the manifest's `[evaluation]` record by more than its margin.
    #[arg(long)]
    check: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let manifest = ModelManifest::load(&args.manifest)?;
    let cache = std::env::var_os("MODEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".cache/models"));
    let model = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(manifest.resolve(std::slice::from_ref(&cache), &cache))?;
    let dylib = std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from);
    let env = init_runtime(dylib.as_deref(), args.threads)?;
    let spec = manifest.evaluation.clone();
    let score = args
        .score
        .or(spec.as_ref().map(|s| s.score_threshold))
        .unwrap_or(0.3);
    let iou = args.iou.or(spec.as_ref().map(|s| s.iou)).unwrap_or(0.5);
    let labels = manifest.labels.clone();
    let id = manifest.id();
    let (width, height) = (manifest.input.width, manifest.input.height);
    let mut detector = Detector::new(&env, &model, manifest)?;

    let mut images: Vec<PathBuf> = std::fs::read_dir(args.data.join("images"))
        .with_context(|| format!("reading {}", args.data.join("images").display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    images.sort();
    images.truncate(args.limit.unwrap_or(usize::MAX));
    if images.is_empty() {
        bail!("no images in {}", args.data.join("images").display());
    }

    let mut eval = Evaluation::new(labels.len(), iou, score);
    let mut times = Vec::with_capacity(images.len());
    for path in &images {
        let (bgr, w, h) = load_bgr(path).with_context(|| format!("reading {}", path.display()))?;
        let truths = load_labels(&args.data, path, w, h)?;
        let started = Instant::now();
        let found = detector.detect(&bgr, w, h)?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        eval.add(&truths, &found);
    }
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];

    println!(
        "model {id} on {} images of {}; score >= {score}, IoU {iou}",
        images.len(),
        args.data.display()
    );
    println!(
        "{:<20} {:>7} {:>10} {:>8} {:>8}",
        "class", "truths", "precision", "recall", "AP50"
    );
    let report = eval.report();
    for r in &report {
        println!(
            "{:<20} {:>7} {:>10.3} {:>8.3} {:>8.3}",
            labels[r.class], r.truths, r.precision, r.recall, r.ap
        );
    }
    let with_truths: Vec<_> = report.iter().filter(|r| r.truths > 0).collect();
    let map = with_truths.iter().map(|r| r.ap).sum::<f64>() / with_truths.len().max(1) as f64;
    println!("mAP50 = {map:.3}");
    println!("confusion (rows: labelled, columns: detected at the operating score)");
    print!("{:<20}", "");
    for l in labels.iter().chain(std::iter::once(&"missed".to_owned())) {
        print!(" {:>16}", l);
    }
    println!();
    for (i, row) in eval.confusion().iter().enumerate() {
        print!("{:<20}", labels[i]);
        for n in row {
            print!(" {n:>16}");
        }
        println!();
    }
    println!(
        "latency_ms mean = {mean:.2}, p50 = {:.2}, p95 = {:.2} ({width}x{height} input, {} threads, preprocessing and NMS included)",
        pct(0.5),
        pct(0.95),
        args.threads
    );

    if args.check {
        let Some(spec) = spec else {
            bail!("--check: the manifest has no [evaluation] record");
        };
        let mut failed = Vec::new();
        for x in &spec.expect {
            let i = labels.iter().position(|l| *l == x.class).unwrap_or(0);
            let r = &report[i];
            for (what, got, want) in [
                ("precision", r.precision, x.precision),
                ("recall", r.recall, x.recall),
                ("AP50", r.ap, x.ap50),
            ] {
                if got < want - spec.margin {
                    failed.push(format!(
                        "{} {what} {got:.3} < recorded {want:.3} - margin {}",
                        x.class, spec.margin
                    ));
                }
            }
        }
        for c in &spec.confusion {
            let idx = |l: &String| labels.iter().position(|x| x == l).unwrap_or(0);
            let rate = eval.confusion_rate(idx(&c.between[0]), idx(&c.between[1]));
            if rate > c.max {
                failed.push(format!(
                    "{} vs {} confusion {rate:.3} > {}",
                    c.between[0], c.between[1], c.max
                ));
            }
        }
        if !failed.is_empty() {
            bail!("below the model's record:\n  {}", failed.join("\n  "));
        }
        println!("check: every class within the record's margin");
    }
    Ok(())
}

/// The image's labels in pixels; `labels/<stem>.txt` beside `images/`.
fn load_labels(root: &Path, image: &Path, w: u32, h: u32) -> anyhow::Result<Vec<Detection>> {
    let stem = image.file_stem().unwrap_or_default();
    let path = root.join("labels").join(stem).with_extension("txt");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let (w, h) = (w as f32, h as f32);
    let mut out = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let bad = || format!("{}:{}: expected `class cx cy w h`", path.display(), n + 1);
        let v: Vec<f32> = line
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .with_context(bad)?;
        let [class, cx, cy, bw, bh] = v[..] else {
            bail!(bad());
        };
        if class < 0.0 || class.fract() != 0.0 {
            bail!("{}: class must be a whole number", bad());
        }
        out.push(Detection {
            class: class as usize,
            score: 1.0,
            x1: (cx - bw / 2.0) * w,
            y1: (cy - bh / 2.0) * h,
            x2: (cx + bw / 2.0) * w,
            y2: (cy + bh / 2.0) * h,
        });
    }
    Ok(out)
}
