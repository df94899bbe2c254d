//! The OpenAPI document: the hub serves `docs/openapi.json` as it is, the document lists
//! exactly the routes the router has, and the hub answers every operation it lists.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::Value;

use crate::on_both_backends;
use crate::support::TestHub;

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(system_tests::repo().join(path)).unwrap()
}

/// `(METHOD, path)` of every `.route(…)` in the router's source.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let source = repo_file("hub/src/http/mod.rs");
    let mut found = BTreeSet::new();
    for chunk in source.split(".route(").skip(1) {
        let chunk = chunk.split(".fallback").next().unwrap();
        let path = chunk.split('"').nth(1).unwrap().to_owned();
        if path.contains('*') {
            continue;
        }
        // `get(handler)` first, `.post(handler)` chained.
        for method in ["get", "post", "put", "delete"] {
            if chunk.contains(&format!(" {method}(")) || chunk.contains(&format!(".{method}(")) {
                found.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    found
}

fn routes_in_document(doc: &Value) -> BTreeSet<(String, String)> {
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect()
}

on_both_backends!(the_document_matches_the_router, |hub: TestHub| async move {
    let file = repo_file("docs/openapi.json");
    let served = hub
        .get("/api/v1/openapi.json", &hub.technician_token)
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.text().await.unwrap(), file);
    let anonymous = hub
        .client
        .get(format!("{}/api/v1/openapi.json", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    let doc: Value = serde_json::from_str(&file).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let listed = routes_in_document(&doc);
    let routed = routes_in_source();
    assert!(
        routed.len() > 20,
        "the router's routes were found: {routed:?}"
    );
    assert_eq!(
        listed, routed,
        "the document and the router list the same operations"
    );

    // Each listed operation is answered by its handler, not by the not-found fallback.
    for (method, path) in &listed {
        if path == "/api/v1/stream" {
            continue; // an endless stream; its own test reads it
        }
        let url = format!(
            "{}{}",
            hub.url,
            path.replace("{id}", "no-such-case")
                .replace("{sha256}", &"0".repeat(64))
                .replace("{notice}", "n")
                .replace("{extension}", "x")
        );
        let resp = hub
            .client
            .request(method.parse().unwrap(), &url)
            .bearer_auth(&hub.operator_token)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert!(
            !body.contains("endpoint not found"),
            "{method} {path} fell through to the fallback"
        );
    }
});
