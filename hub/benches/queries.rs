//! Reading a large case store: the filtered, paginated case list and a month's indicators
//! through the HTTP API, with the hub in this process on a loopback port and the database
//! filled with generated cases (a year of them over 20 departments, 30 categories, 8
//! townships and 9 states). Prints figures comparable across machines (docs/benchmarks.md).
//!
//! `cargo bench -p hub --bench queries -- [--database URL] [--cases N] [--rounds N]`
//! Without `--database`, a fresh SQLite file; `postgres://…` for PostgreSQL (an empty
//! database: the bench fills it).

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
    #[arg(long, default_value_t = 1_000_000)]
    cases: u64,
    /// Times each list query runs (the indicators run a tenth as often).
    #[arg(long, default_value_t = 50)]
    rounds: usize,
}

/// The first generated case opens at this time; one opens every 31.5 s after it, a year in
/// all for a million cases.
const EPOCH_MS: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const STEP_MS: i64 = 31_536;

/// The generated rows, as one `INSERT … SELECT` over the numbers `g` in `1..=n` (the
/// numbers come from `generate_series` or a recursive CTE). Pseudo-random columns come from
/// multiplying `g` by primes.
fn fill_sql(postgres: bool, n: u64) -> String {
    let numbers = if postgres {
        format!("SELECT CAST(g AS BIGINT) AS g FROM generate_series(1, {n}) AS g")
    } else {
        format!(
            "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {n}) SELECT g FROM s"
        )
    };
    let text = |e: &str| format!("CAST({e} AS TEXT)");
    let pad = |e: &str, w: usize| {
        if postgres {
            format!("LPAD(CAST({e} AS TEXT), {w}, '0')")
        } else {
            format!("SUBSTR('000000' || ({e}), -{w}, {w})")
        }
    };
    let state = "CASE (g * 7) % 9 WHEN 0 THEN 'reported' WHEN 1 THEN 'dispatched' WHEN 2 THEN 'handling' \
                 WHEN 3 THEN 'handled' WHEN 4 THEN 'verifying' WHEN 5 THEN 'void' ELSE 'closed' END";
    let opened = format!("{EPOCH_MS} + g * {STEP_MS}");
    format!(
        "INSERT INTO cases (id, title, category, state, queue, severity, department, time_limit, due_at, \
         lat, lon, area_code, grid, opened_at, updated_at, last_event_at, rework_count, warn_at, \
         dispatched_at, closed_at, extensions_approved, satisfaction) \
         SELECT 'case-' || {id}, 'generated case ' || {id}, \
         CASE WHEN g % 2 = 0 THEN 'event:0' || {ev} ELSE 'component:01' || {comp} END, \
         st, CASE WHEN st = 'reported' THEN 'joint_review' ELSE 'department' END, \
         CASE g % 3 WHEN 0 THEN 'high' WHEN 1 THEN 'medium' ELSE 'low' END, \
         CASE WHEN st = 'reported' THEN NULL ELSE 'dept-' || {dept} END, '2 working_days', \
         {opened} + 172800000, 30.2 + (g % 97) * 0.001, 120.1 + (g % 89) * 0.001, \
         '330106' || {town} || {village}, 'grid-' || {grid}, {opened}, {opened}, {opened}, \
         CASE WHEN g % 23 = 0 THEN 1 ELSE 0 END, {opened} + 129600000, \
         CASE WHEN st = 'reported' THEN NULL ELSE {opened} + 600000 END, \
         CASE WHEN st = 'closed' THEN {opened} + (g % 5) * 86400000 ELSE NULL END, \
         CASE WHEN g % 31 = 0 THEN 1 ELSE 0 END, \
         CASE WHEN st = 'closed' AND g % 4 = 0 THEN 1 + g % 5 ELSE NULL END \
         FROM (SELECT g, {state} AS st FROM ({numbers}) AS numbers) AS rows",
        id = text("g"),
        ev = pad("100 + (g * 13) % 15", 3),
        comp = pad("(g * 11) % 15 + 1", 2),
        dept = text("(g * 17) % 20"),
        town = pad("(g * 19) % 8 + 1", 3),
        village = pad("(g * 29) % 12 + 1", 3),
        grid = text("(g * 37) % 400"),
    )
}

struct Timing {
    name: &'static str,
    samples: Vec<Duration>,
    total: i64,
}

impl Timing {
    fn pct(&self, p: f64) -> f64 {
        let mut s = self.samples.clone();
        s.sort();
        s[((s.len() as f64 * p) as usize).min(s.len() - 1)].as_secs_f64() * 1e3
    }
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
    let postgres = !url.starts_with("sqlite:");
    let store = Store::connect(&url).await?;
    let fill = Instant::now();
    {
        // Straight to the database: the hub's own API has no bulk load.
        let pool = sqlx::AnyPool::connect(&url).await?;
        // Only numbers from the command line go into this text.
        sqlx::query(sqlx::AssertSqlSafe(fill_sql(postgres, args.cases)))
            .execute(&pool)
            .await?;
        // What autovacuum would have done to a table this old: statistics for the planner
        // and, on PostgreSQL, the visibility map that lets counts read indexes alone; on
        // SQLite, the fill moved from the write-ahead log into the database file (else the
        // first write measured pays for it).
        let settle: &[&str] = if postgres {
            &["VACUUM ANALYZE cases"]
        } else {
            &["ANALYZE", "PRAGMA wal_checkpoint(TRUNCATE)"]
        };
        for statement in settle {
            sqlx::query(*statement).execute(&pool).await?;
        }
        pool.close().await;
    }
    eprintln!(
        "filled {} cases in {:.1} s",
        args.cases,
        fill.elapsed().as_secs_f64()
    );
    let operator = store
        .add_user(
            &format!("bench-op-{}", uuid::Uuid::now_v7()),
            Role::Operator,
            None,
        )
        .await?
        .token;
    let department = store
        .add_user(
            &format!("bench-dept-{}", uuid::Uuid::now_v7()),
            Role::Department,
            Some("dept-7"),
        )
        .await?
        .token;
    let config = Config::try_from(RawConfig {
        database_url: url.clone(),
        ..RawConfig::default()
    })?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(hub::run(config, store, listener, shutdown.clone()));
    let client = reqwest::Client::new();

    let lists: [(&str, &str, &String); 8] = [
        ("newest, first page", "/api/v1/cases?limit=20", &operator),
        (
            "by state",
            "/api/v1/cases?state=dispatched&limit=20",
            &operator,
        ),
        (
            "by department",
            "/api/v1/cases?department=dept-3&limit=20",
            &operator,
        ),
        (
            "by category and township",
            "/api/v1/cases?category=component:0107&area=330106004&limit=20",
            &operator,
        ),
        (
            "overdue, nearest deadline first",
            "/api/v1/cases?overdue=true&sort=due&limit=20",
            &operator,
        ),
        (
            "high risk first",
            "/api/v1/cases?sort=risk&state=handling&limit=20",
            &operator,
        ),
        ("page 50", "/api/v1/cases?limit=20&offset=1000", &operator),
        (
            "a department's own queue",
            "/api/v1/cases?limit=20",
            &department,
        ),
    ];
    let mut timings = Vec::new();
    for (name, path, token) in lists {
        let mut t = Timing {
            name,
            samples: Vec::new(),
            total: 0,
        };
        for _ in 0..args.rounds {
            let start = Instant::now();
            let resp = client
                .get(format!("{base}{path}"))
                .bearer_auth(token)
                .send()
                .await?;
            anyhow::ensure!(resp.status().is_success(), "{path}: {}", resp.status());
            let body: serde_json::Value = resp.json().await?;
            t.samples.push(start.elapsed());
            t.total = body["total"].as_i64().unwrap_or(-1);
        }
        timings.push(t);
    }
    // A month of indicators, in the middle of the generated year. The first request takes
    // the month's daily tallies; the others read them back.
    let month_of = |name: &'static str, token: &String| {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        async move {
            let mut t = Timing {
                name,
                samples: Vec::new(),
                total: 0,
            };
            for _ in 0..(args.rounds / 10).max(3) {
                let start = Instant::now();
                let resp = client
                    .get(format!("{base}/api/v1/stats?from=2026-06-01&to=2026-06-30"))
                    .bearer_auth(&token)
                    .send()
                    .await?;
                anyhow::ensure!(resp.status().is_success(), "stats: {}", resp.status());
                let body: serde_json::Value = resp.json().await?;
                t.samples.push(start.elapsed());
                t.total = body["totals"]["cases"].as_i64().unwrap_or(-1);
            }
            anyhow::Ok(t)
        }
    };
    let month = month_of("indicators for a month", &operator).await?;
    // A department's numbers are counted afresh each time.
    let department_month = month_of("a department's indicators for a month", &department).await?;

    let backend = if postgres { "postgres" } else { "sqlite" };
    println!(
        "query bench: {backend}, {} cases, {} rounds per list query",
        args.cases, args.rounds
    );
    println!("| query | matching | p50 ms | p99 ms |");
    println!("| --- | --- | --- | --- |");
    for t in timings.iter().chain([&month, &department_month]) {
        println!(
            "| {} | {} | {:.1} | {:.1} |",
            t.name,
            t.total,
            t.pct(0.5),
            t.pct(0.99)
        );
    }
    let all: Vec<Duration> = timings.iter().flat_map(|t| t.samples.clone()).collect();
    let overall = Timing {
        name: "all lists",
        samples: all,
        total: 0,
    };
    println!("case_list_p99_ms = {:.1}", overall.pct(0.99));
    println!(
        "first indicators request (the month's daily tallies taken) ms = {:.1}",
        month.samples[0].as_secs_f64() * 1e3
    );
    println!("indicators_month_ms = {:.1}", month.pct(0.5));
    shutdown.cancel();
    server.await??;
    Ok(())
}
