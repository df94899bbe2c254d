//! Reference data as data: admins replace the department list, the category catalogue and
//! the ownership list with CSV or TOML documents, and the area map with GeoJSON; bad
//! documents are refused row by row and change nothing; new lists route (and a new map
//! places) the next event without a restart; an import made by the
//! `hub import` command reaches the running hub.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{TestHub, event};

const DEPARTMENTS: &str = "id,name,level,parent\n\
    centre,县指挥中心 county centre,county,\n\
    police,县公安局 county police,county,centre\n\
    fire,县消防救援大队 county fire brigade,county,centre\n";

const CATEGORIES: &str = r#"
[[category]]
code = "event:04"
name = "突发事件"

[[category]]
code = "event:0407"
name = "集体性事件"
name_en = "mass gathering"
classes = "person"
"#;

async fn import(hub: &TestHub, kind: &str, media_type: &str, body: &str) -> (StatusCode, Value) {
    let resp = hub
        .put(&format!("/api/v1/reference/{kind}"), &hub.admin_token)
        .header("content-type", media_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

on_both_backends!(
    imported_lists_route_the_next_event_without_a_restart,
    |hub: TestHub| async move {
        let (status, body) = import(&hub, "departments", "text/csv", DEPARTMENTS).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["rows"], 3);
        let (status, body) = import(&hub, "categories", "application/toml", CATEGORIES).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let ownership = "category,area,department,supervisor,time_limit,closing\n\
            event:0407,,fire,centre,3 working_hours,人群疏散 dispersed\n";
        let (status, body) = import(&hub, "ownership", "text/csv", ownership).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let revision = body["revision"].as_i64().unwrap();

        hub.post_events(vec![event("event:0407")]).await;
        let cases = hub
            .get_json("/api/v1/cases?queue=department", &hub.operator_token)
            .await;
        assert_eq!(cases["items"][0]["department"], "fire", "{cases}");
        assert_eq!(cases["items"][0]["time_limit"], "3 working_hours");

        // Everyone signed in reads the lists; the CSV form imports back unchanged.
        let listed = hub
            .get_json("/api/v1/reference/categories", &hub.police_token)
            .await;
        assert_eq!(listed["rows"][1]["name_en"], "mass gathering");
        assert_eq!(listed["imported"]["imported_by"], "user:admin-1");
        let csv = hub
            .get("/api/v1/reference/ownership", &hub.operator_token)
            .header("accept", "text/csv")
            .send()
            .await
            .unwrap();
        assert_eq!(csv.status(), StatusCode::OK);
        assert!(
            csv.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        let csv = csv.text().await.unwrap();
        assert!(csv.contains("3 working_hours"), "{csv}");
        let before = hub
            .get_json("/api/v1/reference/ownership", &hub.operator_token)
            .await;
        let (status, body) = import(&hub, "ownership", "text/csv", &csv).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["revision"], revision + 1);
        let after = hub
            .get_json("/api/v1/reference/ownership", &hub.operator_token)
            .await;
        assert_eq!(after["rows"], before["rows"]);
    }
);

on_both_backends!(
    a_bad_document_is_refused_row_by_row_and_changes_nothing,
    |hub: TestHub| async move {
        let (status, _) = import(&hub, "departments", "text/csv", DEPARTMENTS).await;
        assert_eq!(status, StatusCode::OK);
        let before = hub
            .get_json("/api/v1/reference/ownership", &hub.operator_token)
            .await;

        let bad = "category,department,time_limit\n\
            event:0407,police,2 urgent_hours\n\
            event:0407,ambulance,1 urgent_hours\n\
            event:0501,police,2 fortnights\n\
            incident:01,police,1 working_days\n";
        let (status, body) = import(&hub, "ownership", "text/csv", bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"]["code"], "invalid_rows");
        let lines: Vec<&Value> = body["error"]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["line"])
            .collect();
        // Lines 4 and 5 fail on their own; line 3 only against the department list, which
        // is checked once every row parses.
        assert_eq!(lines, [&json!(4), &json!(5)], "{body}");
        let fixed = bad
            .replace("2 fortnights", "2 working_days")
            .replace("incident", "event");
        let (status, body) = import(&hub, "ownership", "text/csv", &fixed).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"]["rows"][0]["line"], 3, "{body}");
        assert!(
            body["error"]["rows"][0]["message"]
                .as_str()
                .unwrap()
                .contains("\"ambulance\" is not in the department list"),
            "{body}"
        );

        // A department list without the department the ownership list in force routes to.
        let (status, body) = import(
            &hub,
            "departments",
            "text/csv",
            "id,name,level\nfire,消防 fire,county\n",
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            body["error"]["rows"][0]["message"]
                .as_str()
                .unwrap()
                .contains("\"police\""),
            "{body}"
        );

        // Not UTF-8 (a spreadsheet's GBK export): refused with the fix named.
        let resp = hub
            .put("/api/v1/reference/departments", &hub.admin_token)
            .header("content-type", "text/csv")
            .body(b"id,name,level\nx,\xd6\xd0,county\n".to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(resp.text().await.unwrap().contains("UTF-8"));

        let after = hub
            .get_json("/api/v1/reference/ownership", &hub.operator_token)
            .await;
        assert_eq!(after["rows"], before["rows"], "nothing may change");
        assert_eq!(after["revision"], before["revision"]);
        hub.post_events(vec![event("event:0407")]).await;
        let cases = hub
            .get_json("/api/v1/cases?queue=department", &hub.operator_token)
            .await;
        assert_eq!(cases["items"][0]["department"], "police");
    }
);

on_both_backends!(
    only_admins_import_and_a_dry_run_imports_nothing,
    |hub: TestHub| async move {
        let resp = hub
            .put("/api/v1/reference/departments", &hub.operator_token)
            .header("content-type", "text/csv")
            .body(DEPARTMENTS)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let resp = hub
            .get("/api/v1/reference/departments", &hub.gateway_token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let resp = hub
            .put("/api/v1/reference/departments", &hub.admin_token)
            .header("content-type", "application/vnd.ms-excel")
            .body(DEPARTMENTS)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let resp = hub
            .get("/api/v1/reference/streets", &hub.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);

        let before = hub
            .get_json("/api/v1/reference/departments", &hub.admin_token)
            .await;
        let resp = hub
            .put(
                "/api/v1/reference/departments?dry_run=true",
                &hub.admin_token,
            )
            .header("content-type", "text/csv")
            .body(DEPARTMENTS)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["dry_run"], true);
        assert_eq!(body["rows"], 3);
        let after = hub
            .get_json("/api/v1/reference/departments", &hub.admin_token)
            .await;
        assert_eq!(after, before);
        assert_eq!(after["rows"], json!([]));
    }
);

on_both_backends!(
    the_import_command_reaches_the_running_hub,
    |hub: TestHub| async move {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("departments.csv");
        std::fs::write(&file, DEPARTMENTS).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hub"))
            .args(["import", "departments"])
            .arg(&file)
            .env("HUB_DATABASE_URL", &hub.database_url)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains("Imported 3 rows of departments"),
            "{stderr}"
        );

        // A bad file names its lines and imports nothing.
        let bad = dir.path().join("bad.csv");
        std::fs::write(&bad, "id,name,level\nx,,county\ny,Y,planet\n").unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hub"))
            .args(["import", "departments"])
            .arg(&bad)
            .env("HUB_DATABASE_URL", &hub.database_url)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains("line 2:") && stderr.contains("line 3:"),
            "{stderr}"
        );

        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let listed = hub
                .get_json("/api/v1/reference/departments", &hub.operator_token)
                .await;
            if listed["rows"].as_array().unwrap().len() == 3 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the running hub never took up the command's import"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
);

/// A square of `half` degrees around (lon, lat), as a GeoJSON feature of `level`.
fn square(code: &str, level: &str, lon: f64, lat: f64, half: f64) -> Value {
    let (w, e, s, n) = (lon - half, lon + half, lat - half, lat + half);
    json!({
        "type": "Feature",
        "properties": {"code": code, "name": format!("{level} {code}"), "level": level},
        "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
    })
}

on_both_backends!(
    an_imported_area_map_places_the_next_event_without_a_restart,
    |hub: TestHub| async move {
        let (lon, lat) = (121.3, 31.1);
        let map = json!({"type": "FeatureCollection", "features": [
            square("330107001", "township", lon, lat, 0.05),
            square("G-NEW-01", "grid", lon, lat, 0.01),
        ]})
        .to_string();
        let before = hub.get_json("/api/v1/map", &hub.operator_token).await;
        let seeded = before["areas"]["features"].as_array().unwrap().len();

        // Who may import, and in what form.
        let resp = hub
            .put("/api/v1/reference/areas", &hub.operator_token)
            .header("content-type", "application/geo+json")
            .body(map.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let (status, body) = import(&hub, "areas", "text/csv", "code,name\n1,x\n").await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(body.to_string().contains("application/geo+json"), "{body}");
        let (status, body) = import(&hub, "departments", "application/geo+json", &map).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
        let bad = json!({"type": "FeatureCollection", "features": [
            square("330107001", "township", lon, lat, 0.05),
            square("3301", "village", lon, lat, 0.01),
        ]})
        .to_string();
        let (status, body) = import(&hub, "areas", "application/geo+json", &bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            body.to_string().contains("features[1].properties.code"),
            "{body}"
        );
        let unchanged = hub.get_json("/api/v1/map", &hub.operator_token).await;
        assert_eq!(
            unchanged["areas"]["features"].as_array().unwrap().len(),
            seeded,
            "a refused map changes nothing"
        );

        let (status, body) = import(&hub, "areas", "application/geo+json", &map).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["rows"], 2);
        let mut placed = event("event:0501");
        placed["location"] = json!({"lat": lat + 0.001, "lon": lon - 0.002});
        hub.post_events(vec![placed.clone()]).await;
        let events = hub
            .get_json("/api/v1/events?limit=10", &hub.operator_token)
            .await;
        let location = events["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == placed["id"])
            .unwrap()["location"]
            .clone();
        assert_eq!(location["area_code"], "330107001", "{location}");
        assert_eq!(location["grid"], "G-NEW-01");
        let now = hub.get_json("/api/v1/map", &hub.police_token).await;
        assert_eq!(now["areas"]["features"].as_array().unwrap().len(), 2);
        let listed = hub
            .get_json("/api/v1/reference/areas", &hub.police_token)
            .await;
        assert_eq!(
            listed["rows"]["features"][1]["properties"]["code"],
            "G-NEW-01"
        );
        assert_eq!(listed["imported"]["imported_by"], "user:admin-1");
    }
);
