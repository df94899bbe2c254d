//! Ingest throughput: events per second through `POST /api/v1/events` with case creation and
//! routing, the hub running in this process on a loopback port, several clients posting
//! batches concurrently. Prints figures comparable across machines (docs/benchmarks.md).
//!
//! `cargo bench -p hub --bench ingest -- [--database URL] [--events N] [--warmup N] [--batch N] [--clients N]`
//! Without `--database`, a fresh SQLite file; `postgres://…` for PostgreSQL (use an empty
//! database: the bench adds its events to it). The clock runs after a warm-up (by default
//! 20,000 events, then `ANALYZE` on PostgreSQL): the figure is the hub's steady state, not
//! its first minute on empty tables (`--warmup 0` for that). Besides events per second it
//! prints the CPU time per event of the process and of PostgreSQL, steadier than the wall
//! clock on a shared machine.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use clap::Parser;
use hub::store::Role;
use hub::{Config, RawConfig, Store};
use system_tests::procfs;
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
    /// Events posted before the measurement (with PostgreSQL, followed by `ANALYZE`).
    #[arg(long, default_value_t = 20_000)]
    warmup: usize,
    #[arg(long, default_value_t = 100)]
    batch: usize,
    #[arg(long, default_value_t = 4)]
    clients: usize,
}

/// Event `i` of batch `i / batch`: mostly crowds (routed), every tenth an unowned category
/// (joint review). Each batch comes from one of 8 townships, as a gateway's batch would, with
/// two cameras each; townships are about 2 km apart. The events occur a millisecond apart
/// from `start` on, so each batch moves its cases' latest event on, as live traffic does.
fn event(i: usize, batch: usize, start: chrono::DateTime<chrono::Utc>) -> serde_json::Value {
    let category = if i.is_multiple_of(10) {
        "event:0501"
    } else {
        "event:0407"
    };
    let camera = (i / batch) % 8 * 2 + i % 2;
    let mut e = system_tests::fixtures::event(category);
    e["source"]["camera_id"] = format!("cam-{camera}").into();
    e["location"]["lat"] = (30.27 + 0.02 * camera as f64).into();
    e["occurred_at"] = (start + chrono::Duration::milliseconds(i as i64))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        .into();
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
    let postgres = url.starts_with("postgres");
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

    let client = reqwest::Client::new();
    let post = Poster {
        client: client.clone(),
        url: format!("{base}/api/v1/events"),
        token,
        clients: args.clients,
    };
    // The warm-up's events come first in time; all are serialised before the clock starts
    // (the clients' cost is not the hub's).
    let first_event_at = chrono::Utc::now() - chrono::Duration::hours(1);
    let batches = |events: std::ops::Range<usize>| -> Vec<Vec<u8>> {
        events
            .collect::<Vec<_>>()
            .chunks(args.batch)
            .map(|c| {
                let events = c.iter().map(|&i| event(i, args.batch, first_event_at));
                serde_json::to_vec(&system_tests::fixtures::batch(events.collect()))
                    .expect("a batch serialises")
            })
            .collect()
    };
    let (warmup, measured) = (
        batches(0..args.warmup),
        batches(args.warmup..args.warmup + args.events),
    );
    post.all(warmup).await?;
    if postgres {
        // What autovacuum does within its minute's nap once the tables have grown: until
        // then the plans made on empty tables stand.
        let db = sqlx::AnyPool::connect(&url).await?;
        sqlx::query("ANALYZE").execute(&db).await?;
        db.close().await;
    }
    let cpu_at_start = Cpu::now(postgres)?;
    let start = Instant::now();
    let mut latencies = post.all(measured).await?;
    let elapsed = start.elapsed();
    let cpu = Cpu::now(postgres)?.since(&cpu_at_start);
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
    let backend = if postgres { "pg" } else { "sqlite" };
    println!(
        "ingest bench: {backend}, {} events in batches of {}, {} clients, after {} warm-up events",
        args.events, args.batch, args.clients, args.warmup
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
    // CPU time is steadier than the wall clock on a shared machine: compare changes by it.
    let per_1000 = |s: f64| s * 1e6 / args.events as f64;
    println!(
        "cpu ms per 1000 events: this process (hub and clients) {:.1}, postgres {:.1}, together {:.1}",
        per_1000(cpu.process_s),
        per_1000(cpu.postgres_s),
        per_1000(cpu.process_s + cpu.postgres_s)
    );
    println!("cases stored: {}", cases["total"]);
    shutdown.cancel();
    server.await??;
    Ok(())
}

/// Posts batches of events, `clients` at a time.
struct Poster {
    client: reqwest::Client,
    url: String,
    token: String,
    clients: usize,
}

impl Poster {
    /// Posts every one of `batches`, failing on any answer but success; returns each
    /// batch's latency.
    async fn all(&self, batches: Vec<Vec<u8>>) -> anyhow::Result<Vec<Duration>> {
        let queue = std::sync::Arc::new(std::sync::Mutex::new(VecDeque::from(batches)));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..self.clients {
            let (queue, client, url, token) = (
                queue.clone(),
                self.client.clone(),
                self.url.clone(),
                self.token.clone(),
            );
            workers.spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let Some(body) = queue.lock().unwrap().pop_front() else {
                        return anyhow::Ok(latencies);
                    };
                    let t = Instant::now();
                    let resp = client
                        .post(&url)
                        .bearer_auth(&token)
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(body)
                        .send()
                        .await?;
                    anyhow::ensure!(resp.status().is_success(), "{}", resp.text().await?);
                    latencies.push(t.elapsed());
                }
            });
        }
        let mut latencies = Vec::new();
        while let Some(done) = workers.join_next().await {
            latencies.extend(done??);
        }
        Ok(latencies)
    }
}

/// CPU seconds used so far by this process and, for a PostgreSQL database, by the
/// server's processes on this machine.
struct Cpu {
    process_s: f64,
    postgres_s: f64,
}

impl Cpu {
    fn now(postgres: bool) -> anyhow::Result<Self> {
        Ok(Self {
            process_s: procfs::cpu_s(std::process::id())?,
            postgres_s: if postgres {
                procfs::cpu_s_of_command("postgres")?
            } else {
                0.0
            },
        })
    }

    fn since(&self, start: &Self) -> Self {
        Self {
            process_s: self.process_s - start.process_s,
            postgres_s: self.postgres_s - start.postgres_s,
        }
    }
}
