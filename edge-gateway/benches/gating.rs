//! Motion gating: how many inferences it saves on still scenes, and whether it costs an
//! event where something appears (see docs/benchmarks.md).
//!
//! Clips of 640×360 H.264 at 25 fps are made from the test images with FFmpeg (sensor noise
//! added, as a real camera has): each image standing still, and scenes where persons come
//! into an empty view (cut in, faded in slowly, in a corner for a few seconds) or leave it.
//! Every frame goes through the gateway's decoder; the frames due at the detection rate go
//! three ways, on simulated time (the clip's own), with the same detections for the same
//! frame:
//!
//! - **every**: no gating, every frame due analysed;
//! - **gated**: the gateway, motion gate on, a frame skipped as still steps the rules with
//!   what the last analysed frame held (`pipeline::watch`);
//! - **gated, still frames dropped**: the gate alone, the rules never hear of the skipped
//!   frames (how the gateway worked before the still notices), for comparison.
//!
//! A rule event (start or end) of **every** that a gated way does not raise is missed; a
//! later one is late. Two rules run: the crowd rule (5 persons, tracked, 5 s dwell) and the
//! hazard rule with `person` as its object (3 of the last 5 analysed frames), so both a
//! dwell-timed and a frame-counted rule are exercised.
//!
//! `cargo bench -p edge-gateway --bench gating -- [--seconds 60] [--fps 2] [--force-every 10]`
//! (from the repository root, with `source .cache/env.sh`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::Parser;
use edge_gateway::detect::{Detection, Detector};
use edge_gateway::pipeline::decode::{Sampler, luma_thumb};
use edge_gateway::pipeline::episode::{Phase, Timing};
use edge_gateway::pipeline::frames::Frame;
use edge_gateway::pipeline::hazard::{HazardClass, HazardRule};
use edge_gateway::pipeline::motion::{MotionGate, MotionSettings};
use edge_gateway::pipeline::rules::{CrowdRule, PERSON};
use edge_gateway::pipeline::watch::{Rules, Step, Watch};
use ffmpeg_next as ffmpeg;
use protocol::Severity;
use support::ModelArgs;

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
    /// The test images.
    #[arg(long, default_value = "../../shared/testdata")]
    images: PathBuf,
    /// Length of each clip.
    #[arg(long, default_value_t = 60)]
    seconds: u32,
    /// Detection rate (frames due a second).
    #[arg(long, default_value_t = 2.0)]
    fps: f64,
    /// The gate's settings, as `[motion]` in the gateway's settings.
    #[arg(long, default_value_t = 0.005)]
    min_changed: f32,
    #[arg(long, default_value_t = 10.0)]
    force_every: f64,
}

const EMPTY: &str = "nopeople_terrace_pixabay.jpg";
const CROWD: &str = "crowd_office_ibm_stc.jpg";
const FEW: &str = "group3_apollo11_crew_nasa.jpg";
const NOISE: &str = "noise=alls=8:allf=t";

/// A clip: what it shows, whether the scene changes in it, and how FFmpeg makes it from its
/// images (`[a]`, `[b]`: the first and second, scaled to 640×360) as `[v]`.
struct Scene {
    name: String,
    inputs: Vec<String>,
    changes: bool,
    filter: String,
}

fn scenes(images: &Path) -> anyhow::Result<Vec<Scene>> {
    let mut all = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(images)
        .with_context(|| format!("reading {}", images.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".jpg"))
        .collect();
    names.sort();
    for name in names {
        all.push(Scene {
            name: format!("still {}", name.trim_end_matches(".jpg")),
            inputs: vec![name.clone()],
            changes: false,
            filter: format!("[a]{NOISE}[v]"),
        });
    }
    let changing = [
        (
            "a crowd cut in at 20 s",
            vec![EMPTY, CROWD],
            "[a][b]overlay=enable='gte(t,20)'",
        ),
        (
            "a crowd faded in over 10 s from 20 s",
            vec![EMPTY, CROWD],
            "[a][b]blend=all_expr='A+(B-A)*clip((T-20)/10,0,1)'",
        ),
        (
            "3 persons in a corner from 20 s to 24 s",
            vec![EMPTY, FEW],
            "[b]scale=-2:200[f];[a][f]overlay=x=W-w:y=H-h:enable='between(t,20,24)'",
        ),
        (
            "a crowd leaving at 20 s",
            vec![EMPTY, CROWD],
            "[a][b]overlay=enable='lt(t,20)'",
        ),
    ];
    for (name, inputs, filter) in changing {
        all.push(Scene {
            name: name.into(),
            inputs: inputs.iter().map(|i| i.to_string()).collect(),
            changes: true,
            filter: format!("{filter},{NOISE}[v]"),
        });
    }
    Ok(all)
}

/// Makes `scene` as raw H.264 at `out`.
fn make_clip(scene: &Scene, images: &Path, seconds: u32, out: &Path) -> anyhow::Result<()> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-loglevel", "error", "-y"]);
    let mut graph = String::new();
    for ((i, image), label) in scene.inputs.iter().enumerate().zip(["a", "b"]) {
        let seconds = seconds.to_string();
        cmd.args(["-loop", "1", "-framerate", "25", "-t", &seconds, "-i"])
            .arg(images.join(image));
        graph += &format!("[{i}]scale=640:360,setsar=1,format=yuv420p[{label}];");
    }
    graph += &scene.filter;
    let status = cmd
        .args([
            "-filter_complex",
            &graph,
            "-map",
            "[v]",
            "-pix_fmt",
            "yuv420p",
        ])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-g", "50",
        ])
        .args(["-f", "h264"])
        .arg(out)
        .status()
        .context("running ffmpeg (scripts/install-deps.sh installs it)")?;
    if !status.success() {
        bail!("ffmpeg failed making the clip {:?}", scene.name);
    }
    Ok(())
}

fn rules() -> (CrowdRule, HazardRule) {
    let timing = |dwell| Timing {
        dwell: Duration::from_secs(dwell),
        clear: Duration::from_secs(10),
        update_every: Duration::from_secs(60),
        refresh: Duration::from_secs(600),
        cooldown: Duration::from_secs(60),
    };
    let crowd = CrowdRule {
        min_persons: 5,
        clear_below: 4,
        min_score: 0.25,
        tracked: true,
        timing: timing(5),
        medium_at: 10,
        high_at: 20,
        zone: None,
        category: "event:0407".parse().expect("a valid category"),
    };
    let hazard = HazardRule {
        classes: vec![HazardClass {
            class: PERSON,
            label: "person".into(),
            category: "event:0407".parse().expect("a valid category"),
            severity: Severity::Low,
        }],
        min_score: 0.5,
        frames: 3,
        window: 5,
        timing: timing(0),
        zone: None,
    };
    (crowd, hazard)
}

/// A rule event: which rule, start or end, at which second of the clip.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Mark {
    rule: &'static str,
    phase: Phase,
    at: f64,
}

/// One way of handling the frames due: its watch, and what it raised and ran.
struct Way {
    watch: Watch,
    marks: Vec<Mark>,
    inferences: usize,
}

impl Way {
    fn new() -> Self {
        Self {
            watch: Watch::default(),
            marks: Vec::new(),
            inferences: 0,
        }
    }
    /// An analysed frame and its detections.
    fn analysed(&mut self, rules: Rules, frame: Frame, found: Vec<Detection>) {
        self.inferences += 1;
        let step = self.watch.analysed(rules, frame, found);
        note(&mut self.marks, step);
    }

    /// A frame skipped as still.
    fn still(&mut self, rules: Rules, at: DateTime<Utc>) {
        if let Some(step) = self.watch.still(rules, at) {
            note(&mut self.marks, step);
        }
    }
}

/// The starts and ends `step` raised, at seconds from the clip's start (the epoch).
fn note(marks: &mut Vec<Mark>, step: Step) {
    let at = (step.at - DateTime::UNIX_EPOCH).as_seconds_f64();
    let crowd = step.crowd.iter().map(|h| ("crowd", h.report.phase));
    let hazard = step.hazard.iter().map(|h| ("hazard", h.report.phase));
    for (rule, phase) in crowd.chain(hazard) {
        if phase != Phase::Update {
            marks.push(Mark { rule, phase, at });
        }
    }
}

/// What the three ways made of one clip.
struct Outcome {
    due: usize,
    every: Way,
    gated: Way,
    dropped: Way,
}

fn run_clip(clip: &Path, detector: &mut Detector, args: &Args) -> anyhow::Result<Outcome> {
    let (crowd, hazard) = rules();
    let rules = Rules {
        crowd: Some(&crowd),
        hazard: Some(&hazard),
    };
    let mut sampler = Sampler::new(Duration::from_secs_f64(1.0 / args.fps));
    let mut gate = MotionGate::new(MotionSettings {
        min_changed: args.min_changed,
        force_every: Duration::from_secs_f64(args.force_every),
    });
    // The clip's time: from now on the gate's clock, from the epoch on the rules'.
    let (t0, start) = (Instant::now(), DateTime::<Utc>::UNIX_EPOCH);
    let (mut every, mut gated, mut dropped) = (Way::new(), Way::new(), Way::new());
    let mut due = 0;
    let mut index = 0u32;
    clip::for_each_picture(clip, |decoder, picture| {
        let offset = Duration::from_millis(40) * index;
        index += 1;
        let (now, at) = (t0 + offset, start + offset);
        if !sampler.due(now) {
            return Ok(true);
        }
        due += 1;
        let admitted = gate.admit(luma_thumb(picture), now);
        let (width, height, bgr) = decoder.convert_to_bgr(picture)?;
        let found = detector.detect(&bgr, width, height)?;
        let frame = || Frame {
            camera: 0,
            width,
            height,
            bgr: bgr.clone(),
            captured_at: at,
        };
        every.analysed(rules, frame(), found.clone());
        if admitted {
            gated.analysed(rules, frame(), found.clone());
            dropped.analysed(rules, frame(), found);
        } else {
            gated.still(rules, at);
        }
        Ok(true)
    })?;
    Ok(Outcome {
        due,
        every,
        gated,
        dropped,
    })
}

/// The events of `every` that `way` did not raise, and the most any it did raise came
/// later (seconds); events are paired in order per rule and phase.
fn compare(every: &[Mark], way: &[Mark]) -> (usize, f64) {
    let (mut missed, mut late) = (0, 0.0f64);
    let mut taken = vec![false; way.len()];
    for m in every {
        let pair = way
            .iter()
            .enumerate()
            .find(|(i, w)| !taken[*i] && w.rule == m.rule && w.phase == m.phase);
        match pair {
            Some((i, w)) => {
                taken[i] = true;
                late = late.max(w.at - m.at);
            }
            None => missed += 1,
        }
    }
    (missed, late)
}

fn show(marks: &[Mark]) -> String {
    let all: Vec<String> = marks
        .iter()
        .map(|m| {
            let phase = if m.phase == Phase::Start {
                "start"
            } else {
                "end"
            };
            format!("{} {phase} {:.1}s", m.rule, m.at)
        })
        .collect();
    if all.is_empty() {
        "none".into()
    } else {
        all.join(", ")
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ffmpeg::init()?;
    ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Error);
    let model = args.model.load()?;
    let mut detector = model.detector()?;
    let dir = tempfile::tempdir()?;
    println!(
        "motion gating bench: {} s clips of 640x360 H.264 at 25 fps, {} frames due a second, min_changed {}, forced check every {} s, model {} ({}x{}), {} intra-op threads",
        args.seconds,
        args.fps,
        args.min_changed,
        args.force_every,
        model.manifest.id(),
        model.manifest.input.width,
        model.manifest.input.height,
        model.threads
    );
    println!(
        "| clip | due | analysed (gated) | skipped | events, every frame analysed | missed / latest (gated) | missed / latest (still frames dropped) |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let (mut still_due, mut still_skipped) = (0, 0);
    let (mut missed_gated, mut missed_dropped) = (0, 0);
    let mut events = 0;
    for scene in scenes(&args.images)? {
        let clip = dir.path().join("clip.h264");
        make_clip(&scene, &args.images, args.seconds, &clip)?;
        let o = run_clip(&clip, &mut detector, &args)?;
        let skipped = o.due - o.gated.inferences;
        let (gm, gl) = compare(&o.every.marks, &o.gated.marks);
        let (dm, dl) = compare(&o.every.marks, &o.dropped.marks);
        missed_gated += gm;
        missed_dropped += dm;
        events += o.every.marks.len();
        if !scene.changes {
            (still_due, still_skipped) = (still_due + o.due, still_skipped + skipped);
        }
        println!(
            "| {} | {} | {} | {:.1}% | {} | {gm} / {gl:.1} s | {dm} / {dl:.1} s |",
            scene.name,
            o.due,
            o.gated.inferences,
            100.0 * skipped as f64 / o.due.max(1) as f64,
            show(&o.every.marks),
        );
        if gm + dm > 0 {
            eprintln!(
                "  gated: {}; still frames dropped: {}",
                show(&o.gated.marks),
                show(&o.dropped.marks)
            );
        }
    }
    println!(
        "gating_skipped_still = {:.3}",
        still_skipped as f64 / still_due.max(1) as f64
    );
    println!("gating_missed_events = {missed_gated} (of {events})");
    println!("gating_missed_events_still_frames_dropped = {missed_dropped}");
    Ok(())
}
