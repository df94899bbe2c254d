//! Store and forward under fire: 50,000 events made at the edge (reports from simulated
//! patrol terminals) while the gateway is killed (SIGKILL) ten times, the hub five times and
//! the hub is down for a while; afterwards the hub holds every one of them exactly once.
//! On SQLite and on PostgreSQL. The link between gateway and hub broken while events flow:
//! cut mid-request, down, and answers lost after the hub stored a batch. And an outbox over
//! its size budget.

use std::path::Path;
use std::time::Duration;

use system_tests::link::{Link, LinkProxy};
use system_tests::{Process, fresh_postgres, wait_for};

use crate::patrol::{check_delivered, logs, run_sim_with, start_embedded_on};

const TERMINALS: usize = 10;
const REPORTS_EACH: u64 = 5_000;

/// `patrol-sim` with every terminal of `creds` sending `reports` reports without photos, one
/// each `every` seconds, and waiting long for their acknowledgements.
fn flood(
    dir: &Path,
    mqtt_port: u16,
    creds: &Path,
    reports: u64,
    every: &str,
) -> anyhow::Result<Process> {
    let (creds, reports) = (creds.display().to_string(), reports.to_string());
    run_sim_with(
        dir,
        mqtt_port,
        &[
            "--credentials",
            &creds,
            "--report-every",
            every,
            "--photo-kb",
            "0",
            "--reports",
            &reports,
            "--ack-wait",
            "300",
        ],
    )
}

async fn fifty_thousand_events_through_kills(database_url: String) {
    let dir = tempfile::tempdir().unwrap();
    let (mut hub, mut gateway, creds, mqtt_port) =
        start_embedded_on(dir.path(), database_url, TERMINALS)
            .await
            .unwrap_or_else(|e| panic!("{e:#}\n{}", logs(dir.path())));
    let result = async {
        let mut sim = flood(dir.path(), mqtt_port, &creds, REPORTS_EACH, "0.002")?;
        // Every second the gateway dies; every other second the hub does, and once it
        // stays down for three seconds.
        for round in 0..10 {
            tokio::time::sleep(Duration::from_millis(700)).await;
            gateway.process.take(); // SIGKILL
            if round % 2 == 1 {
                hub.kill(); // SIGKILL
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            gateway.start()?;
            if round == 3 {
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
            if round % 2 == 1 {
                hub.start().await?;
            }
        }
        check_delivered(
            dir.path(),
            &mut sim,
            &hub,
            &gateway,
            TERMINALS as u64 * REPORTS_EACH,
        )
        .await
    }
    .await;
    if let Err(e) = result {
        panic!("{e:#}\n{}", logs(dir.path()));
    }
}

#[tokio::test]
async fn fifty_thousand_events_arrive_once_through_kills_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    fifty_thousand_events_through_kills(format!("sqlite:{}", dir.path().join("hub.db").display()))
        .await;
}

#[tokio::test]
async fn fifty_thousand_events_arrive_once_through_kills_on_postgres() {
    if let Some(url) = fresh_postgres("store_forward").await {
        fifty_thousand_events_through_kills(url).await;
    }
}

/// A small outbox budget while the hub is down: evidence is evicted first, the gateway keeps
/// running, and once the hub is back it receives the gateway's `storage_pressure` event.
// The proxy's tasks run on the test's runtime: worker threads keep them going whatever the
// test's own future is doing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_link_loses_and_duplicates_nothing() {
    const REPORTS: u64 = 1_000;
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite:{}", dir.path().join("hub.db").display());
    let (hub, mut gateway, creds, mqtt_port) = start_embedded_on(dir.path(), database, TERMINALS)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", logs(dir.path())));
    let result = async {
        let hub_addr = hub.url.trim_start_matches("http://").parse()?;
        let proxy = LinkProxy::start(hub_addr).await?;
        let hub_url = hub.url.clone();
        gateway.reconfigure(|text| {
            text.replace(
                &format!("url = \"{hub_url}\""),
                &format!("url = \"{}\"", proxy.url),
            )
        })?;
        let mut sim = flood(dir.path(), mqtt_port, &creds, REPORTS, "0.005")?;
        // While the reports flow, every half second: answers lost, the link down (open
        // connections cut where they stand), the link up.
        for round in 0..15 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            proxy.set([Link::LoseAnswers, Link::Down, Link::Up][round % 3]);
        }
        proxy.set(Link::Up);
        check_delivered(
            dir.path(),
            &mut sim,
            &hub,
            &gateway,
            TERMINALS as u64 * REPORTS,
        )
        .await?;
        let status = gateway.status(&reqwest::Client::new()).await?;
        let retries = status["uplink"]["retries"].as_u64().unwrap_or(0);
        anyhow::ensure!(retries > 0, "the link never failed a delivery: {status}");
        println!("{retries} deliveries failed on the broken link and were retried");
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = result {
        panic!("{e:#}\n{}", logs(dir.path()));
    }
}

#[tokio::test]
async fn a_full_outbox_evicts_by_policy_and_says_so() {
    const REPORTS: u64 = 100;
    let dir = tempfile::tempdir().unwrap();
    let (mut hub, mut gateway, creds, mqtt_port) = start_embedded_on(
        dir.path(),
        format!("sqlite:{}", dir.path().join("hub.db").display()),
        1,
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", logs(dir.path())));
    let client = reqwest::Client::new();
    let result = async {
        hub.kill();
        gateway.reconfigure(|text| {
            text.replace(
                "data_dir = \"gateway-data\"",
                "data_dir = \"gateway-data\"\noutbox_max_mib = 1\n[gateway.location]\nlat = 30.27\nlon = 120.15",
            )
        })?;
        let creds = creds.display().to_string();
        let reports = REPORTS.to_string();
        let mut sim = run_sim_with(
            dir.path(),
            mqtt_port,
            &["--credentials", &creds, "--report-every", "0.02", "--photo-kb", "40", "--reports", &reports],
        )?;
        wait_for("the simulator to finish", Duration::from_secs(120), || {
            let running = sim.is_running();
            async move { Ok((!running).then_some(())) }
        })
        .await?;
        // Two or three MiB of photos against a 1 MiB budget; the guard looks every 10 s.
        let evicted = wait_for("evidence evicted", Duration::from_secs(30), || async {
            let s = gateway.status(&client).await?;
            Ok((s["evicted_blobs"].as_u64() > Some(0)).then_some(s))
        })
        .await?;
        anyhow::ensure!(evicted["evicted_events"] == 0, "evidence goes before events: {evicted}");
        hub.start().await?;
        let events = wait_for("the storage_pressure event at the hub", Duration::from_secs(60), || async {
            let page = hub.get("/api/v1/events?limit=500").await?;
            let found = page["items"]
                .as_array()
                .is_some_and(|items| items.iter().any(|e| e["rule"] == "storage_pressure"));
            Ok(found.then_some(page))
        })
        .await?;
        anyhow::ensure!(
            gateway.process.as_mut().is_some_and(|p| p.is_running()),
            "the gateway must keep running"
        );
        let status = gateway.status(&client).await?;
        let reports_at_hub = events["items"]
            .as_array()
            .map_or(0, |items| items.iter().filter(|e| e["rule"] == "patrol_report").count());
        // Evidence went first: the budget holds every report's text.
        wait_for("the outbox to drain", Duration::from_secs(60), || async {
            let s = gateway.status(&client).await?;
            Ok((s["outbox_pending"] == 0).then_some(()))
        })
        .await?;
        let page = hub.get("/api/v1/events?limit=500").await?;
        let reports = page["items"]
            .as_array()
            .map_or(0, |items| items.iter().filter(|e| e["rule"] == "patrol_report").count());
        anyhow::ensure!(
            reports as u64 == REPORTS,
            "{reports} of {REPORTS} reports at the hub (first look {reports_at_hub}); {status}"
        );
        Ok::<_, anyhow::Error>(())
    }
    .await;
    if let Err(e) = result {
        panic!("{e:#}\n{}", logs(dir.path()));
    }
}
