//! Counting accuracy: the persons the crowd rule would count on each test image, with the
//! whole frame at the model's input size and with tiling, against the hand counts in the
//! images' README, with the cost of each layout (see docs/benchmarks.md).
//!
//! `cargo bench -p edge-gateway --bench count -- [--layouts full,2x1,2x2,3x2] [--min-score 0.25]`
//! (from the repository root, with `source .cache/env.sh`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Parser;
use edge_gateway::detect::{Tiling, load_bgr};
use edge_gateway::pipeline::rules::PERSON;
use support::ModelArgs;

mod support;

#[derive(Parser)]
struct Args {
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
    #[command(flatten)]
    model: ModelArgs,
    /// Images and their README with the hand counts.
    #[arg(long, default_value = "../../shared/testdata")]
    testdata: PathBuf,
    /// `full`, or tiles as COLSxROWS (the whole frame is analysed with them).
    #[arg(long, value_delimiter = ',', default_value = "full,2x1,2x2,3x2")]
    layouts: Vec<String>,
    #[arg(long, default_value_t = 0.2)]
    overlap: f32,
    /// The crowd rule's score for counting a person.
    #[arg(long, default_value_t = 0.25)]
    min_score: f32,
    /// Timed runs per image and layout (after one warm-up).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
}

/// The images and hand counts of the README's table: rows like "| `file.jpg` | **14** …".
fn hand_counts(readme: &Path) -> anyhow::Result<Vec<(String, u32)>> {
    let text =
        std::fs::read_to_string(readme).with_context(|| format!("reading {}", readme.display()))?;
    let rows: Vec<(String, u32)> = text
        .lines()
        .filter_map(|line| {
            let mut cells = line.split('|').map(str::trim).skip(1);
            let file = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
            let count = cells.next()?.strip_prefix("**")?.split("**").next()?;
            Some((file.to_owned(), count.parse().ok()?))
        })
        .collect();
    if rows.is_empty() {
        bail!("no hand counts in {}", readme.display());
    }
    Ok(rows)
}

fn layout(name: &str, overlap: f32) -> anyhow::Result<Option<Tiling>> {
    if name == "full" {
        return Ok(None);
    }
    let (cols, rows) = name
        .split_once('x')
        .and_then(|(c, r)| Some((c.parse().ok()?, r.parse().ok()?)))
        .with_context(|| format!("layout {name:?}: expected full or COLSxROWS"))?;
    Ok(Some(Tiling {
        cols,
        rows,
        overlap,
    }))
}

/// Whether `found` is within 15% of `hand` (exactly 0 for an empty scene).
fn within(found: u32, hand: u32) -> bool {
    f64::from(found.abs_diff(hand)) <= 0.15 * f64::from(hand)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let model = args.model.load()?;
    let (id, iw, ih) = (
        model.manifest.id(),
        model.manifest.input.width,
        model.manifest.input.height,
    );
    let mut detector = model.detector()?;
    let layouts = args
        .layouts
        .iter()
        .map(|name| Ok((name.clone(), layout(name, args.overlap)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let images = hand_counts(&args.testdata.join("README.md"))?;

    println!(
        "count bench: model {id} ({iw}x{ih}), persons scoring >= {}, tile overlap {}, {} intra-op threads, median of {} runs",
        args.min_score, args.overlap, model.threads, args.rounds
    );
    print!("{:<38} {:>5}", "image", "hand");
    for (name, _) in &layouts {
        print!(" {:>14}", format!("{name} (ms)"));
    }
    println!();
    let mut hits = vec![0usize; layouts.len()];
    let mut total_ms = vec![0.0f64; layouts.len()];
    for (file, hand) in &images {
        let path = args.testdata.join(file);
        let (bgr, w, h) = load_bgr(&path).with_context(|| format!("reading {}", path.display()))?;
        print!("{file:<38} {hand:>5}");
        for (i, (_, tiling)) in layouts.iter().enumerate() {
            let mut run = || match tiling {
                None => detector.detect(&bgr, w, h),
                Some(t) => detector.detect_tiled(&bgr, w, h, t),
            };
            run()?;
            let mut times = Vec::with_capacity(args.rounds);
            let mut found = Vec::new();
            for _ in 0..args.rounds.max(1) {
                let started = Instant::now();
                found = run()?;
                times.push(started.elapsed().as_secs_f64() * 1e3);
            }
            times.sort_by(f64::total_cmp);
            let ms = times[times.len() / 2];
            let count = found
                .iter()
                .filter(|d| d.class == PERSON && d.score >= args.min_score)
                .count() as u32;
            let ok = within(count, *hand);
            hits[i] += usize::from(ok);
            total_ms[i] += ms;
            let mark = if ok { ' ' } else { '*' };
            print!(" {:>14}", format!("{count}{mark} ({ms:.0})"));
        }
        println!();
    }
    println!("(* = outside ±15% of the hand count; 0 required on empty scenes)");
    for (i, (name, _)) in layouts.iter().enumerate() {
        println!(
            "counting[{name}]: within_15pct = {}/{}, mean_ms = {:.1}",
            hits[i],
            images.len(),
            total_ms[i] / images.len() as f64
        );
    }
    Ok(())
}
