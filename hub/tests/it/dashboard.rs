//! What the dashboard stands on: sign-in with a session cookie (and its guards), the live
//! feed of server-sent events filtered by role, and the statistics.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, RETRY_AFTER, SET_COOKIE};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{PASSWORD, TestHub, event};

/// Signs in as `name`; returns the `Cookie` header value to send from then on.
async fn sign_in(hub: &TestHub, name: &str) -> String {
    let resp = hub
        .client
        .post(format!("{}/api/v1/session", hub.url))
        .json(&json!({"name": name, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = resp.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    let me: Value = resp.json().await.unwrap();
    assert_eq!(me["name"], name);
    assert!(me["expires_at"].is_string());
    cookie.split(';').next().unwrap().to_owned()
}

async fn whoami(hub: &TestHub, cookie: Option<&str>) -> Value {
    let mut req = hub.client.get(format!("{}/api/v1/session", hub.url));
    if let Some(c) = cookie {
        req = req.header(COOKIE, c);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

on_both_backends!(
    a_session_cookie_signs_a_person_in_and_out,
    |hub: TestHub| async move {
        assert_eq!(whoami(&hub, None).await, json!({"user": null}));
        let wrong = hub
            .client
            .post(format!("{}/api/v1/session", hub.url))
            .json(&json!({"name": "op", "password": "not the password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        assert!(wrong.headers().get(SET_COOKIE).is_none());
        // A user without a password (API token only) cannot sign in.
        let tokenless = hub
            .client
            .post(format!("{}/api/v1/session", hub.url))
            .json(&json!({"name": "fire-1", "password": ""}))
            .send()
            .await
            .unwrap();
        assert_eq!(tokenless.status(), StatusCode::UNAUTHORIZED);

        let cookie = sign_in(&hub, "police-1").await;
        let me = whoami(&hub, Some(&cookie)).await;
        assert_eq!(me["user"]["role"], "department");
        assert_eq!(me["user"]["department"], "police");

        // Reads work on the cookie; the cookie's visibility is the user's.
        hub.post_events(vec![event("event:0407")]).await;
        let cases: Value = hub
            .client
            .get(format!("{}/api/v1/cases", hub.url))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(cases["total"], 1);
        let id = cases["items"][0]["id"].as_str().unwrap().to_owned();

        // A write on the cookie alone could come from a hostile page: refused.
        let action = |csrf: bool| {
            let mut req = hub
                .client
                .post(format!("{}/api/v1/cases/{id}/actions", hub.url))
                .header(COOKIE, &cookie)
                .json(&json!({"action": "accept"}));
            if csrf {
                req = req.header("X-Requested-With", "hub-dashboard");
            }
            req.send()
        };
        assert_eq!(action(false).await.unwrap().status(), StatusCode::FORBIDDEN);
        assert_eq!(action(true).await.unwrap().status(), StatusCode::OK);

        let out = hub
            .client
            .delete(format!("{}/api/v1/session", hub.url))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(out.status(), StatusCode::NO_CONTENT);
        assert!(
            out.headers()[SET_COOKIE]
                .to_str()
                .unwrap()
                .contains("Max-Age=0")
        );
        assert_eq!(whoami(&hub, Some(&cookie)).await, json!({"user": null}));
        let after = hub
            .client
            .get(format!("{}/api/v1/cases", hub.url))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    }
);

on_both_backends!(
    repeated_failed_sign_ins_are_throttled,
    |hub: TestHub| async move {
        let attempt = |password: &'static str| {
            hub.client
                .post(format!("{}/api/v1/session", hub.url))
                .json(&json!({"name": "op", "password": password}))
                .send()
        };
        for _ in 0..5 {
            assert_eq!(
                attempt("guess").await.unwrap().status(),
                StatusCode::UNAUTHORIZED
            );
        }
        // Even the right password waits now.
        let throttled = attempt(PASSWORD).await.unwrap();
        assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
        let wait: u64 = throttled.headers()[RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=900).contains(&wait), "{wait}");
    }
);

/// Reads server-sent events from `resp` until `n` of kind `kind` arrived; returns their
/// data. Fails the test after 10 s.
async fn read_events(resp: &mut reqwest::Response, kind: &str, n: usize) -> Vec<Value> {
    let mut buffer = String::new();
    let mut found = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while found.len() < n {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("only {found:?} of {n} {kind} events arrived"))
            .unwrap()
            .expect("the stream stays open");
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut name = "message";
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = if v.trim() == kind { kind } else { "other" };
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if name == kind {
                found.push(serde_json::from_str(&data).unwrap());
            }
        }
    }
    found
}

async fn subscribe(hub: &TestHub, token: &str) -> reqwest::Response {
    let mut resp = hub.get("/api/v1/stream", token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    read_events(&mut resp, "ready", 1).await;
    resp
}

on_both_backends!(
    the_live_feed_shows_each_role_its_own,
    |hub: TestHub| async move {
        let mut operator = subscribe(&hub, &hub.operator_token).await;
        let mut police = subscribe(&hub, &hub.police_token).await;
        let denied = hub
            .get("/api/v1/stream", &hub.technician_token)
            .send()
            .await
            .unwrap();
        assert_eq!(denied.status(), StatusCode::FORBIDDEN);

        let unowned = event("event:0501");
        let crowd = event("event:0407");
        hub.post_events(vec![unowned.clone(), crowd.clone()]).await;
        let seen = read_events(&mut operator, "event", 2).await;
        assert_eq!(seen[0]["event"]["id"], unowned["id"]);
        assert_eq!(seen[0]["case_opened"], true);
        assert_eq!(seen[0]["department"], Value::Null);
        assert_eq!(seen[1]["event"]["id"], crowd["id"]);
        assert_eq!(seen[1]["department"], "police");
        // The police see only the crowd: the first event they get is it.
        let theirs = read_events(&mut police, "event", 1).await;
        assert_eq!(theirs[0]["event"]["id"], crowd["id"]);

        // A case moving is on the feed too, for those who may see the case.
        let case_id = theirs[0]["case_id"].as_str().unwrap();
        hub.post_json(
            &format!("/api/v1/cases/{case_id}/actions"),
            &hub.police_token,
            &json!({"action": "accept"}),
        )
        .send()
        .await
        .unwrap();
        let moved = read_events(&mut police, "case", 1).await;
        assert_eq!(moved[0]["id"], case_id);
        assert_eq!(moved[0]["to"], "handling");
        assert_eq!(moved[0]["actor"], "user:police-1");
    }
);

on_both_backends!(
    statistics_count_the_period_by_role,
    |hub: TestHub| async move {
        let events: Vec<Value> = (0..3)
            .map(|i| {
                let mut e = event(if i == 0 { "event:0501" } else { "event:0407" });
                // Far enough apart not to join one case.
                e["location"]["lat"] = json!(30.0 + f64::from(i));
                e["location"]["grid"] = json!("grid-7");
                e
            })
            .collect();
        hub.post_events(events).await;
        let stats = |token: &str| {
            let req = hub.get("/api/v1/stats", token);
            async move {
                let resp = req.send().await.unwrap();
                assert_eq!(resp.status(), StatusCode::OK);
                resp.json::<Value>().await.unwrap()
            }
        };
        let all = stats(&hub.operator_token).await;
        assert_eq!(all["totals"]["cases"], 3);
        assert_eq!(all["totals"]["open"], 3);
        assert_eq!(all["by_state"]["dispatched"], 2);
        assert_eq!(all["by_state"]["reported"], 1);
        assert_eq!(all["by_department"][0]["key"], "police");
        assert_eq!(all["by_department"][0]["cases"], 2);
        assert_eq!(all["top_grids"][0]["key"], "grid-7");
        assert_eq!(all["by_township"][0]["key"], "330106001");
        assert_eq!(all["by_township"][0]["cases"], 3);
        assert_eq!(all["daily"].as_array().unwrap().len(), 30);
        let today_total: i64 = all["daily"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["cases"].as_i64().unwrap())
            .sum();
        assert_eq!(today_total, 3);
        let police = stats(&hub.police_token).await;
        assert_eq!(police["totals"]["cases"], 2, "only the police's own");

        let bad = hub
            .get(
                "/api/v1/stats?from=2026-02-01&to=2026-01-01",
                &hub.operator_token,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let past: Value = hub
            .get_json(
                "/api/v1/stats?from=2020-01-01&to=2020-01-31",
                &hub.operator_token,
            )
            .await;
        assert_eq!(past["totals"]["cases"], 0);
    }
);

on_both_backends!(
    the_case_queue_filters_by_risk_and_deadline,
    |hub: TestHub| async move {
        let mut high = event("event:0407");
        high["severity"] = json!("high");
        let mut low = event("event:0501");
        low["severity"] = json!("low");
        low["location"]["lat"] = json!(31.0);
        low["location"]["area_code"] = json!("330106002001");
        hub.post_events(vec![high, low]).await;
        let total = |query: &'static str| {
            let req = hub.get(&format!("/api/v1/cases?{query}"), &hub.operator_token);
            async move {
                let resp = req.send().await.unwrap();
                let status = resp.status();
                (status, resp.json::<Value>().await.unwrap())
            }
        };
        assert_eq!(total("severity=high").await.1["total"], 1);
        assert_eq!(total("severity=low").await.1["total"], 1);
        // Just dispatched with hours to go: nothing is overdue yet.
        assert_eq!(total("overdue=true").await.1["total"], 0);
        let (status, body) = total("severity=urgent").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"]["field"], "severity");
        // By township or county.
        assert_eq!(total("area=330106001").await.1["total"], 1);
        assert_eq!(total("area=330106").await.1["total"], 2);
        assert_eq!(total("area=33").await.0, StatusCode::UNPROCESSABLE_ENTITY);
        // Orders: high risk first; the one with a deadline first; newest first.
        let first = |body: Value| body["items"][0]["severity"].clone();
        assert_eq!(first(total("sort=risk").await.1), "high");
        assert_eq!(
            first(total("sort=due").await.1),
            "high",
            "only the routed case has a deadline"
        );
        assert_eq!(
            first(total("sort=newest").await.1),
            "low",
            "posted last in the batch"
        );
        assert_eq!(total("sort=oldest").await.1["error"]["field"], "sort");
    }
);

on_both_backends!(
    paths_outside_the_api_serve_the_page,
    |hub: TestHub| async move {
        let missing = hub
            .get("/api/v1/nothing-here", &hub.operator_token)
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let body: Value = missing.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found");
        // This hub has no built dashboard: the page says how to build one.
        let page = hub
            .client
            .get(format!("{}/", hub.url))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::NOT_FOUND);
        assert!(
            page.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert!(page.text().await.unwrap().contains("npm run build"));
    }
);

on_both_backends!(
    the_area_map_fills_in_places_and_feeds_the_map,
    |hub: TestHub| async move {
        let mut bare = event("event:0501");
        bare["location"] = json!({"lat": 30.2741, "lon": 120.1551});
        let mut elsewhere = event("event:0501");
        elsewhere["location"] = json!({"lat": 31.5, "lon": 121.5});
        // What a gateway says stands, even where the map would say otherwise.
        let mut named = event("event:0501");
        named["location"] =
            json!({"lat": 30.2741, "lon": 120.1551, "area_code": "330106002", "grid": "own-grid"});
        hub.post_events(vec![bare.clone(), elsewhere.clone(), named.clone()])
            .await;
        let place = |id: Value| {
            let req = hub.get("/api/v1/events?limit=10", &hub.operator_token);
            async move {
                let list: Value = req.send().await.unwrap().json().await.unwrap();
                list["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|e| e["id"] == id)
                    .unwrap()["location"]
                    .clone()
            }
        };
        let filled = place(bare["id"].clone()).await;
        assert_eq!(filled["area_code"], "330106001001");
        assert_eq!(filled["grid"], "G-001-02");
        let outside = place(elsewhere["id"].clone()).await;
        assert_eq!(outside["area_code"], Value::Null);
        assert_eq!(outside["grid"], Value::Null);
        let kept = place(named["id"].clone()).await;
        assert_eq!(kept["area_code"], "330106002");
        assert_eq!(kept["grid"], "own-grid");

        let map: Value = hub.get_json("/api/v1/map", &hub.police_token).await;
        assert_eq!(map["tile_url"], Value::Null);
        assert_eq!(map["areas"]["features"].as_array().unwrap().len(), 8);
        let gateway = hub
            .get("/api/v1/map", &hub.gateway_token)
            .send()
            .await
            .unwrap();
        assert_eq!(gateway.status(), StatusCode::FORBIDDEN);
    }
);

// Indicators checked against a hand-computed fixture: six cases through the real API,
// two of them made late by moving their deadline into the past.
on_both_backends!(
    indicators_match_a_hand_computed_fixture,
    |hub: TestHub| async move {
        let mut events = Vec::new();
        for (i, category) in [
            "event:0407",
            "event:0407",
            "event:0407",
            "event:0407",
            "event:0501",
            "event:0501",
        ]
        .into_iter()
        .enumerate()
        {
            let mut e = event(category);
            e["location"]["lat"] = json!(30.0 + i as f64);
            events.push(e);
        }
        hub.post_events(events.clone()).await;
        let list: Value = hub
            .get_json("/api/v1/events?limit=10", &hub.operator_token)
            .await;
        let case_of = |i: usize| -> String {
            list["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["id"] == events[i]["id"])
                .unwrap()["case_id"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let (a, b, c, _d, e, f) = (
            case_of(0),
            case_of(1),
            case_of(2),
            case_of(3),
            case_of(4),
            case_of(5),
        );
        sqlx::any::install_default_drivers();
        let db = sqlx::AnyPool::connect(&hub.database_url).await.unwrap();
        for late in [&b, &c] {
            let past = (chrono::Utc::now() - chrono::Duration::hours(1)).timestamp_millis();
            sqlx::query("UPDATE cases SET due_at = $1 WHERE id = $2")
                .bind(past)
                .bind(late.as_str())
                .execute(&db)
                .await
                .unwrap();
        }
        let act = |id: String, token: String, action: &'static str| {
            let req = hub.post_json(
                &format!("/api/v1/cases/{id}/actions"),
                &token,
                &json!({"action": action, "reason": "fixture"}),
            );
            async move {
                let resp = req.send().await.unwrap();
                assert_eq!(
                    resp.status(),
                    StatusCode::OK,
                    "{action}: {}",
                    resp.text().await.unwrap()
                );
            }
        };
        let (op, police) = (hub.operator_token.clone(), hub.police_token.clone());
        // A: closed on time after one rework.
        for (token, action) in [
            (&police, "accept"),
            (&police, "handle"),
            (&op, "verify"),
            (&op, "rework"),
            (&police, "handle"),
            (&op, "verify"),
            (&op, "close"),
        ] {
            act(a.clone(), token.clone(), action).await;
        }
        // B: closed after its deadline.
        for (token, action) in [
            (&police, "accept"),
            (&police, "handle"),
            (&op, "verify"),
            (&op, "close"),
        ] {
            act(b.clone(), token.clone(), action).await;
        }
        // E: a false alarm. C stays overdue.
        act(e, op.clone(), "void").await;
        // F: dispatched by the centre after its dispatch deadline (A–D were routed at once).
        let past = (chrono::Utc::now() - chrono::Duration::hours(1)).timestamp_millis();
        sqlx::query("UPDATE cases SET dispatch_due_at = $1 WHERE id = $2")
            .bind(past)
            .bind(f.as_str())
            .execute(&db)
            .await
            .unwrap();
        let resp = hub
            .post_json(
                &format!("/api/v1/cases/{f}/actions"),
                &op,
                &json!({"action": "dispatch", "department": "police", "time_limit": "2 working_days"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);

        let stats: Value = hub.get_json("/api/v1/stats", &hub.operator_token).await;
        let t = &stats["totals"];
        assert_eq!(t["cases"], 6);
        assert_eq!(t["closed"], 2);
        assert_eq!(t["void"], 1);
        assert_eq!(t["open"], 3);
        assert_eq!(t["overdue"], 1, "C");
        assert_eq!(t["due_to_close"], 3, "A, B and C");
        assert_eq!(t["on_time"], 1, "A");
        assert_eq!(t["closure_rate"].as_f64(), Some(2.0 / 3.0));
        assert_eq!(t["on_time_closure_rate"].as_f64(), Some(1.0 / 3.0));
        assert_eq!(t["rework_rate"].as_f64(), Some(0.5));
        assert_eq!(
            t["on_time_dispatch_rate"].as_f64(),
            Some(0.8),
            "A-D routed at once, F late"
        );
        assert_eq!(
            t["on_time_handling_rate"].as_f64(),
            Some(0.5),
            "A handled in time (last), B after its deadline"
        );
        let hours = t["avg_handle_hours"].as_f64().unwrap();
        assert!(
            (0.0..0.1).contains(&hours),
            "closed within seconds: {hours}"
        );
        let police_row = &stats["by_department"][0];
        assert_eq!(police_row["key"], "police");
        assert_eq!(police_row["closure_rate"].as_f64(), Some(2.0 / 3.0));
        // C was dispatched and is overdue; the case is left to run.
        let _ = c;
    }
);

on_both_backends!(
    departments_add_photos_to_their_cases,
    |hub: TestHub| async move {
        hub.post_events(vec![event("event:0407")]).await;
        let cases: Value = hub.get_json("/api/v1/cases", &hub.police_token).await;
        let id = cases["items"][0]["id"].as_str().unwrap().to_owned();
        // A tiny but real PNG header is enough for the type check.
        let photo = b"\x89PNG\r\n\x1a\nafter the fix".to_vec();
        let upload = |token: &str, kind: &str, content_type: &str, body: Vec<u8>| {
            hub.client
                .post(format!("{}/api/v1/cases/{id}/photos?kind={kind}", hub.url))
                .bearer_auth(token)
                .header("content-type", content_type)
                .body(body)
                .send()
        };
        let first = upload(&hub.police_token, "after", "image/png", photo.clone())
            .await
            .unwrap();
        assert_eq!(first.status(), StatusCode::CREATED);
        let url = first.json::<Value>().await.unwrap()["url"]
            .as_str()
            .unwrap()
            .to_owned();
        let again = upload(&hub.police_token, "after", "image/png", photo.clone())
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::OK, "the same photo once");
        assert_eq!(
            upload(&hub.fire_token, "after", "image/png", photo.clone())
                .await
                .unwrap()
                .status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            upload(&hub.police_token, "during", "image/png", photo.clone())
                .await
                .unwrap()
                .status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            upload(&hub.police_token, "after", "image/jpeg", photo.clone())
                .await
                .unwrap()
                .status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "PNG bytes are no JPEG"
        );
        assert_eq!(
            upload(&hub.police_token, "after", "text/plain", b"hello".to_vec())
                .await
                .unwrap()
                .status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        let detail: Value = hub
            .get_json(&format!("/api/v1/cases/{id}"), &hub.operator_token)
            .await;
        let attachments = detail["attachments"].as_array().unwrap();
        assert_eq!(attachments.len(), 1);
        assert_eq!(attachments[0]["kind"], "after");
        assert_eq!(attachments[0]["uploaded_by"], "user:police-1");
        assert!(
            detail["timeline"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["action"] == "photo")
        );
        // The department reads its own photo; another department cannot.
        let own = hub.get(&url, &hub.police_token).send().await.unwrap();
        assert_eq!(own.status(), StatusCode::OK);
        assert_eq!(own.bytes().await.unwrap().as_ref(), photo.as_slice());
        assert_eq!(
            hub.get(&url, &hub.fire_token)
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::NOT_FOUND
        );
    }
);

/// Two hubs on one PostgreSQL database: a dashboard on one sees what the other stored.
#[tokio::test]
async fn the_live_feed_spans_hub_replicas_on_postgres() {
    let Some(hub) = crate::support::spawn(crate::support::Backend::Postgres).await else {
        return;
    };
    let config = hub::Config::try_from(hub::RawConfig {
        database_url: hub.database_url.clone(),
        ..hub::RawConfig::default()
    })
    .unwrap();
    let store = hub::Store::connect(&hub.database_url).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other_url = format!("http://{}", listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(hub::run(config, store, listener, stop.clone()));

    // Posts one event through the other replica.
    let post_elsewhere = |event: &Value| {
        hub.client
            .post(format!("{other_url}/api/v1/events"))
            .bearer_auth(&hub.gateway_token)
            .json(&crate::support::batch(vec![event.clone()]))
            .send()
    };

    let mut feed = subscribe(&hub, &hub.operator_token).await;
    let elsewhere = event("event:0501");
    let resp = post_elsewhere(&elsewhere).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let here = event("event:0501");
    hub.post_events(vec![here.clone()]).await;
    let seen = read_events(&mut feed, "event", 2).await;
    assert_eq!(
        seen[0]["event"]["id"], elsewhere["id"],
        "from the other replica"
    );
    assert_eq!(seen[1]["event"]["id"], here["id"], "and from its own");

    // A crowd of a hundred: the live item leaves its boxes out (they are drawn on the
    // snapshot, and the stored event keeps them). With them it would not fit a
    // notification, and dashboards would only be told to reload, without the alert.
    let mut crowd = event("event:0501");
    crowd["severity"] = json!("high");
    crowd["detection"]["objects"] = (0..100)
        .map(|i| {
            json!({"class": "person", "score": 0.9,
                   "bbox": {"x": 0.009 * f64::from(i), "y": 0.4, "w": 0.008, "h": 0.05}})
        })
        .collect();
    crowd["detection"]["counts"] = json!({"person": 100});
    let resp = post_elsewhere(&crowd).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let seen = read_events(&mut feed, "event", 1).await;
    let item = &seen[0]["event"];
    assert_eq!(item["id"], crowd["id"]);
    assert_eq!(item["detection"]["counts"]["person"], 100);
    assert_eq!(item["detection"]["objects"], json!([]));
    stop.cancel();
}
