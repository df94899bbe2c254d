//! The on-site tools on the gateway's local API: the technician's token guards them, the
//! probe answers with the stream's figures and a snapshot (or the camera's failure as 502),
//! discovery answers with registry rows for this gateway; no answer holds a password.

use std::sync::Arc;

use base64::Engine;
use edge_gateway::tools::{Tools, router};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::probe::test_pattern;

const TOKEN: &str = "technician-token-0123456789";
const CAMERA_PASSWORD: &str = "Cam-Pass-4417";

/// The tools' router on a free loopback port: its base URL.
async fn serve(token: Option<&str>) -> String {
    let tools = Arc::new(Tools::new(
        "gw-township-001".to_owned(),
        token.map(|t| SecretString::from(t.to_owned())),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(tools)).await });
    format!("http://{addr}")
}

async fn call(base: &str, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(!text.contains(CAMERA_PASSWORD), "{text}");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_tools_need_the_technicians_token() {
    let off = serve(None).await;
    let (status, body) = call(&off, "/api/v1/tools/discover", Some(TOKEN), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["error"].as_str().unwrap().contains("[api] token"));

    let on = serve(Some(TOKEN)).await;
    for path in ["/api/v1/tools/probe", "/api/v1/tools/discover"] {
        for token in [None, Some("technician-token-0123456788")] {
            let (status, _) = call(&on, path, token, json!({})).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} {token:?}");
        }
    }
    let bad = [
        json!({ "url": "rtsp://a:b@192.0.2.1/x" }),
        json!({ "url": "rtsp://192.0.2.1/x", "seconds": 600 }),
        json!({ "url": "rtsp://192.0.2.1/x", "username": "admin" }),
        json!({ "url": "rtsp://192.0.2.1/x", "colour": "red" }),
    ];
    for body in bad {
        let (status, answer) = call(&on, "/api/v1/tools/probe", Some(TOKEN), body.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body} → {answer}"
        );
    }
}

#[tokio::test]
async fn the_probe_runs_on_the_gateway() {
    let (_server, url) = test_pattern(Some(("installer", CAMERA_PASSWORD)));
    let base = serve(Some(TOKEN)).await;
    let probe = |password: &str| json!({ "url": url, "username": "installer", "password": password, "tcp": true, "seconds": 2 });
    let (status, body) = call(
        &base,
        "/api/v1/tools/probe",
        Some(TOKEN),
        probe(CAMERA_PASSWORD),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let report = &body["report"];
    assert_eq!(
        (&report["codec"], &report["width"], &report["height"]),
        (&json!("H.264"), &json!(640), &json!(360)),
        "{report}"
    );
    let jpeg = base64::engine::general_purpose::STANDARD
        .decode(body["snapshot_jpeg_base64"].as_str().unwrap())
        .unwrap();
    assert!(jpeg.starts_with(&[0xFF, 0xD8]), "a JPEG");

    let (status, body) = call(
        &base,
        "/api/v1/tools/probe",
        Some(TOKEN),
        probe("wrong-one"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("refused the user name or password"),
        "{body}"
    );
}

#[tokio::test]
async fn discovery_runs_on_the_gateway_and_answers_registry_rows() {
    let device = oxvif::mock::MockServer::builder()
        .enforce_auth(true)
        .start()
        .await
        .unwrap();
    let base = serve(Some(TOKEN)).await;
    let (status, body) = call(
        &base,
        "/api/v1/tools/discover",
        Some(TOKEN),
        json!({ "device": device.device_url(), "username": "admin", "password": "admin" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["devices"][0]["manufacturer"], "oxvif-mock");
    let entry = &body["entries"][0]["entry"];
    assert_eq!(entry["gateway_id"], "gw-township-001", "{body}");
    assert_eq!(entry["url"], "rtsp://127.0.0.1:554/mock/stream");
    assert_eq!(entry["password"], "", "left for the technician");

    let (status, body) = call(
        &base,
        "/api/v1/tools/discover",
        Some(TOKEN),
        json!({ "device": device.device_url(), "username": "admin", "password": CAMERA_PASSWORD }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["devices"].as_array().unwrap().is_empty());
    assert!(
        body["failed"][0]["error"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{body}"
    );
}
