//! The gateway's local API: with a token set, status, terminals and metrics need it and
//! liveness does not; without one they are open (the loopback default).

use std::sync::Arc;

use edge_gateway::api::{ApiState, router};
use edge_gateway::outbox::Outbox;
use reqwest::StatusCode;
use secrecy::SecretString;

const TOKEN: &str = "monitoring-token-0123456789";

/// The local API on a free loopback port: its base URL.
async fn serve(dir: &std::path::Path, token: Option<&str>) -> String {
    let state = ApiState {
        gateway_id: "gw-township-001".into(),
        model: "yolox-nano".into(),
        cameras: Arc::default(),
        stats: Arc::default(),
        outbox: Outbox::open(&dir.join("outbox.db")).await.unwrap(),
        terminals: None,
        token: token.map(|t| SecretString::from(t.to_owned())),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    format!("http://{addr}")
}

async fn get(base: &str, path: &str, token: Option<&str>) -> StatusCode {
    let mut req = reqwest::Client::new().get(format!("{base}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap().status()
}

#[tokio::test]
async fn a_token_guards_status_and_metrics_but_not_liveness() {
    let dir = tempfile::tempdir().unwrap();
    let guarded = serve(dir.path(), Some(TOKEN)).await;
    for path in ["/api/v1/status", "/api/v1/terminals", "/metrics"] {
        for wrong in [None, Some("monitoring-token-0123456788")] {
            assert_eq!(
                get(&guarded, path, wrong).await,
                StatusCode::UNAUTHORIZED,
                "{path} {wrong:?}"
            );
        }
    }
    assert_eq!(
        get(&guarded, "/api/v1/status", Some(TOKEN)).await,
        StatusCode::OK
    );
    assert_eq!(get(&guarded, "/metrics", Some(TOKEN)).await, StatusCode::OK);
    assert_eq!(get(&guarded, "/healthz", None).await, StatusCode::OK);

    let other = tempfile::tempdir().unwrap();
    let open = serve(other.path(), None).await;
    assert_eq!(get(&open, "/api/v1/status", None).await, StatusCode::OK);
}
