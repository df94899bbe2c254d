//! The HTTP API as gateways, operators and departments use it.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::on_both_backends;
use crate::support::{TestHub, batch, event};

async fn json(resp: reqwest::Response) -> Value {
    resp.json().await.unwrap()
}

on_both_backends!(ingest_requires_a_gateway_token, |hub: TestHub| async move {
    let body = batch(vec![event("event:0407")]);
    let anonymous = hub
        .client
        .post(format!("{}/api/v1/events", hub.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    let wrong = hub
        .post_json("/api/v1/events", "gw_not-a-token", &body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let operator = hub
        .post_json("/api/v1/events", &hub.operator_token, &body)
        .send()
        .await
        .unwrap();
    assert_eq!(operator.status(), StatusCode::FORBIDDEN);
    let mut other = body.clone();
    other["gateway_id"] = "gw-other".into();
    let spoofed = hub
        .post_json("/api/v1/events", &hub.gateway_token, &other)
        .send()
        .await
        .unwrap();
    assert_eq!(spoofed.status(), StatusCode::FORBIDDEN);
    let cases = hub.get_json("/api/v1/cases", &hub.operator_token).await;
    assert_eq!(cases["total"], 0);
});

on_both_backends!(
    ingest_is_idempotent_and_routes_by_the_ownership_list,
    |hub: TestHub| async move {
        let crowd = event("event:0407");
        let unowned = event("event:0501");
        let body = batch(vec![crowd.clone(), unowned.clone()]);
        for _ in 0..2 {
            let resp = hub
                .post_json("/api/v1/events", &hub.gateway_token, &body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            let ack = json(resp).await;
            assert_eq!(ack["accepted"], json!([crowd["id"], unowned["id"]]));
            assert_eq!(ack["rejected"], json!([]));
        }
        let cases = hub.get_json("/api/v1/cases", &hub.operator_token).await;
        assert_eq!(
            cases["total"], 2,
            "a redelivered batch must not open more cases: {cases}"
        );
        let events = hub.get_json("/api/v1/events", &hub.operator_token).await;
        assert_eq!(events["total"], 2);

        let routed = hub
            .get_json("/api/v1/cases?queue=department", &hub.operator_token)
            .await;
        assert_eq!(routed["total"], 1);
        let case = &routed["items"][0];
        assert_eq!(case["department"], "police");
        assert_eq!(case["state"], "dispatched");
        assert_eq!(case["time_limit"], "2 urgent_hours");
        assert_eq!(case["closing_condition"], "crowd dispersed");
        let opened =
            chrono::DateTime::parse_from_rfc3339(case["opened_at"].as_str().unwrap()).unwrap();
        let due = chrono::DateTime::parse_from_rfc3339(case["due_at"].as_str().unwrap()).unwrap();
        assert_eq!(due - opened, chrono::Duration::hours(2));

        let review = hub
            .get_json("/api/v1/cases?queue=joint_review", &hub.operator_token)
            .await;
        assert_eq!(
            review["total"], 1,
            "an unowned category must wait in joint review, not vanish"
        );
        assert_eq!(review["items"][0]["category"], "event:0501");
        assert_eq!(review["items"][0]["department"], Value::Null);

        let id = case["id"].as_str().unwrap();
        let detail = hub
            .get_json(&format!("/api/v1/cases/{id}"), &hub.operator_token)
            .await;
        assert_eq!(detail["events"][0]["id"], crowd["id"]);
        assert_eq!(
            detail["events"][0]["event"]["detection"]["counts"]["person"],
            1
        );
        assert_eq!(detail["timeline"][0]["to_state"], "dispatched");
        assert_eq!(detail["timeline"][0]["actor"], "gateway:gw-test");
    }
);

on_both_backends!(
    bad_bodies_get_clear_errors_and_lose_nothing,
    |hub: TestHub| async move {
        let post_raw = |body: &'static str, content_type: &'static str| {
            hub.client
                .post(format!("{}/api/v1/events", hub.url))
                .bearer_auth(&hub.gateway_token)
                .header("content-type", content_type)
                .body(body)
                .send()
        };
        let resp = post_raw("{not json", "application/json").await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(json(resp).await["error"]["code"], "bad_request");
        let resp = post_raw("{}", "text/plain").await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

        let mut missing = event("event:0407");
        missing.as_object_mut().unwrap().remove("location");
        let resp = hub
            .post_json("/api/v1/events", &hub.gateway_token, &batch(vec![missing]))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let err = json(resp).await;
        assert_eq!(err["error"]["field"], "events[0].location", "{err}");

        let mut wrong_type = event("event:0407");
        wrong_type["location"]["lat"] = "north".into();
        let resp = hub
            .post_json(
                "/api/v1/events",
                &hub.gateway_token,
                &batch(vec![wrong_type]),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(json(resp).await["error"]["field"], "events[0].location.lat");

        // An out-of-range event is rejected alone; the good one beside it is stored.
        let good = event("event:0407");
        let mut bad = event("event:0407");
        bad["location"]["lat"] = 123.0.into();
        let resp = hub
            .post_json(
                "/api/v1/events",
                &hub.gateway_token,
                &batch(vec![bad.clone(), good.clone()]),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let ack = json(resp).await;
        assert_eq!(ack["accepted"], json!([good["id"]]));
        assert_eq!(ack["rejected"][0]["id"], bad["id"]);
        assert!(
            ack["rejected"][0]["reason"]
                .as_str()
                .unwrap()
                .contains("events[0].location.lat"),
            "{ack}"
        );

        let big = batch((0..400).map(|_| event("event:0407")).collect());
        let resp = hub
            .post_json("/api/v1/events", &hub.gateway_token, &big)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);

        let resp = hub
            .get("/api/v1/cases?state=nonsense", &hub.operator_token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let resp = hub
            .get("/api/v1/cases?limit=many", &hub.operator_token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

        let cases = hub.get_json("/api/v1/cases", &hub.operator_token).await;
        assert_eq!(cases["total"], 1, "only the one good event opened a case");
    }
);

on_both_backends!(
    evidence_is_stored_by_hash_and_shown_by_role,
    |hub: TestHub| async move {
        let jpeg: &[u8] = b"\xFF\xD8\xFF\xE0 not really a picture, but it starts like one";
        let sha = hex::encode(Sha256::digest(jpeg));
        let path = format!("/api/v1/blobs/{sha}");
        let put = |token: &str, content_type: &'static str, body: &'static [u8], path: &str| {
            hub.put(path, token)
                .header("content-type", content_type)
                .body(body)
                .send()
        };
        let wrong_name = format!("/api/v1/blobs/{}", "0".repeat(64));
        assert_eq!(
            put(&hub.gateway_token, "image/jpeg", jpeg, &wrong_name)
                .await
                .unwrap()
                .status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            put(&hub.gateway_token, "image/gif", jpeg, &path)
                .await
                .unwrap()
                .status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        assert_eq!(
            put(&hub.gateway_token, "image/png", jpeg, &path)
                .await
                .unwrap()
                .status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            put(&hub.operator_token, "image/jpeg", jpeg, &path)
                .await
                .unwrap()
                .status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            put(&hub.gateway_token, "image/jpeg", jpeg, &path)
                .await
                .unwrap()
                .status(),
            StatusCode::CREATED
        );
        assert_eq!(
            put(&hub.gateway_token, "image/jpeg", jpeg, &path)
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );

        let mut crowd = event("event:0407");
        crowd["evidence"] = json!([{"kind": "snapshot", "sha256": sha, "content_type": "image/jpeg", "bytes": jpeg.len()}]);
        let resp = hub
            .post_json("/api/v1/events", &hub.gateway_token, &batch(vec![crowd]))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);

        let resp = hub.get(&path, &hub.operator_token).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "image/jpeg");
        assert_eq!(&resp.bytes().await.unwrap()[..], jpeg);
        assert_eq!(
            hub.get(&path, &hub.police_token)
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
        assert_eq!(
            hub.get(&path, &hub.fire_token)
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            hub.get(&path, &hub.technician_token)
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::FORBIDDEN
        );

        let cases = hub.get_json("/api/v1/cases", &hub.operator_token).await;
        let id = cases["items"][0]["id"].as_str().unwrap();
        let detail = hub
            .get_json(&format!("/api/v1/cases/{id}"), &hub.operator_token)
            .await;
        assert_eq!(detail["evidence_urls"], json!([path]));
    }
);

on_both_backends!(
    a_clip_is_evidence_and_a_photo_must_be_an_image,
    |hub: TestHub| async move {
        let mp4: &[u8] = b"\0\0\0\x18ftypisom not a whole film, but it starts like one";
        let sha = hex::encode(Sha256::digest(mp4));
        let path = format!("/api/v1/blobs/{sha}");
        let put = |content_type: &'static str, body: &'static [u8]| {
            hub.put(&path, &hub.gateway_token)
                .header("content-type", content_type)
                .body(body)
                .send()
        };
        let jpeg: &[u8] = b"\xFF\xD8\xFF\xE0 a picture";
        let status = put("video/mp4", jpeg).await.unwrap().status();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "not an MP4");
        assert_eq!(
            put("video/mp4", mp4).await.unwrap().status(),
            StatusCode::CREATED
        );
        let resp = hub.get(&path, &hub.operator_token).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "video/mp4");
        assert_eq!(&resp.bytes().await.unwrap()[..], mp4);

        // A photo added to a case is an image, never a clip.
        hub.post_events(vec![event("event:0407")]).await;
        let cases = hub.get_json("/api/v1/cases", &hub.operator_token).await;
        let id = cases["items"][0]["id"].as_str().unwrap();
        let resp = hub
            .client
            .post(format!("{}/api/v1/cases/{id}/photos?kind=before", hub.url))
            .bearer_auth(&hub.operator_token)
            .header("content-type", "video/mp4")
            .body(mp4)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
);

on_both_backends!(
    departments_see_only_their_own_cases,
    |hub: TestHub| async move {
        let body = batch(vec![event("event:0407"), event("event:0501")]);
        hub.post_json("/api/v1/events", &hub.gateway_token, &body)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
        let police = hub.get_json("/api/v1/cases", &hub.police_token).await;
        assert_eq!(police["total"], 1);
        assert_eq!(police["items"][0]["department"], "police");
        // Asking for another department's cases still yields only one's own.
        let fire = hub
            .get_json("/api/v1/cases?department=police", &hub.fire_token)
            .await;
        assert_eq!(fire["total"], 0, "{fire}");
        let id = police["items"][0]["id"].as_str().unwrap();
        let resp = hub
            .get(&format!("/api/v1/cases/{id}"), &hub.fire_token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let resp = hub
            .get(&format!("/api/v1/cases/{id}"), &hub.police_token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        for token in [&hub.technician_token, &hub.gateway_token] {
            let resp = hub.get("/api/v1/cases", token).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        }
        assert_eq!(
            hub.get("/api/v1/events", &hub.police_token)
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::FORBIDDEN
        );
        let health = hub
            .client
            .get(format!("{}/healthz", hub.url))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), StatusCode::OK);
    }
);

on_both_backends!(
    concurrent_gateways_are_all_stored,
    |hub: TestHub| async move {
        // Several batches at once: writers must queue for the database, not fail, and
        // correlation must not open a case per concurrent batch.
        let posts = (0..8).map(|_| {
            let body = batch((0..20).map(|_| event("event:0407")).collect());
            let request = hub.post_json("/api/v1/events", &hub.gateway_token, &body);
            async move { request.send().await.unwrap().status() }
        });
        let statuses = futures::future::join_all(posts).await;
        assert!(
            statuses.iter().all(|s| *s == StatusCode::OK),
            "{statuses:?}"
        );
        let events = hub
            .get_json("/api/v1/events?limit=1", &hub.operator_token)
            .await;
        assert_eq!(events["total"], 160);
        let cases = hub
            .get_json("/api/v1/cases?limit=1", &hub.operator_token)
            .await;
        assert_eq!(cases["total"], 1, "one place, one category: one case");
    }
);

on_both_backends!(
    events_at_one_place_join_one_open_case,
    |hub: TestHub| async move {
        let post = |events: Vec<Value>| {
            let request = hub.post_json("/api/v1/events", &hub.gateway_token, &batch(events));
            async move { assert_eq!(request.send().await.unwrap().status(), StatusCode::OK) }
        };
        let first = event("event:0407");
        let mut nearby = event("event:0407");
        nearby["location"]["lat"] = (30.27 + 0.0002).into(); // ~22 m north
        nearby["severity"] = "high".into();
        nearby["source"] = json!({"type": "patrol_terminal", "terminal_id": "t-01"});
        let mut far = event("event:0407");
        far["location"]["lat"] = (30.27 + 0.01).into(); // ~1.1 km north
        let mut other_kind = event("event:0501");
        other_kind["location"] = first["location"].clone();
        post(vec![first.clone(), nearby.clone(), far, other_kind]).await;

        let cases = hub
            .get_json("/api/v1/cases?category=event:0407", &hub.operator_token)
            .await;
        assert_eq!(
            cases["total"], 2,
            "the far event opens its own case: {cases}"
        );
        let joined = cases["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["lat"] == 30.27)
            .unwrap();
        assert_eq!(
            joined["severity"], "high",
            "a more serious event raises the case"
        );
        let id = joined["id"].as_str().unwrap();
        let detail = hub
            .get_json(&format!("/api/v1/cases/{id}"), &hub.operator_token)
            .await;
        let ids: Vec<&Value> = detail["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["id"])
            .collect();
        assert_eq!(ids, vec![&first["id"], &nearby["id"]]);
        assert_eq!(detail["timeline"][1]["action"], "attach_event");

        // A closed case is not joined: the same place later opens a new case.
        let close = json!({"action": "force_close", "reason": "test"});
        let resp = hub
            .post_json(
                &format!("/api/v1/cases/{id}/actions"),
                &hub.operator_token,
                &close,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        post(vec![event("event:0407")]).await;
        let cases = hub
            .get_json("/api/v1/cases?category=event:0407", &hub.operator_token)
            .await;
        assert_eq!(cases["total"], 3);
    }
);

on_both_backends!(
    gateways_are_listed_without_their_tokens,
    |hub: TestHub| async move {
        let before = hub
            .get_json("/api/v1/gateways", &hub.technician_token)
            .await;
        assert_eq!(before[0]["id"], "gw-test");
        assert_eq!(
            before[0]["last_seen_at"],
            Value::Null,
            "it has not called yet"
        );
        hub.post_events(vec![event("event:0407")]).await;
        let after = hub.get_json("/api/v1/gateways", &hub.operator_token).await;
        assert!(after[0]["last_seen_at"].is_string(), "{after}");
        assert!(
            !after.to_string().contains(&hub.gateway_token) && after[0].get("token_hash").is_none()
        );
        for token in [&hub.police_token, &hub.gateway_token] {
            assert_eq!(
                hub.get("/api/v1/gateways", token)
                    .send()
                    .await
                    .unwrap()
                    .status(),
                StatusCode::FORBIDDEN
            );
        }
    }
);
