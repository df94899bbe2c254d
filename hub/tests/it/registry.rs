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
        "sub_url": "rtsp://10.0.0.5:554/Streaming/Channels/102",
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

        // A case from the camera names the asset it watches.
        let mut seen = crate::support::event("component:0114");
        seen["source"]["camera_id"] = json!("cam-east-gate");
        hub.post_events(vec![seen]).await;
        let cases = hub.get_json("/api/v1/cases", &hub.operator_token).await;
        let case_id = cases["items"][0]["id"].as_str().unwrap();
        let case = hub
            .get_json(&format!("/api/v1/cases/{case_id}"), &hub.operator_token)
            .await;
        assert_eq!(
            case["assets"],
            json!([{ "camera_id": "cam-east-gate", "asset_code": "3301020010000123" }])
        );

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
        assert_eq!(
            hub.delete_status(path, &hub.technician_token).await,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            hub.delete_status(path, &hub.technician_token).await,
            StatusCode::NOT_FOUND
        );
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
    for (path, token) in [
        ("/api/v1/registry/cameras", &hub.police_token),
        ("/api/v1/registry/cameras", &hub.gateway_token),
        ("/api/v1/registry/audit", &hub.operator_token),
        ("/api/v1/gateway/config", &hub.technician_token),
        ("/api/v1/cases", &hub.technician_token), // technicians do not see cases
    ] {
        assert_eq!(
            hub.get_status(path, token).await,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }

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
            spoil(|b| b["camera"]["sub_url"] = json!("http://10.0.0.5/sub")),
            "camera.sub_url",
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

async fn import(hub: &TestHub, token: &str, query: &str, csv: &str) -> (StatusCode, Value) {
    hub.post_csv(&format!("/api/v1/registry/cameras{query}"), token, csv)
        .await
}

const CAMERAS_CSV: &str = "\
id,gateway_id,name,url,username,password,lat,lon,area_code,rule,min_persons,asset_code
cam-1,gw-test,东门 east gate,rtsp://10.0.0.5/Streaming/Channels/101,admin,Cam#Pass-7731,30.27,120.15,330102001,hazard,,3301020010000123
cam-2,gw-test,market,rtsp://10.0.0.6/cam/realmonitor?channel=1&subtype=0,,,30.28,120.16,,crowd,12,
cam-3,gw-test,,rtsp://10.0.0.7/live,,,30.29,120.17,,,,
";

on_both_backends!(
    technicians_import_cameras_from_a_spreadsheet,
    |hub: TestHub| async move {
        // Every bad row with its line, and nothing entered.
        let bad = format!(
            "{CAMERAS_CSV}cam-4,gw-test,,http://10.0.0.8/x,,,30.3,120.2,,,,\n\
         cam-5,gw-nowhere,,rtsp://10.0.0.9/x,,,30.3,120.2,,,,\n\
         cam-1,gw-test,,rtsp://10.0.0.5/x,,,30.3,120.2,,,,\n\
         cam-6,gw-test,,rtsp://10.0.0.9/y,,,30.3,120.2,,crowd,,\n\
         cam-7,gw-test,,rtsp://10.0.0.9/z,,,95,120.2,,,,\n"
        );
        let (status, body) = import(&hub, &hub.technician_token, "", &bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"]["code"], "invalid_rows");
        let rows = body["error"]["rows"].as_array().unwrap();
        let lines: Vec<i64> = rows.iter().map(|r| r["line"].as_i64().unwrap()).collect();
        assert_eq!(lines, [5, 6, 7, 8, 9], "{body}");
        for (row, expected) in rows.iter().zip([
            "camera.url",
            "gw-nowhere",
            "twice",
            "min_persons",
            "location.lat",
        ]) {
            assert!(row["message"].as_str().unwrap().contains(expected), "{row}");
        }
        assert!(!body.to_string().contains(PASSWORD));
        assert_eq!(
            hub.get_json("/api/v1/registry/cameras", &hub.admin_token)
                .await,
            json!([])
        );

        // A dry run checks and enters nothing; the import enters all three at once.
        let (status, body) =
            import(&hub, &hub.technician_token, "?dry_run=true", CAMERAS_CSV).await;
        assert_eq!(
            (status, body["created"].as_i64(), body["dry_run"].as_bool()),
            (StatusCode::OK, Some(3), Some(true))
        );
        assert_eq!(
            hub.get_json("/api/v1/registry/cameras", &hub.admin_token)
                .await,
            json!([])
        );
        let (status, body) = import(&hub, &hub.technician_token, "", CAMERAS_CSV).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            (body["rows"].as_i64(), body["created"].as_i64()),
            (Some(3), Some(3))
        );
        let list = hub
            .get_json("/api/v1/registry/cameras", &hub.technician_token)
            .await;
        assert_eq!(list[0]["camera"]["hazard"]["window"], 5);
        assert_eq!(list[0]["asset_code"], "3301020010000123");
        assert_eq!(list[1]["camera"]["crowd"]["min_persons"], 12);
        assert_eq!(list[2]["camera"]["name"], Value::Null);
        assert!(!list.to_string().contains(PASSWORD));
        let (_, _, doc) = config(&hub, &hub.gateway_token, None, 0).await;
        let doc = doc.unwrap();
        assert_eq!(doc["cameras"].as_array().unwrap().len(), 3);
        assert_eq!(doc["cameras"][0]["password"], PASSWORD);

        // Imported again with the password left out: kept; the audit has one entry a camera.
        let without = CAMERAS_CSV.replace("Cam#Pass-7731", "");
        let (status, body) = import(&hub, &hub.technician_token, "", &without).await;
        assert_eq!(
            (status, body["updated"].as_i64()),
            (StatusCode::OK, Some(3))
        );
        let (_, _, doc) = config(&hub, &hub.gateway_token, None, 0).await;
        assert_eq!(doc.unwrap()["cameras"][0]["password"], PASSWORD);
        let audit = hub
            .get_json("/api/v1/registry/audit", &hub.admin_token)
            .await;
        assert_eq!(audit.as_array().unwrap().len(), 6);

        // Only admins and technicians import, and only CSV or TOML.
        let (status, _) = import(&hub, &hub.operator_token, "", CAMERAS_CSV).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let json_body = hub
            .post_json(
                "/api/v1/registry/cameras",
                &hub.technician_token,
                &json!([]),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(json_body.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
);

on_both_backends!(
    technicians_register_gateways_and_manage_their_tokens,
    |hub: TestHub| async move {
        let body = json!({ "id": "gw-township-7", "name": "七里镇 Qili township", "area_code": "330106007" });
        let resp = hub
            .post_json("/api/v1/gateways", &hub.technician_token, &body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        let issued: Value = resp.json().await.unwrap();
        let token = issued["token"].as_str().unwrap().to_owned();
        let calls = |token: String| {
            let hub = &hub;
            async move { hub.get_status("/api/v1/gateway/config", &token).await }
        };
        assert_eq!(
            calls(token.clone()).await,
            StatusCode::OK,
            "the new gateway's token works"
        );

        // Taken ids, bad fields and other roles are refused.
        let again = hub
            .post_json("/api/v1/gateways", &hub.admin_token, &body)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::CONFLICT);
        for (bad, field) in [
            (json!({ "id": "has space", "name": "x" }), "id"),
            (json!({ "id": "gw-x", "name": " " }), "name"),
            (
                json!({ "id": "gw-x", "name": "x", "area_code": "3301" }),
                "area_code",
            ),
        ] {
            let resp = hub
                .post_json("/api/v1/gateways", &hub.technician_token, &bad)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
            let err: Value = resp.json().await.unwrap();
            assert_eq!(err["error"]["field"], field);
        }
        let by_operator = hub
            .post_json(
                "/api/v1/gateways",
                &hub.operator_token,
                &json!({ "id": "gw-y", "name": "y" }),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(by_operator.status(), StatusCode::FORBIDDEN);

        // A new token replaces the old at once; a revoked gateway cannot call at all.
        let path = "/api/v1/gateways/gw-township-7/token";
        let rotated: Value = hub
            .post_json(path, &hub.technician_token, &json!({}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let new_token = rotated["token"].as_str().unwrap().to_owned();
        assert_ne!(new_token, token);
        assert_eq!(calls(token).await, StatusCode::UNAUTHORIZED);
        assert_eq!(calls(new_token.clone()).await, StatusCode::OK);
        assert_eq!(
            hub.delete_status(path, &hub.technician_token).await,
            StatusCode::NO_CONTENT
        );
        assert_eq!(calls(new_token).await, StatusCode::UNAUTHORIZED);
        assert_eq!(
            hub.delete_status("/api/v1/gateways/gw-none/token", &hub.technician_token)
                .await,
            StatusCode::NOT_FOUND
        );

        let listed = hub.get_json("/api/v1/gateways", &hub.operator_token).await;
        let gw = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["id"] == "gw-township-7")
            .unwrap();
        assert_eq!(gw["area_code"], "330106007");
        assert!(gw["revoked_at"].is_string(), "{gw}");
        assert!(
            !listed.to_string().contains("token"),
            "no token or its hash is listed: {listed}"
        );
        let audit = hub
            .get_json("/api/v1/registry/audit", &hub.admin_token)
            .await;
        let actions: Vec<&str> = audit
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            actions,
            [
                "gateway_token_revoked",
                "gateway_token_issued",
                "gateway_registered"
            ]
        );
    }
);

async fn put_terminal(hub: &TestHub, token: &str, id: &str, body: &Value) -> reqwest::Response {
    hub.put(&format!("/api/v1/registry/terminals/{id}"), token)
        .json(body)
        .send()
        .await
        .unwrap()
}

fn sha256_hex(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(secret.as_bytes()))
}

on_both_backends!(
    technicians_issue_patrol_terminals_that_gateways_admit,
    |hub: TestHub| async move {
        let body = json!({ "gateway_id": "gw-test", "holder": "张三 Zhang San", "grid": "G-001" });
        let (_, etag, _) = config(&hub, &hub.gateway_token, None, 0).await;

        // Entered: the secret is in this answer only.
        let created = put_terminal(&hub, &hub.technician_token, "pt-zhang", &body).await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let created: Value = created.json().await.unwrap();
        let secret = created["secret"].as_str().unwrap().to_owned();
        assert!(secret.len() >= 32, "{created}");
        assert_eq!(created["terminal"]["holder"], "张三 Zhang San");
        assert_eq!(created["terminal"]["updated_by"], "user:tech-1");

        // The owning gateway's document lists it with the secret's hash, at a new revision.
        let (status, newer, doc) = config(&hub, &hub.gateway_token, Some(&etag), 0).await;
        assert_eq!(status, StatusCode::OK);
        assert_ne!(newer, etag);
        let doc = doc.unwrap();
        assert_eq!(
            doc["terminals"],
            json!([{ "id": "pt-zhang", "holder": "张三 Zhang San", "grid": "G-001",
                     "secret_sha256": sha256_hex(&secret) }])
        );

        // Reading the registry shows neither the secret nor its hash; the audit neither.
        for token in [&hub.technician_token, &hub.operator_token, &hub.admin_token] {
            let list = hub.get_json("/api/v1/registry/terminals", token).await;
            assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
            assert_eq!(list[0]["grid"], "G-001");
            let text = list.to_string();
            assert!(!text.contains(&secret) && !text.contains(&sha256_hex(&secret)));
        }
        let audit = hub
            .get_json("/api/v1/registry/audit", &hub.technician_token)
            .await
            .to_string();
        assert!(audit.contains("terminal_created") && !audit.contains(&secret));

        // A change of holder keeps the secret; a new secret replaces the hash.
        let changed = put_terminal(
            &hub,
            &hub.technician_token,
            "pt-zhang",
            &json!({ "gateway_id": "gw-test", "holder": "李四 Li Si" }),
        )
        .await;
        assert_eq!(changed.status(), StatusCode::OK);
        let changed: Value = changed.json().await.unwrap();
        assert!(changed.get("secret").is_none(), "{changed}");
        assert_eq!(changed["terminal"]["grid"], Value::Null);
        let renewed: Value = hub
            .post_json(
                "/api/v1/registry/terminals/pt-zhang/secret",
                &hub.technician_token,
                &json!({}),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let new_secret = renewed["secret"].as_str().unwrap();
        assert_ne!(new_secret, secret);
        let (_, _, doc) = config(&hub, &hub.gateway_token, None, 0).await;
        let doc = doc.unwrap();
        assert_eq!(doc["terminals"][0]["secret_sha256"], sha256_hex(new_secret));
        assert_eq!(doc["terminals"][0]["holder"], "李四 Li Si");

        // Removed: the gateway no longer admits it.
        let path = "/api/v1/registry/terminals/pt-zhang";
        assert_eq!(
            hub.delete_status(path, &hub.technician_token).await,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            hub.delete_status(path, &hub.technician_token).await,
            StatusCode::NOT_FOUND
        );
        let (_, _, doc) = config(&hub, &hub.gateway_token, None, 0).await;
        assert_eq!(doc.unwrap()["terminals"], json!([]));
    }
);

on_both_backends!(
    terminal_registry_roles_and_bad_entries,
    |hub: TestHub| async move {
        let body = json!({ "gateway_id": "gw-test" });
        for token in [&hub.operator_token, &hub.police_token, &hub.gateway_token] {
            let resp = put_terminal(&hub, token, "pt-1", &body).await;
            assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        }
        for token in [&hub.police_token, &hub.gateway_token] {
            assert_eq!(
                hub.get_status("/api/v1/registry/terminals", token).await,
                StatusCode::FORBIDDEN
            );
        }
        let cases = [
            ("bad id", json!({ "gateway_id": "gw-test" }), "id"),
            ("pt-1", json!({ "gateway_id": "gw-nowhere" }), "gateway_id"),
            (
                "pt-1",
                json!({ "gateway_id": "gw-test", "holder": "x".repeat(5000) }),
                "holder",
            ),
        ];
        for (id, body, field) in cases {
            let path = format!("/api/v1/registry/terminals/{}", id.replace(' ', "%20"));
            let resp = hub
                .put(&path, &hub.technician_token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{field}");
            let err: Value = resp.json().await.unwrap();
            assert_eq!(err["error"]["field"], field, "{err}");
        }
        let unknown = hub
            .post_json(
                "/api/v1/registry/terminals/pt-none/secret",
                &hub.technician_token,
                &json!({}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
        let list = hub
            .get_json("/api/v1/registry/terminals", &hub.technician_token)
            .await;
        assert_eq!(list, json!([]), "nothing stored");
    }
);

on_both_backends!(
    technicians_import_patrol_terminals_from_a_spreadsheet,
    |hub: TestHub| async move {
        let post = |csv: &'static str, query: &'static str| {
            hub.client
                .post(format!("{}/api/v1/registry/terminals{query}", hub.url))
                .bearer_auth(&hub.technician_token)
                .header("content-type", "text/csv")
                .body(csv)
                .send()
        };
        let existing = put_terminal(
            &hub,
            &hub.technician_token,
            "pt-1",
            &json!({ "gateway_id": "gw-test" }),
        )
        .await;
        assert_eq!(existing.status(), StatusCode::CREATED);

        // Every bad row by its line, and nothing stored.
        let bad = "id,gateway_id,holder,grid\n\
                   pt-2,gw-nowhere,王五,G-002\n\
                   bad id,gw-test,,\n\
                   pt-3,gw-test,,\n\
                   pt-3,gw-test,,\n";
        let resp = post(bad, "").await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body: Value = resp.json().await.unwrap();
        let lines: Vec<i64> = body["error"]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["line"].as_i64().unwrap())
            .collect();
        assert_eq!(lines, [2, 3, 5], "{body}");
        let list = hub
            .get_json("/api/v1/registry/terminals", &hub.technician_token)
            .await;
        assert_eq!(list.as_array().unwrap().len(), 1, "{list}");

        // A good document: the new terminals' secrets once, the existing one updated.
        let good = "id,gateway_id,holder,grid\n\
                    pt-1,gw-test,张三,G-001\n\
                    pt-2,gw-test,王五,G-002\n";
        let dry: Value = post(good, "?dry_run=true")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            (dry["created"].as_i64(), dry["updated"].as_i64()),
            (Some(1), Some(1))
        );
        assert_eq!(dry["secrets"], json!([]), "a dry run issues nothing");
        let done: Value = post(good, "").await.unwrap().json().await.unwrap();
        assert_eq!(done["rows"], 2, "{done}");
        let secrets = done["secrets"].as_array().unwrap();
        assert_eq!(secrets.len(), 1, "{done}");
        assert_eq!(secrets[0]["id"], "pt-2");
        let secret = secrets[0]["secret"].as_str().unwrap();
        let (_, _, doc) = config(&hub, &hub.gateway_token, None, 0).await;
        let doc = doc.unwrap();
        let terminals = doc["terminals"].as_array().unwrap();
        assert_eq!(terminals.len(), 2, "{doc}");
        assert_eq!(terminals[0]["holder"], "张三");
        assert_eq!(terminals[1]["secret_sha256"], sha256_hex(secret));
    }
);

on_both_backends!(the_example_spreadsheets_import, |hub: TestHub| async move {
    let registered = hub
        .post_json(
            "/api/v1/gateways",
            &hub.technician_token,
            &json!({ "id": "gw-township-001", "name": "示例乡镇 example township" }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    for (path, file) in [
        ("/api/v1/registry/cameras", "deploy/cameras.example.csv"),
        ("/api/v1/registry/terminals", "deploy/terminals.example.csv"),
    ] {
        let csv = std::fs::read_to_string(system_tests::repo().join(file)).unwrap();
        let resp = hub
            .client
            .post(format!("{}{path}?dry_run=true", hub.url))
            .bearer_auth(&hub.technician_token)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{file}: {body}");
        assert_eq!(
            (body["rows"].as_i64(), body["created"].as_i64()),
            (Some(2), Some(2)),
            "{file}"
        );
    }
});
