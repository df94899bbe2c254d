//! Two hub processes on one PostgreSQL database, as replicas behind a load balancer: what
//! reaches either is handled once.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;
use system_tests::{Process, free_port};

use crate::support::{Backend, TestHub, batch, event, events_apart, spawn};

/// A `hub serve` process on `database_url`, its deadline sweep every second.
struct Replica {
    url: String,
    _process: Process,
}

impl Replica {
    async fn start(name: &'static str, database_url: &str, log: &Path) -> Self {
        let port = free_port();
        let process = Process::spawn(
            name,
            Command::new(env!("CARGO_BIN_EXE_hub"))
                .arg("serve")
                .env("HUB_DATABASE_URL", database_url)
                .env("HUB_LISTEN", format!("127.0.0.1:{port}"))
                .env("HUB_DEADLINES__SWEEP_INTERVAL_S", "1"),
            log,
        )
        .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::get(format!("{url}/healthz")).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "{name} did not start: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self {
            url,
            _process: process,
        }
    }

    /// Posts `events` as one batch; the ids the replica says it has stored.
    async fn post(&self, hub: &TestHub, events: &[Value]) -> Vec<String> {
        let resp = hub
            .client
            .post(format!("{}/api/v1/events", self.url))
            .bearer_auth(&hub.gateway_token)
            .json(&batch(events.to_vec()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let ack: Value = resp.json().await.unwrap();
        let mut ids: Vec<String> = ack["accepted"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    }
}

/// One count from the shared database.
async fn count(db: &sqlx::PgPool, sql: &str) -> i64 {
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_one(db)
        .await
        .unwrap()
        .get(0)
}

/// Events delivered twice (the same batch to both replicas at once, as a gateway retrying
/// through the balancer does) are stored once; events at one place sent to both at once
/// join one case; and once the cases are overdue, the replicas' deadline sweeps raise
/// each case's alarm once between them.
#[tokio::test]
async fn two_hub_processes_handle_each_event_and_alarm_once() {
    let Some(hub) = spawn(Backend::Postgres).await else {
        return;
    };
    // The test's own hub imports the fixture's reference data before it answers: the
    // replicas must start with it in the database.
    let ready = hub.client.get(format!("{}/healthz", hub.url)).send();
    assert!(ready.await.unwrap().status().is_success());
    let dir = tempfile::tempdir().unwrap();
    let a = Replica::start("hub a", &hub.database_url, &dir.path().join("a.log")).await;
    let b = Replica::start("hub b", &hub.database_url, &dir.path().join("b.log")).await;
    let db = sqlx::PgPool::connect(&hub.database_url).await.unwrap();

    // 1,000 events at 1,000 places, each batch to both replicas at once. (Enough cases
    // that the sweeps below overlap: each takes 200 at a time.)
    const PLACES: usize = 1000;
    let apart = events_apart("event:0407", PLACES);
    for chunk in apart.chunks(100) {
        let mut sent: Vec<String> = chunk
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect();
        sent.sort();
        let (by_a, by_b) = tokio::join!(a.post(&hub, chunk), b.post(&hub, chunk));
        assert_eq!(by_a, sent, "each replica acknowledges the whole batch");
        assert_eq!(by_b, sent);
    }
    let events = "SELECT count(*) FROM events";
    assert_eq!(count(&db, events).await, PLACES as i64);
    assert_eq!(
        count(&db, "SELECT count(*) FROM cases").await,
        PLACES as i64
    );

    // 2 × 50 new events at one place, half through each replica at once: one case.
    let here = |_| {
        let mut e = event("event:0407");
        e["location"]["lat"] = json!(10.0);
        e
    };
    let (one, other): (Vec<Value>, Vec<Value>) =
        ((0..50).map(here).collect(), (0..50).map(here).collect());
    let (by_a, by_b) = tokio::join!(a.post(&hub, &one), b.post(&hub, &other));
    assert_eq!((by_a.len(), by_b.len()), (50, 50));
    assert_eq!(count(&db, events).await, PLACES as i64 + 100);
    assert_eq!(
        count(&db, "SELECT count(*) FROM cases WHERE lat = 10.0").await,
        1,
        "events at one place join one case, whichever replica stores them"
    );

    // Every case was dispatched three hours ago and is an hour overdue: both replicas'
    // sweeps find them.
    let held = count(
        &db,
        "SELECT count(*) FROM cases WHERE state IN ('dispatched', 'handling')",
    )
    .await;
    assert_eq!(
        held,
        PLACES as i64 + 1,
        "the fixture routes every case to a department"
    );
    let now_ms = chrono::Utc::now().timestamp_millis();
    const HOUR: i64 = 3_600_000;
    sqlx::query(
        "UPDATE cases SET dispatched_at = $1, warn_at = $2, due_at = $3 \
         WHERE state IN ('dispatched', 'handling')",
    )
    .bind(now_ms - 3 * HOUR)
    .bind(now_ms - 2 * HOUR)
    .bind(now_ms - HOUR)
    .execute(&db)
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(
        &db,
        "SELECT count(*) FROM cases WHERE overdue_at IS NOT NULL",
    )
    .await
        < held
    {
        assert!(
            Instant::now() < deadline,
            "the sweeps did not find every overdue case"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A few more sweeps by each replica find nothing left to raise.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let alarms = "SELECT count(*) FROM case_timeline WHERE action = 'overdue'";
    assert_eq!(count(&db, alarms).await, held, "one overdue alarm per case");
    assert_eq!(
        count(
            &db,
            "SELECT count(DISTINCT case_id) FROM case_timeline WHERE action = 'overdue'"
        )
        .await,
        held
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM supervision WHERE kind = 'timeout'"
        )
        .await,
        held,
        "one supervision notice per overdue case"
    );
}
