//! Patrol intake throughput and the cost of many connected terminals (see docs/benchmarks.md).
//!
//! 1. Reports into the outbox through the embedded broker's front door: publishers with a
//!    window of QoS 1 messages in flight each, timed until the last PUBACK (each PUBACK
//!    means "stored"); then the outbox is counted, so zero loss is checked, not assumed.
//!    Without photos and with one ~200 KB JPEG per report.
//! 2. `--terminals N`: the real `edge-gateway` binary with N simulated terminals connected
//!    (`patrol-sim`, a track every 10 s each), its resident memory and CPU sampled.
//!
//! `cargo bench -p edge-gateway --bench patrol -- [--reports 40000] [--photo-reports 1000]
//! [--terminals 2000]` (from the repository root, with `source .cache/env.sh`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use clap::Parser;
use edge_gateway::outbox::Outbox;
use edge_gateway::patrol::terminals::{TerminalsFile, new_terminal};
use edge_gateway::patrol::{BrokerChoice, Credentials, Limits, Patrol, PatrolConfig};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use system_tests::procfs;

#[derive(Parser)]
struct Args {
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
    /// Reports without photos.
    #[arg(long, default_value_t = 40_000)]
    reports: usize,
    /// Reports with a ~200 KB photo each.
    #[arg(long, default_value_t = 1_000)]
    photo_reports: usize,
    /// Concurrent publishing terminals.
    #[arg(long, default_value_t = 8)]
    publishers: usize,
    /// QoS 1 messages each publisher keeps in flight.
    #[arg(long, default_value_t = 100)]
    window: u16,
    /// Simulated terminals for the connection test (0: skip it).
    #[arg(long, default_value_t = 2000)]
    terminals: usize,
    /// Seconds to sample the gateway with the terminals connected.
    #[arg(long, default_value_t = 20)]
    sample_s: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Runtime::new()?;
    println!(
        "| reports (all found in the outbox) | photo | publishers × window | seconds | reports/s |"
    );
    println!("| --- | --- | --- | --- | --- |");
    if args.reports > 0 {
        let (secs, _) = rt.block_on(throughput(&args, args.reports, 0))?;
        let rate = args.reports as f64 / secs;
        println!(
            "| {} | none | {} × {} | {secs:.2} | `patrol_reports_per_s = {rate:.0}` |",
            args.reports, args.publishers, args.window
        );
    }
    if args.photo_reports > 0 {
        let (secs, bytes) = rt.block_on(throughput(&args, args.photo_reports, 200))?;
        let rate = args.photo_reports as f64 / secs;
        println!(
            "| {} | {} KB JPEG | {} × {} | {secs:.2} | `patrol_reports_with_photo_per_s = {rate:.0}` |",
            args.photo_reports,
            bytes / 1000,
            args.publishers,
            args.window
        );
    }
    drop(rt);
    if args.terminals > 0 {
        connected_terminals(&args)?;
    }
    Ok(())
}

/// A noisy JPEG of about `kb` KiB, base64.
fn photo(kb: usize) -> String {
    // About 0.3 byte of JPEG a pixel for this noise at q85.
    let side = ((kb * 1024 * 16 / 5) as f64).sqrt() as u32;
    let mut state = 1u32;
    let img = image::RgbImage::from_fn(side, side * 3 / 4, |_, _| {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let g = 100 + (state >> 26) as u8;
        image::Rgb([g, g, g])
    });
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
        .encode_image(&img)
        .expect("encoding to memory");
    base64::engine::general_purpose::STANDARD.encode(jpeg)
}

/// Publishes `n` reports (with a `photo_kb` photo each, 0 = none) and returns the seconds
/// until the last PUBACK and the photo's size; fails unless all `n` are in the outbox.
async fn throughput(args: &Args, n: usize, photo_kb: usize) -> anyhow::Result<(f64, usize)> {
    let dir = tempfile::tempdir()?;
    let outbox = Outbox::open(&dir.path().join("outbox.db")).await?;
    let ids: Vec<String> = (0..args.publishers).map(|i| format!("bench-{i}")).collect();
    let (secrets, entries): (Vec<_>, Vec<_>) = ids
        .iter()
        .map(|id| new_terminal(id, None).expect("valid ids"))
        .unzip();
    let max_photo_bytes = 1024 * 1024;
    let config = PatrolConfig {
        broker: BrokerChoice::Embedded {
            listen: "127.0.0.1:0".parse()?,
            credentials: Credentials::from_entries(&entries).map_err(anyhow::Error::msg)?,
            max_terminals: 100,
        },
        limits: Limits {
            max_photos: 1,
            max_photo_bytes,
            max_message_bytes: Limits::message_bytes_for(1, max_photo_bytes),
            sos_category: "event:0499".parse()?,
        },
    };
    let patrol = Patrol::start(
        config,
        "gw-bench",
        outbox.clone(),
        Arc::default(),
        Arc::default(),
    )
    .await?;
    let port = patrol.listening.expect("embedded").port();
    let photos = if photo_kb > 0 {
        vec![photo(photo_kb)]
    } else {
        vec![]
    };

    let per = n / args.publishers;
    let mut tasks = Vec::new();
    let start = Instant::now();
    for (i, (id, secret)) in ids.iter().zip(&secrets).enumerate() {
        let count = if i + 1 == args.publishers {
            n - per * i
        } else {
            per
        };
        // Payloads made before the clock matters would be fairer, but they are cheap next
        // to the intake, and making them here keeps memory flat for large runs.
        let (id, secret, photos, window) =
            (id.clone(), secret.clone(), photos.clone(), args.window);
        tasks.push(tokio::spawn(async move {
            let mut options = MqttOptions::new(&id, "127.0.0.1", port);
            options
                .set_credentials(&id, &secret)
                .set_clean_session(false)
                .set_inflight(window)
                .set_max_packet_size(4 << 20, 4 << 20);
            let (client, mut eventloop) = AsyncClient::new(options, 1000);
            let producer = {
                let client = client.clone();
                let topic = format!("patrol/{id}/report");
                tokio::spawn(async move {
                    for k in 0..count {
                        let body = serde_json::json!({
                            "v": 1, "msg_id": format!("r-{k}"), "category": "component:0114",
                            "description": "井盖破损 broken manhole cover", "lat": 30.27, "lon": 120.15,
                            "occurred_at": chrono::Utc::now(), "photos": photos,
                        });
                        client
                            .publish(&topic, QoS::AtLeastOnce, false, serde_json::to_vec(&body).unwrap())
                            .await
                            .unwrap();
                    }
                })
            };
            let mut acked = 0;
            while acked < count {
                if let Event::Incoming(Packet::PubAck(_)) = eventloop.poll().await? {
                    acked += 1;
                }
            }
            producer.await?;
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    let stored = outbox.pending().await?;
    anyhow::ensure!(stored == n as i64, "{stored} of {n} reports in the outbox");
    patrol.stop().await;
    let photo_bytes = photos.first().map_or(0, |p| p.len() / 4 * 3);
    Ok((secs, photo_bytes))
}

/// The gateway binary with `args.terminals` simulated terminals connected.
fn connected_terminals(args: &Args) -> anyhow::Result<()> {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir()?;
    let mut file = TerminalsFile::default();
    let mut creds = String::new();
    for i in 1..=args.terminals {
        let id = format!("sim-{i:05}");
        let (secret, entry) = new_terminal(&id, None).map_err(anyhow::Error::msg)?;
        creds.push_str(&format!("{id},{secret}\n"));
        file.terminals.push(entry);
    }
    std::fs::write(dir.path().join("terminals.toml"), toml::to_string(&file)?)?;
    std::fs::write(dir.path().join("credentials.csv"), creds)?;
    let free_port = || -> anyhow::Result<u16> {
        Ok(std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port())
    };
    let (port, api_port) = (free_port()?, free_port()?);
    let manifest =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/yolox-nano.toml");
    std::fs::write(
        dir.path().join("gateway.toml"),
        format!(
            "[gateway]\nid = \"gw-bench\"\ndata_dir = \"data\"\n[hub]\nurl = \"http://127.0.0.1:9\"\ntoken = \"unused\"\n\
             [api]\nlisten = \"127.0.0.1:{api_port}\"\n[model]\nmanifest = \"{}\"\n\
             [patrol]\nlisten = \"127.0.0.1:{port}\"\nterminals_file = \"terminals.toml\"\nmax_terminals = {}\n",
            manifest.display(),
            args.terminals + 10
        ),
    )?;
    let log = dir.path().join("gateway.log");
    let mut gateway = Command::new(env!("CARGO_BIN_EXE_edge-gateway"));
    gateway
        .arg("--config")
        .arg(dir.path().join("gateway.toml"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?);
    if std::env::var_os("MODEL_CACHE").is_none() {
        gateway.env(
            "MODEL_CACHE",
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/models"),
        );
    }
    let mut gateway = gateway.spawn()?;
    let pid = gateway.id();
    std::thread::sleep(Duration::from_secs(3));
    if gateway.try_wait()?.is_some() {
        anyhow::bail!("the gateway exited:\n{}", std::fs::read_to_string(&log)?);
    }
    let idle_mb = procfs::rss_mb(pid)?;
    let mut sim = Command::new(env!("CARGO_BIN_EXE_patrol-sim"))
        .arg("--broker")
        .arg(format!("mqtt://127.0.0.1:{port}"))
        .arg("--credentials")
        .arg(dir.path().join("credentials.csv"))
        .args([
            "--report-every",
            "60",
            "--location-every",
            "10",
            "--photo-kb",
            "0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    // Let every terminal connect and settle.
    std::thread::sleep(Duration::from_secs(15));
    let (cpu0, t0) = (procfs::cpu_s(pid)?, Instant::now());
    std::thread::sleep(Duration::from_secs(args.sample_s));
    let cpu_percent = (procfs::cpu_s(pid)? - cpu0) / t0.elapsed().as_secs_f64() * 100.0;
    let busy_mb = procfs::rss_mb(pid)?;
    let online = terminals_online(api_port)?;
    let _ = sim.kill();
    let _ = gateway.kill();
    let _ = (sim.wait(), gateway.wait());
    println!();
    println!(
        "| terminals (online at the gateway) | gateway RSS before | RSS with terminals | per terminal | gateway CPU |"
    );
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| {} ({online}) | {:.1} MiB | {:.1} MiB | {:.1} KiB | {cpu_percent:.1}% of one core |",
        args.terminals,
        idle_mb,
        busy_mb,
        (busy_mb - idle_mb).max(0.0) * 1024.0 / args.terminals as f64,
    );
    Ok(())
}

/// `edge_patrol_terminals_online` from the gateway's metrics (a bare HTTP/1.0 GET).
fn terminals_online(api_port: u16) -> anyhow::Result<u64> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", api_port))?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    text.lines()
        .find_map(|l| l.strip_prefix("edge_patrol_terminals_online "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no edge_patrol_terminals_online in the metrics"))
}
