//! Store and forward under fire: 50,000 events made at the edge (reports from simulated
//! patrol terminals) while the gateway is killed (SIGKILL) ten times, the hub five times and
//! the hub is down for a while; afterwards the hub holds every one of them exactly once.
//! On SQLite and on PostgreSQL. And a link to the hub that dies mid-request.

use std::time::Duration;

use system_tests::{CuttingProxy, fresh_postgres};

use crate::patrol::{check_delivered, logs, run_sim_with, start_embedded_on};

const TERMINALS: usize = 10;
const REPORTS_EACH: u64 = 5_000;

async fn fifty_thousand_events_through_kills(database_url: String) {
    let dir = tempfile::tempdir().unwrap();
    let (mut hub, mut gateway, creds, mqtt_port) =
        start_embedded_on(dir.path(), database_url, TERMINALS)
            .await
            .unwrap_or_else(|e| panic!("{e:#}\n{}", logs(dir.path())));
    let result = async {
        let creds = creds.display().to_string();
        let reports = REPORTS_EACH.to_string();
        let mut sim = run_sim_with(
            dir.path(),
            mqtt_port,
            &[
                "--credentials",
                &creds,
                "--report-every",
                "0.002",
                "--photo-kb",
                "0",
                "--reports",
                &reports,
                "--ack-wait",
                "300",
            ],
        )?;
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

/// The link to the hub dies in the middle of a third of the hub's answers (after the hub
/// has stored the batch): the gateway sends those batches again, and the hub ends with
/// every event once.
#[tokio::test]
async fn a_link_that_dies_mid_request_loses_and_duplicates_nothing() {
    const EACH: u64 = 200;
    let dir = tempfile::tempdir().unwrap();
    let (hub, mut gateway, creds, mqtt_port) = start_embedded_on(
        dir.path(),
        format!("sqlite:{}", dir.path().join("hub.db").display()),
        4,
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", logs(dir.path())));
    let result = async {
        let target = hub.url.trim_start_matches("http://").parse()?;
        let proxy = CuttingProxy::start(target, 0.3).await?;
        gateway.use_hub_url(&hub.url, &proxy.url)?;
        let creds = creds.display().to_string();
        let each = EACH.to_string();
        let mut sim = run_sim_with(
            dir.path(),
            mqtt_port,
            &[
                "--credentials",
                &creds,
                "--report-every",
                "0.01",
                "--photo-kb",
                "2",
                "--reports",
                &each,
            ],
        )?;
        check_delivered(dir.path(), &mut sim, &hub, &gateway, 4 * EACH).await?;
        let cuts = proxy.cuts.load(std::sync::atomic::Ordering::Relaxed);
        anyhow::ensure!(cuts > 0, "the proxy never cut a connection");
        Ok::<_, anyhow::Error>(())
    }
    .await;
    if let Err(e) = result {
        panic!("{e:#}\n{}", logs(dir.path()));
    }
}
