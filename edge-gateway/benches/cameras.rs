//! Cameras per box: the real gateway (release build) watching N simultaneous RTSP streams
//! from the GStreamer server of `deploy/demo/rtsp-server.py`, 640×360 H.264 at 25 fps,
//! detection at 2 fps per camera with motion gating on; most scenes stand still, a few pan
//! (see docs/benchmarks.md). After a warm-up it measures, over a window, each camera's
//! frames due for analysis (analysed or skipped as still), frames analysed late (more than
//! 1 s after receipt, the gateway's own `frames_late` count), the gateway's CPU share and
//! its peak resident memory. A count of cameras passes when every camera streams, gets its
//! 2 frames a second looked at, and no frame is analysed late.
//!
//! `cargo bench -p edge-gateway --bench cameras -- [--cameras 8,16,24] [--moving 2] [--seconds 60]`
//! (from the repository root, with `source .cache/env.sh`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use serde_json::Value;
use system_tests::{Process, free_port, make_camera_clip, rtsp_server};

#[derive(Parser)]
struct Args {
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
    /// Camera counts to try, one gateway run each.
    #[arg(long, value_delimiter = ',', default_value = "8,16,24")]
    cameras: Vec<usize>,
    /// Cameras whose scene pans (always moving); the others stand still.
    #[arg(long, default_value_t = 2)]
    moving: usize,
    #[arg(long, default_value_t = 20)]
    warmup: u64,
    /// The measuring window.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    #[arg(long, default_value_t = 2.0)]
    detect_fps: f64,
    /// Intra-op threads of the detector.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    #[arg(
        long,
        default_value = "../../shared/testdata/nopeople_terrace_pixabay.jpg"
    )]
    still_image: PathBuf,
    #[arg(long, default_value = "../../shared/testdata/crowd_office_ibm_stc.jpg")]
    moving_image: PathBuf,
}

/// What the gateway's status and /proc say at one moment.
struct Sample {
    at: Instant,
    /// Per camera: (state, analysed, still, late, dropped).
    cameras: Vec<(String, u64, u64, u64, u64)>,
    /// User + system CPU seconds of the gateway process.
    cpu_s: f64,
}

async fn sample(client: &reqwest::Client, api: &str, pid: u32) -> anyhow::Result<Sample> {
    let status: Value = client
        .get(format!("{api}/api/v1/status"))
        .send()
        .await?
        .json()
        .await?;
    let n = |c: &Value, k: &str| c[k].as_u64().unwrap_or(0);
    let cameras = status["cameras"]
        .as_array()
        .context("no cameras in the status")?
        .iter()
        .map(|c| {
            (
                c["state"].as_str().unwrap_or("?").to_owned(),
                n(c, "frames_analysed"),
                n(c, "frames_still"),
                n(c, "frames_late"),
                n(c, "frames_dropped"),
            )
        })
        .collect();
    Ok(Sample {
        at: Instant::now(),
        cameras,
        cpu_s: system_tests::procfs::cpu_s(pid)?,
    })
}

fn gateway_config(
    dir: &Path,
    api_port: u16,
    urls: &[String],
    args: &Args,
) -> anyhow::Result<PathBuf> {
    let manifest = std::fs::canonicalize("../models/yolox-nano.toml")?;
    let mut text = format!(
        r#"[gateway]
id = "gw-bench"
data_dir = "{data}"

[hub]
url = "http://127.0.0.1:9"
token = "not used: the events wait in the outbox"

[api]
listen = "127.0.0.1:{api_port}"

[motion]
min_changed = 0.005
force_every_s = 10

[model]
manifest = "{manifest}"
intra_threads = {threads}
"#,
        data = dir.join("data").display(),
        manifest = manifest.display(),
        threads = args.threads,
    );
    for (i, url) in urls.iter().enumerate() {
        write!(
            text,
            r#"
[[camera]]
id = "cam-{i:02}"
url = "{url}"
detect_fps = {fps}

[camera.location]
lat = 30.27
lon = 120.15

[camera.crowd]
min_persons = 5
"#,
            fps = args.detect_fps
        )?;
    }
    let path = dir.join("gateway.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// One gateway run with `n` cameras; prints its line and says whether it passed.
async fn run(n: usize, still: &str, moving: &str, args: &Args) -> anyhow::Result<bool> {
    let dir = tempfile::tempdir()?;
    let api_port = free_port();
    let urls: Vec<String> = (0..n)
        .map(|i| if i < args.moving { moving } else { still }.to_owned())
        .collect();
    let config = gateway_config(dir.path(), api_port, &urls, args)?;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_edge-gateway"));
    cmd.arg("--config").arg(&config).env("RUST_LOG", "warn");
    let gateway = Process::spawn("edge-gateway", &mut cmd, &dir.path().join("gateway.log"))?;
    let pid = gateway.id();
    let api = format!("http://127.0.0.1:{api_port}");
    let client = reqwest::Client::new();
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let first = sample(&client, &api, pid)
        .await
        .with_context(|| format!("the gateway's status (log: {})", dir.path().display()))?;
    let mut rss_mb: f64 = 0.0;
    let until = Instant::now() + Duration::from_secs(args.seconds);
    while Instant::now() < until {
        rss_mb = rss_mb.max(system_tests::procfs::rss_mb(pid)?);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let last = sample(&client, &api, pid).await?;
    let window = last.at.duration_since(first.at).as_secs_f64();
    let streaming = last.cameras.iter().filter(|c| c.0 == "streaming").count();
    let mut due_min = f64::MAX;
    let (mut analysed, mut still_frames, mut late, mut dropped) = (0, 0, 0, 0);
    for (a, b) in first.cameras.iter().zip(&last.cameras) {
        let due = (b.1 + b.2 - a.1 - a.2) as f64 / window;
        due_min = due_min.min(due);
        analysed += b.1 - a.1;
        still_frames += b.2 - a.2;
        late += b.3 - a.3;
        dropped += b.4 - a.4;
    }
    let cpu = (last.cpu_s - first.cpu_s) / window * 100.0;
    let passed = streaming == n && due_min >= args.detect_fps * 0.9 && late == 0;
    let still_pct = still_frames as f64 / (analysed + still_frames).max(1) as f64 * 100.0;
    println!(
        "{n:>7} {streaming:>9} {due_min:>12.2} {:>16.1} {cpu:>11.0}% {late:>5} {dropped:>8} {still_pct:>8.1} {rss_mb:>7.0}  {}",
        analysed as f64 / window,
        if passed { "pass" } else { "FAIL" }
    );
    drop(gateway);
    Ok(passed)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir()?;
    // Each gateway run connects anew, and each client gets the clip from its start.
    let length = (args.warmup + args.seconds) as u32 + 30;
    let (still_clip, moving_clip) = (dir.path().join("still.mp4"), dir.path().join("moving.mp4"));
    make_camera_clip(&args.still_image, &still_clip, length, false)?;
    make_camera_clip(&args.moving_image, &moving_clip, length, true)?;
    let (_still_server, still_url) = rtsp_server(&still_clip)?;
    let (_moving_server, moving_url) = rtsp_server(&moving_clip)?;
    println!(
        "cameras bench: 640x360 H.264 25 fps over RTSP, detection at {} fps per camera, motion gating on, {} moving scenes, YOLOX-Nano 416x416 on {} intra-op threads; {} s warm-up, {} s window",
        args.detect_fps, args.moving, args.threads, args.warmup, args.seconds
    );
    println!(
        "cameras streaming  due/s (min)  analysed/s (all)  gateway CPU  late  dropped  still %  RSS MB"
    );
    let mut best = 0;
    for &n in &args.cameras {
        if run(n, &still_url, &moving_url, &args).await? {
            best = best.max(n);
        }
    }
    println!("cameras_per_box = {best} (the most cameras that passed)");
    Ok(())
}
