//! Patrol terminals at the hub: presence from gateway reports, tasks out to terminals and
//! their answers back onto the case's timeline.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::on_both_backends;
use crate::support::{TestHub, batch, event};

async fn json(resp: reqwest::Response) -> Value {
    resp.json().await.unwrap()
}

fn report(terminals: Value, task_acks: Value) -> Value {
    json!({"v": 1, "gateway_id": "gw-test", "version": "0.1.0", "outbox_pending": 3,
           "terminals": terminals, "task_acks": task_acks})
}

async fn send_report(hub: &TestHub, body: &Value) -> reqwest::Response {
    hub.put("/api/v1/gateway/report", &hub.gateway_token)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// A case to send terminals to.
async fn a_case(hub: &TestHub) -> String {
    let resp = hub
        .post_json(
            "/api/v1/events",
            &hub.gateway_token,
            &batch(vec![event("component:0114")]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cases = hub.get_json("/api/v1/cases", &hub.operator_token).await;
    cases["items"][0]["id"].as_str().unwrap().to_owned()
}

on_both_backends!(
    tasks_reach_the_terminals_gateway_and_answers_reach_the_case,
    |hub: TestHub| async move {
        let online = json!([
            {"terminal_id": "t-1", "presence": "online", "since": "2026-11-22T08:00:00Z",
             "position": {"lat": 30.27, "lon": 120.15, "at": "2026-11-22T08:01:00Z"}},
            {"terminal_id": "t-2", "presence": "offline", "since": "2026-11-22T07:00:00Z"}
        ]);
        let ack = json(send_report(&hub, &report(online.clone(), json!([]))).await).await;
        assert_eq!(ack["tasks"], json!([]));
        let terminals = hub
            .get_json("/api/v1/terminals", &hub.technician_token)
            .await;
        assert_eq!(terminals[0]["id"], "t-1");
        assert_eq!(terminals[0]["presence"], "online");
        assert_eq!(terminals[0]["lat"], 30.27);
        assert_eq!(terminals[1]["presence"], "offline");

        let case = a_case(&hub).await;
        let task_body =
            json!({"terminal_id": "t-1", "kind": "verify", "title": "核实井盖 check the cover"});
        let path = format!("/api/v1/cases/{case}/tasks");
        let police = hub
            .post_json(&path, &hub.police_token, &task_body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            police.status(),
            StatusCode::FORBIDDEN,
            "departments do not send tasks"
        );
        let unknown = hub
            .post_json(
                &path,
                &hub.operator_token,
                &json!({"terminal_id": "t-9", "kind": "verify", "title": "x"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
        let created = hub
            .post_json(&path, &hub.operator_token, &task_body)
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        let task = json(created).await;
        let task_id = task["id"].as_str().unwrap().to_owned();
        assert_eq!(task["state"], "pending");

        // The gateway's next report brings the task, again until it is done.
        for _ in 0..2 {
            let ack = json(send_report(&hub, &report(online.clone(), json!([]))).await).await;
            assert_eq!(ack["tasks"][0]["terminal_id"], "t-1");
            assert_eq!(ack["tasks"][0]["task"]["task_id"], task_id);
            assert_eq!(ack["tasks"][0]["task"]["case_id"], case);
            assert_eq!(ack["tasks"][0]["task"]["lat"], 30.27);
        }
        // An answer from the wrong terminal changes nothing.
        let forged = json!([{"terminal_id": "t-2", "task_id": task_id, "state": "done",
                             "at": "2026-11-22T08:05:00Z"}]);
        assert_eq!(
            send_report(&hub, &report(online.clone(), forged))
                .await
                .status(),
            StatusCode::OK
        );
        let received = json!([{"terminal_id": "t-1", "task_id": task_id, "state": "received",
                               "at": "2026-11-22T08:05:00Z"}]);
        let ack = json(send_report(&hub, &report(online.clone(), received)).await).await;
        assert_eq!(
            ack["tasks"].as_array().unwrap().len(),
            1,
            "received is not done"
        );
        let done = json!([{"terminal_id": "t-1", "task_id": task_id, "state": "done",
                           "at": "2026-11-22T08:20:00Z", "note": "井盖确已破损 the cover is broken"}]);
        let ack = json(send_report(&hub, &report(online.clone(), done.clone())).await).await;
        assert_eq!(ack["tasks"], json!([]));
        // Sent twice (the gateway retries until the hub answers): recorded once.
        send_report(&hub, &report(online, done)).await;

        let detail = hub
            .get_json(&format!("/api/v1/cases/{case}"), &hub.operator_token)
            .await;
        assert_eq!(detail["tasks"][0]["state"], "done");
        assert_eq!(
            detail["tasks"][0]["reply"],
            "井盖确已破损 the cover is broken"
        );
        let actions: Vec<&str> = detail["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["action"].as_str())
            .filter(|a| a.starts_with("task_"))
            .collect();
        assert_eq!(actions, ["task_assigned", "task_received", "task_done"]);
    }
);

on_both_backends!(
    bad_or_foreign_reports_are_refused,
    |hub: TestHub| async move {
        let mut spoofed = report(json!([]), json!([]));
        spoofed["gateway_id"] = "gw-other".into();
        assert_eq!(
            send_report(&hub, &spoofed).await.status(),
            StatusCode::FORBIDDEN
        );
        let bad_position = report(
            json!([{"terminal_id": "t-1", "presence": "online", "since": "2026-11-22T08:00:00Z",
                "position": {"lat": 95.0, "lon": 120.0, "at": "2026-11-22T08:00:00Z"}}]),
            json!([]),
        );
        let resp = send_report(&hub, &bad_position).await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = json(resp).await;
        assert_eq!(
            body["error"]["field"], "terminals[0].position.lat",
            "{body}"
        );
        let operator = hub
            .put("/api/v1/gateway/report", &hub.operator_token)
            .json(&report(json!([]), json!([])))
            .send()
            .await
            .unwrap();
        assert_eq!(operator.status(), StatusCode::FORBIDDEN);
        let police = hub
            .get("/api/v1/terminals", &hub.police_token)
            .send()
            .await
            .unwrap();
        assert_eq!(police.status(), StatusCode::FORBIDDEN);
    }
);

on_both_backends!(
    cameras_are_shown_as_their_gateway_reports_them,
    |hub: TestHub| async move {
        let camera = |state: &str, fps: f64, error: Option<&str>| {
            let mut r = report(json!([]), json!([]));
            r["cameras"] = json!([{
                "camera_id": "cam-gate", "name": "东门 east gate", "state": state, "fps": fps,
                "last_frame_at": "2026-11-23T08:00:00Z", "reconnects": 2, "events_raised": 7,
                "last_event_at": "2026-11-23T07:59:00Z",
                "last_error": error
            }]);
            r
        };
        assert_eq!(
            send_report(&hub, &camera("streaming", 9.5, None))
                .await
                .status(),
            StatusCode::OK
        );
        assert_eq!(
            send_report(&hub, &camera("retrying", 0.0, Some("connection refused")))
                .await
                .status(),
            StatusCode::OK
        );
        let cameras = hub.get_json("/api/v1/cameras", &hub.technician_token).await;
        assert_eq!(cameras.as_array().unwrap().len(), 1, "{cameras}");
        let cam = &cameras[0];
        assert_eq!(cam["gateway_id"], "gw-test");
        assert_eq!(cam["state"], "retrying", "the latest report wins");
        assert_eq!(cam["last_error"], "connection refused");
        assert_eq!(cam["events_raised"], 7);
        assert_eq!(cam["last_event_at"], "2026-11-23T07:59:00Z");

        let resp = send_report(&hub, &camera("streaming", f64::from(-1), None)).await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(json(resp).await["error"]["field"], "cameras[0].fps");
        let resp = send_report(&hub, &camera("melting", 1.0, None)).await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let police = hub
            .get("/api/v1/cameras", &hub.police_token)
            .send()
            .await
            .unwrap();
        assert_eq!(police.status(), StatusCode::FORBIDDEN);
    }
);

on_both_backends!(
    a_handled_camera_case_is_reinspected_by_its_camera,
    |hub: TestHub| async move {
        hub.post_events(vec![event("event:0407")]).await;
        let cases = hub.get_json("/api/v1/cases", &hub.operator_token).await;
        let id = cases["items"][0]["id"].as_str().unwrap().to_owned();
        let act = |body: Value| {
            hub.post_json(
                &format!("/api/v1/cases/{id}/actions"),
                &hub.police_token,
                &body,
            )
            .send()
        };
        assert_eq!(
            act(json!({"action": "accept"})).await.unwrap().status(),
            StatusCode::OK
        );
        let ack = json(send_report(&hub, &report(json!([]), json!([]))).await).await;
        assert_eq!(ack.get("reinspections"), None, "nothing to look at yet");
        assert_eq!(
            act(json!({"action": "handle", "reason": "dispersed"}))
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );

        // The camera's gateway is asked to look again, where the event saw the crowd, and
        // is asked again each report until it answers.
        for _ in 0..2 {
            let ack = json(send_report(&hub, &report(json!([]), json!([]))).await).await;
            let asked = ack["reinspections"].as_array().unwrap();
            assert_eq!(asked.len(), 1, "{ack}");
            assert_eq!(asked[0]["case_id"], id.as_str());
            assert_eq!(asked[0]["camera_id"], "cam-1");
            assert_eq!(asked[0]["category"], "event:0407");
            assert_eq!(asked[0]["bbox"]["w"], 0.2);
        }
        let ack = json(send_report(&hub, &report(json!([]), json!([]))).await).await;
        let request_id = ack["reinspections"][0]["id"].clone();

        // It answers with a snapshot it uploaded first; the answer goes on the case.
        let jpeg: &[u8] = b"\xFF\xD8\xFF\xE0 the square, empty again";
        let sha = hex::encode(Sha256::digest(jpeg));
        let put = hub
            .put(&format!("/api/v1/blobs/{sha}"), &hub.gateway_token)
            .header("content-type", "image/jpeg")
            .body(jpeg)
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), StatusCode::CREATED);
        let mut answered = report(json!([]), json!([]));
        answered["reinspections"] = json!([{
            "id": request_id, "outcome": "cleared", "checked_at": "2026-11-22T09:00:00Z",
            "frames": 5, "score": 0.12, "snapshot": sha
        }]);
        for _ in 0..2 {
            let resp = send_report(&hub, &answered).await;
            assert_eq!(resp.status(), StatusCode::OK);
            assert_eq!(json(resp).await.get("reinspections"), None);
        }
        let detail = hub
            .get_json(&format!("/api/v1/cases/{id}"), &hub.police_token)
            .await;
        let r = &detail["reinspections"][0];
        assert_eq!(r["outcome"], "cleared", "{detail}");
        assert_eq!(r["frames"], 5);
        assert_eq!(r["snapshot_url"], format!("/api/v1/blobs/{sha}"));
        let actions: Vec<&str> = detail["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["action"].as_str().unwrap())
            .filter(|a| a.starts_with("reinspection"))
            .collect();
        assert_eq!(
            actions,
            ["reinspection_requested", "reinspection_cleared"],
            "answered once, however often it is sent"
        );
        assert_eq!(detail["attachments"][0]["kind"], "after");
        // The department that holds the case sees the snapshot.
        let blob = hub
            .get(&format!("/api/v1/blobs/{sha}"), &hub.police_token)
            .send()
            .await
            .unwrap();
        assert_eq!(blob.status(), StatusCode::OK);

        // A bad answer is refused whole, naming the field.
        answered["reinspections"][0]["score"] = json!(7.0);
        let resp = send_report(&hub, &answered).await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(json(resp).await["error"]["field"], "reinspections[0].score");
    }
);
