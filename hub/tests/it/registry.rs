//! The device registry and the gateways' configuration documents, on both backends:
//! technicians enter cameras (passwords sealed, never shown), gateways fetch their own
//! cameras with ETag, 304 and long-polling, every change is audited, and bad entries are
//! refused by field.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::TestHub;

const PASSWORD: &str = "Cam#Pass-7731";

fn entry(gateway: &str, password: Option<&str>) -> Value {
    let mut camera = json!({
        "id": "cam-east-gate",
        "name": "东门 east gate",
        "url": "rtsp://10.0.0.5:554/Streaming/Channels/101",
        "username": "admin",
        "location": { "lat": 30.2741, "lon": 120.1551, "area_code": "330102001" },
        "hazard": { "frames": 2, "window": 4 }
    });
    if let Some(p) = password {
        camera["password"] = json!(p);
    }
    json!({
        "gateway_id": gateway,
        "camera": camera,
        "sub_url": "rtsp://10.0.0.5:554/Streaming/Channels/102",
        "asset_code": "3301020010000123"
    })
}

async fn put(hub: &TestHub, token: &str, id: &str, body: &Value) -> reqwest::Response {
    hub.put(&format!("/api/v1/registry/cameras/{id}"), token)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The gateway's configuration document: status, ETag and body (when 200).
async fn config(
    hub: &TestHub,
    token: &str,
    known: Option<&str>,
    wait_s: u64,
) -> (StatusCode, String, Option<Value>) {
    let mut req = hub.get(&format!("/api/v1/gateway/config?wait_s={wait_s}"), token);
    if let Some(etag) = known {
        req = req.header("If-None-Match", etag);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
    let body = if status == StatusCode::OK {
        Some(resp.json().await.unwrap())
    } else {
        None
    };
    (status, etag, body)
}

on_both_backends!(
    technicians_enter_cameras_and_gateways_fetch_them,
    |hub: TestHub| async move {
        let created = put(
            &hub,
            &hub.technician_token,
            "cam-east-gate",
            &entry("gw-test", Some(PASSWORD)),
        )
        .await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let view: Value = created.json().await.unwrap();
        assert_eq!(view["password_set"], true);
        assert_eq!(view["camera"]["username"], "admin");
        assert_eq!(view["updated_by"], "user:tech-1");
        assert!(!view.to_string().contains(PASSWORD), "{view}");

        // Nothing that reads the registry shows the password; the database holds it sealed.
        for token in [&hub.technician_token, &hub.operator_token, &hub.admin_token] {
            let list = hub.get_json("/api/v1/registry/cameras", token).await;
            assert_eq!(list.as_array().unwrap().len(), 1);
            assert!(!list.to_string().contains(PASSWORD));
        }
        let one = hub
            .get_json(
                "/api/v1/registry/cameras/cam-east-gate",
                &hub.operator_token,
            )
            .await;
        assert_eq!(one["asset_code"], "3301020010000123");
        let stored = hub
            .store
            .registry_camera("cam-east-gate")
            .await
            .unwrap()
            .unwrap();
        let sealed = stored.password_sealed.unwrap();
        assert!(!sealed.contains(PASSWORD) && stored.spec.password.is_none());

        // The gateway gets its cameras with the password, and 304 while nothing changes.
        let (status, etag, body) = config(&hub, &hub.gateway_token, None, 0).await;
        assert_eq!(status, StatusCode::OK);
        let body = body.unwrap();
        assert_eq!(body["gateway_id"], "gw-test");
        assert_eq!(body["cameras"][0]["password"], PASSWORD);
        assert_eq!(body["cameras"][0]["hazard"]["window"], 4);
        assert_eq!(etag, format!("\"{}\"", body["revision"]));
        let (status, same, _) = config(&hub, &hub.gateway_token, Some(&etag), 0).await;
        assert_eq!(
            (status, same.as_str()),
            (StatusCode::NOT_MODIFIED, etag.as_str())
        );

        // A waiting gateway hears of a change as it lands; a change without a password
        // keeps the stored one.
        let waiting = {
            let (client, url, token, etag) = (
                hub.client.clone(),
                hub.url.clone(),
                hub.gateway_token.clone(),
                etag.clone(),
            );
            tokio::spawn(async move {
                let resp = client
                    .get(format!("{url}/api/v1/gateway/config?wait_s=30"))
                    .bearer_auth(token)
                    .header("If-None-Match", etag)
                    .send()
                    .await
                    .unwrap();
                (resp.status(), resp.json::<Value>().await.unwrap())
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let mut changed = entry("gw-test", None);
        changed["camera"]["detect_fps"] = json!(5.0);
        let updated = put(&hub, &hub.admin_token, "cam-east-gate", &changed).await;
        assert_eq!(updated.status(), StatusCode::OK);
        let (status, body) = waiting.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["cameras"][0]["detect_fps"], 5.0);
        assert_eq!(body["cameras"][0]["password"], PASSWORD, "kept");
        assert!(body["revision"].as_i64() > Some(1));

        // Moving the camera to another gateway changes both gateways' documents.
        let other_token = hub
            .store
            .add_gateway("gw-other", "other", false)
            .await
            .unwrap()
            .token;
        let moved = put(
            &hub,
            &hub.technician_token,
            "cam-east-gate",
            &entry("gw-other", None),
        )
        .await;
        assert_eq!(moved.status(), StatusCode::OK);
        let (_, _, mine) = config(&hub, &hub.gateway_token, None, 0).await;
        assert_eq!(mine.unwrap()["cameras"], json!([]));
        let (_, _, theirs) = config(&hub, &other_token, None, 0).await;
        assert_eq!(theirs.unwrap()["cameras"][0]["password"], PASSWORD);

        // Removing it, then the audit: each change by whom, and never the password.
        let path = "/api/v1/registry/cameras/cam-east-gate";
        let removed = hub
            .client
            .delete(format!("{}{path}", hub.url))
            .bearer_auth(&hub.technician_token)
            .send()
            .await
            .unwrap();
        assert_eq!(removed.status(), StatusCode::NO_CONTENT);
        let again = hub
            .client
            .delete(format!("{}{path}", hub.url))
            .bearer_auth(&hub.technician_token)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_FOUND);
        let (_, _, theirs) = config(&hub, &other_token, None, 0).await;
        assert_eq!(theirs.unwrap()["cameras"], json!([]));
        let audit = hub
            .get_json("/api/v1/registry/audit", &hub.technician_token)
            .await;
        let actions: Vec<(&str, &str)> = audit
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["action"].as_str().unwrap(), a["actor"].as_str().unwrap()))
            .collect();
        assert_eq!(
            actions,
            [
                ("camera_removed", "user:tech-1"),
                ("camera_updated", "user:tech-1"),
                ("camera_updated", "user:admin-1"),
                ("camera_created", "user:tech-1"),
            ]
        );
        assert_eq!(audit[3]["detail"]["password"], "set");
        assert_eq!(audit[2]["detail"]["password"], "unchanged");
        assert!(!audit.to_string().contains(PASSWORD));
    }
);

on_both_backends!(registry_roles_and_bad_entries, |hub: TestHub| async move {
    let body = entry("gw-test", Some(PASSWORD));
    // Who may do what.
    for token in [&hub.operator_token, &hub.police_token, &hub.gateway_token] {
        let resp = put(&hub, token, "cam-east-gate", &body).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    }
    for token in [&hub.police_token, &hub.gateway_token] {
        let resp = hub
            .get("/api/v1/registry/cameras", token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    }
    let audit = hub
        .get("/api/v1/registry/audit", &hub.operator_token)
        .send()
        .await
        .unwrap();
    assert_eq!(audit.status(), StatusCode::FORBIDDEN);
    let as_user = hub
        .get("/api/v1/gateway/config", &hub.technician_token)
        .send()
        .await
        .unwrap();
    assert_eq!(as_user.status(), StatusCode::FORBIDDEN);
    let cases = hub
        .get("/api/v1/cases", &hub.technician_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        cases.status(),
        StatusCode::FORBIDDEN,
        "technicians do not see cases"
    );

    // Bad entries are refused by field, and nothing is stored.
    let spoil = |f: fn(&mut Value)| {
        let mut b = entry("gw-test", Some(PASSWORD));
        f(&mut b);
        b
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            spoil(|b| b["camera"]["id"] = json!("cam-other")),
            "camera.id",
        ),
        (
            spoil(|b| b["camera"]["url"] = json!("rtsp://admin:pw@10.0.0.5/x")),
            "camera.url",
        ),
        (
            spoil(|b| b["camera"]["detect_fps"] = json!(0)),
            "camera.detect_fps",
        ),
        (
            spoil(|b| b["camera"]["location"]["lat"] = json!(123.0)),
            "camera.location.lat",
        ),
        (
            spoil(|b| b["camera"]["hazard"]["frames"] = json!(9)),
            "camera.hazard.frames",
        ),
        (
            spoil(|b| {
                b["camera"]
                    .as_object_mut()
                    .unwrap()
                    .remove("password")
                    .map(drop)
                    .unwrap()
            }),
            "camera.username",
        ),
        (
            spoil(|b| b["gateway_id"] = json!("gw-nowhere")),
            "gateway_id",
        ),
        (
            spoil(|b| b["sub_url"] = json!("http://10.0.0.5/sub")),
            "sub_url",
        ),
        (
            spoil(|b| b["asset_code"] = json!("no spaces please")),
            "asset_code",
        ),
        (
            spoil(|b| b["clear_password"] = json!(true)),
            "clear_password",
        ),
    ];
    for (body, field) in cases {
        let resp = put(&hub, &hub.technician_token, "cam-east-gate", &body).await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["error"]["field"], field, "{err}");
        assert!(!err.to_string().contains(PASSWORD), "{err}");
    }
    let unknown = spoil(|b| b["camera"]["colour"] = json!("red"));
    let resp = put(&hub, &hub.technician_token, "cam-east-gate", &unknown).await;
    assert!(resp.status().is_client_error());
    let message = resp.text().await.unwrap();
    assert!(message.contains("colour"), "{message}");
    assert_eq!(
        hub.get_json("/api/v1/registry/cameras", &hub.admin_token)
            .await,
        json!([])
    );
    assert_eq!(
        hub.get_json("/api/v1/registry/audit", &hub.admin_token)
            .await,
        json!([])
    );
});
