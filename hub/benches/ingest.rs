//! Ingest throughput: events per second through `POST /api/v1/events` with case creation and
//! routing, the hub running in this process on a loopback port, several clients posting
//! batches concurrently. Prints figures comparable across machines (docs/benchmarks.md).
//!
//! `cargo bench -p hub --bench ingest -- [--database URL] [--events N] [--batch N] [--clients N]`
//! Without `--database`, a fresh SQLite file; `postgres://…` for PostgreSQL (use an empty
//! database: the bench adds its events to it).

use std::time::{Duration, Instant};

use clap::Parser;
use hub::store::Role;
use hub::{Config, RawConfig, Store};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Args {
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
    #[arg(long)]
    database: Option<String>,
    #[arg(long, default_value_t = 50_000)]
    events: usize,
    #[arg(long, default_value_t = 100)]
    batch: usize,
    #[arg(long, default_value_t = 4)]
    clients: usize,
}

/// Event `i` of batch `i / batch`: mostly crowds (routed), every tenth an unowned category
/// (joint review). Each batch comes from one of 8 townships, as a gateway's batch would, with
/// two cameras each; townships are about 2 km apart.
fn event(i: usize, batch: usize) -> serde_json::Value {
    let category = if i.is_multiple_of(10) {
        "event:0501"
    } else {
        "event:0407"
    };
    let camera = (i / batch) % 8 * 2 + i % 2;
    let mut e = system_tests::fixtures::event(category);
    e["source"]["camera_id"] = format!("cam-{camera}").into();
    e["location"]["lat"] = (30.27 + 0.02 * camera as f64).into();
    e
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir()?;
    let url = args
        .database
        .clone()
        .unwrap_or_else(|| format!("sqlite:{}", dir.path().join("bench.db").display()));
    let ownership = dir.path().join("ownership.toml");
    std::fs::write(
        &ownership,
        "[[item]]\ncategory = \"event:0407\"\ndepartment = \"police\"\ntime_limit = \"2 working_hours\"\n",
    )?;
    let config = Config::try_from(RawConfig {
        database_url: url.clone(),
        ownership_list: Some(ownership.into()),
        ..RawConfig::default()
    })?;
    let store = Store::connect(&url).await?;
    let token = store.add_gateway("gw-test", "bench", true).await?.token;
    let operator = store
        .add_user(
            &format!("bench-{}", uuid::Uuid::now_v7()),
            Role::Operator,
            None,
        )
        .await?
        .token;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(hub::run(config, store, listener, shutdown.clone()));

    let batches: Vec<serde_json::Value> = (0..args.events)
        .collect::<Vec<_>>()
        .chunks(args.batch)
        .map(|c| system_tests::fixtures::batch(c.iter().map(|&i| event(i, args.batch)).collect()))
        .collect();
    let client = reqwest::Client::new();
    let queue = std::sync::Arc::new(std::sync::Mutex::new(batches));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.clients {
        let (queue, client, base, token) =
            (queue.clone(), client.clone(), base.clone(), token.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let Some(body) = queue.lock().unwrap().pop() else {
                    break;
                };
                let t = Instant::now();
                let resp = client
                    .post(format!("{base}/api/v1/events"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies: Vec<Duration> = Vec::new();
    for w in workers {
        latencies.extend(w.await?);
    }
    let elapsed = start.elapsed();
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)].as_secs_f64()
            * 1e3
    };

    let cases: serde_json::Value = client
        .get(format!("{base}/api/v1/cases?limit=1"))
        .bearer_auth(&operator)
        .send()
        .await?
        .json()
        .await?;
    // Labelled as docs/benchmarks.md records them.
    let backend = if url.starts_with("sqlite:") {
        "sqlite"
    } else {
        "pg"
    };
    println!(
        "ingest bench: {backend}, {} events in batches of {}, {} clients",
        args.events, args.batch, args.clients
    );
    println!(
        "hub_ingest_{backend}_per_s = {:.0}",
        args.events as f64 / elapsed.as_secs_f64()
    );
    println!(
        "batch latency ms: p50 {:.1}, p99 {:.1}",
        pct(0.5),
        pct(0.99)
    );
    println!("cases stored: {}", cases["total"]);
    shutdown.cancel();
    server.await??;
    Ok(())
}
