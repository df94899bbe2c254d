//! The outbox and the uplink (see docs/benchmarks.md):
//! 1. durable appends: events/s into the outbox, one transaction (one fsync) per event, and
//!    in batches of `--batch` per transaction as the patrol intake writes them;
//! 2. drain: a backlog of `--backlog` events sent to a hub on loopback (the real hub, in
//!    this process, on SQLite) by the real uplink, timed until the outbox is empty, with the
//!    process's resident memory sampled on the way.
//!
//! `cargo bench -p edge-gateway --bench outbox -- [--events 100000] [--backlog 200000]`
//! (from the repository root, with `source .cache/env.sh`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use edge_gateway::event::NewEvent;
use edge_gateway::health::GatewayStats;
use edge_gateway::outbox::Outbox;
use edge_gateway::uplink::Uplink;
use protocol::{EventEnvelope, EventKind, Location, Severity, Source};
use system_tests::procfs;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Args {
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
    /// Events appended in each append test.
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// Events per transaction in the batched append test.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Events drained to the hub (0: skip).
    #[arg(long, default_value_t = 200_000)]
    backlog: usize,
    /// Events per uplink batch.
    #[arg(long, default_value_t = 500)]
    uplink_batch: usize,
}

/// Crowd event `i`, from one of 16 cameras in 8 townships, as the hub bench makes them.
fn event(i: usize) -> NewEvent {
    let camera = i % 16;
    NewEvent {
        envelope: EventEnvelope {
            v: protocol::PROTOCOL_VERSION,
            id: uuid::Uuid::now_v7(),
            gateway_id: "gw-bench".into(),
            source: Source::Camera {
                camera_id: format!("cam-{camera}"),
            },
            kind: EventKind::Raised,
            episode: None,
            rule: "crowd".into(),
            category: "event:0407".parse().expect("a valid category"),
            occurred_at: chrono::Utc::now(),
            location: Location {
                lat: 30.27 + 0.02 * camera as f64,
                lon: 120.15,
                area_code: Some("330106001001".into()),
                grid: None,
            },
            severity: Severity::Medium,
            description: Some(format!("crowd {i}")),
            detection: None,
            evidence: Vec::new(),
        },
        blobs: Vec::new(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir()?;

    println!("| test | events | seconds | events/s |");
    println!("| --- | --- | --- | --- |");
    let single = Outbox::open(&dir.path().join("single.db")).await?;
    let n = args.events.min(20_000);
    let start = Instant::now();
    for i in 0..n {
        single.push(&event(i)).await?;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "| append, one transaction per event | {n} | {secs:.2} | {:.0} |",
        n as f64 / secs
    );

    let batched = Outbox::open(&dir.path().join("batched.db")).await?;
    let events: Vec<NewEvent> = (0..args.events).map(event).collect();
    let start = Instant::now();
    for chunk in events.chunks(args.batch) {
        batched.push_all(chunk).await?;
    }
    let secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(batched.pending().await? == args.events as i64);
    println!(
        "| append, {} events per transaction | {} | {secs:.2} | `outbox_append_per_s = {:.0}` |",
        args.batch,
        args.events,
        args.events as f64 / secs
    );
    drop(events);

    if args.backlog > 0 {
        drain(&args, dir.path()).await?;
    }
    Ok(())
}

async fn drain(args: &Args, dir: &std::path::Path) -> anyhow::Result<()> {
    let outbox = Outbox::open(&dir.join("backlog.db")).await?;
    for start in (0..args.backlog).step_by(1000) {
        let chunk: Vec<NewEvent> = (start..(start + 1000).min(args.backlog))
            .map(event)
            .collect();
        outbox.push_all(&chunk).await?;
    }
    let url = format!("sqlite:{}", dir.join("hub.db").display());
    let ownership = dir.join("ownership.toml");
    std::fs::write(
        &ownership,
        "[[item]]\ncategory = \"event:0407\"\ndepartment = \"police\"\ntime_limit = \"2 working_hours\"\n",
    )?;
    let mut config = hub::Config::try_from(hub::RawConfig {
        database_url: url.clone(),
        ownership_list: Some(ownership.into()),
        ..hub::RawConfig::default()
    })?;
    config.limits.max_batch_events = config.limits.max_batch_events.max(args.uplink_batch);
    let store = hub::Store::connect(&url).await?;
    let token = store.add_gateway("gw-bench", "bench", true).await?.token;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hub_url = format!("http://{}/", listener.local_addr()?);
    let stop_hub = CancellationToken::new();
    let server = tokio::spawn(hub::run(config, store, listener, stop_hub.clone()));

    let rss_before = procfs::rss_mb(std::process::id())?;
    let stats = Arc::new(GatewayStats::default());
    let stop = CancellationToken::new();
    let uplink = Uplink {
        outbox: outbox.clone(),
        hub_url: hub_url.parse()?,
        token: token.into(),
        gateway_id: "gw-bench".into(),
        batch_size: args.uplink_batch,
        stats: stats.clone(),
        wake: Arc::default(),
    };
    let start = Instant::now();
    let task = tokio::spawn(uplink.run(stop.clone()));
    let mut peak = rss_before;
    while outbox.pending().await? > 0 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        peak = peak.max(procfs::rss_mb(std::process::id())?);
    }
    let secs = start.elapsed().as_secs_f64();
    stop.cancel();
    task.await?;
    stop_hub.cancel();
    let _ = server.await;
    println!(
        "| drain to the hub (SQLite, loopback), {} per batch | {} | {secs:.2} | `uplink_drain_per_s = {:.0}` |",
        args.uplink_batch,
        args.backlog,
        args.backlog as f64 / secs
    );
    println!();
    println!(
        "Resident memory (gateway and hub in this one process): {rss_before:.0} MiB with the backlog waiting, {peak:.0} MiB at most while draining."
    );
    Ok(())
}
