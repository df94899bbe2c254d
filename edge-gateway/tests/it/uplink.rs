//! The uplink against the real hub (in this process, SQLite): evidence the hub refuses does
//! not cost the event that cites it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use edge_gateway::event::Blob;
use edge_gateway::health::GatewayStats;
use edge_gateway::outbox::Outbox;
use edge_gateway::uplink::Uplink;
use protocol::{EvidenceKind, Severity};
use tokio_util::sync::CancellationToken;

use crate::support::crowd_event;

#[tokio::test]
async fn evidence_the_hub_refuses_is_left_out_and_the_event_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("hub.db").display());
    let mut config = hub::Config::try_from(hub::RawConfig {
        database_url: url.clone(),
        ..hub::RawConfig::default()
    })
    .unwrap();
    // A hub that takes blobs of 2 KiB at most: a clip of 8 KiB is too large for it.
    config.limits.max_blob_bytes = 2048;
    let store = hub::Store::connect(&url).await.unwrap();
    let token = store
        .add_gateway("gw", "uplink test", true)
        .await
        .unwrap()
        .token;
    let operator = store
        .add_user("op", hub::store::Role::Operator, None)
        .await
        .unwrap()
        .token;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hub_url = format!("http://{}/", listener.local_addr().unwrap());
    let stop_hub = CancellationToken::new();
    let server = tokio::spawn(hub::run(config, store, listener, stop_hub.clone()));

    let snapshot = Blob::jpeg([&[0xFF, 0xD8, 0xFF][..], &[7; 500]].concat());
    let clip = Blob::mp4([&b"\0\0\0\x18ftypisom"[..], &[9; 8192]].concat());
    let outbox = Outbox::open(&dir.path().join("outbox.db")).await.unwrap();
    let event = crowd_event(
        Severity::Medium,
        vec![
            (EvidenceKind::Snapshot, snapshot.clone()),
            (EvidenceKind::Clip, clip),
        ],
    );
    outbox.push(&event).await.unwrap();

    let stop = CancellationToken::new();
    let uplink = Uplink {
        outbox: outbox.clone(),
        hub_url: hub_url.parse().unwrap(),
        token: token.into(),
        gateway_id: "gw".into(),
        batch_size: 10,
        stats: Arc::new(GatewayStats::default()),
        wake: Arc::default(),
    };
    let task = tokio::spawn(uplink.run(stop.clone()));
    let started = Instant::now();
    while outbox.pending().await.unwrap() > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the event was never delivered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    task.await.unwrap();
    assert_eq!(outbox.dead_letters().await.unwrap(), 0, "nothing set aside");

    let client = reqwest::Client::new();
    let get = |path: String| {
        client
            .get(format!("{hub_url}{path}"))
            .bearer_auth(&operator)
            .send()
    };
    let cases: serde_json::Value = get("api/v1/cases".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cases["total"], 1, "{cases}");
    let id = cases["items"][0]["id"].as_str().unwrap();
    let detail: serde_json::Value = get(format!("api/v1/cases/{id}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let evidence = &detail["events"][0]["event"]["evidence"];
    assert_eq!(evidence.as_array().map(Vec::len), Some(1), "{evidence}");
    assert_eq!(
        evidence[0]["kind"], "snapshot",
        "the snapshot the hub took stays"
    );
    let snap = get(format!("api/v1/blobs/{}", snapshot.sha256))
        .await
        .unwrap();
    assert_eq!(snap.status(), reqwest::StatusCode::OK);
    stop_hub.cancel();
    let _ = server.await;
}
