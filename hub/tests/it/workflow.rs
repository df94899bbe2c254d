//! The closed loop through the API: dispatch, accept, handle, verify, rework, close; refusal
//! and re-dispatch; and the moves the API refuses.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{TestHub, batch, event};

/// Posts one event and returns the id of the case it opened.
async fn open(hub: &TestHub, category: &str) -> String {
    let resp = hub
        .post_json(
            "/api/v1/events",
            &hub.gateway_token,
            &batch(vec![event(category)]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cases: Value = hub
        .get_json(
            &format!("/api/v1/cases?category={category}"),
            &hub.operator_token,
        )
        .await;
    cases["items"][0]["id"].as_str().unwrap().to_owned()
}

async fn act(hub: &TestHub, token: &str, id: &str, body: Value) -> (StatusCode, Value) {
    let resp = hub
        .post_json(&format!("/api/v1/cases/{id}/actions"), token, &body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn case(hub: &TestHub, token: &str, id: &str) -> (StatusCode, Value) {
    let resp = hub
        .get(&format!("/api/v1/cases/{id}"), token)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

on_both_backends!(
    a_case_goes_round_the_closed_loop,
    |hub: TestHub| async move {
        let id = open(&hub, "event:0407").await;
        let (_, c) = case(&hub, &hub.police_token, &id).await;
        assert_eq!(c["state"], "dispatched");
        assert_eq!(c["allowed_actions"], json!(["accept", "refuse"]));

        let (status, err) = act(&hub, &hub.operator_token, &id, json!({"action": "close"})).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(err["error"]["allowed"], json!(["force_close"]), "{err}");
        let (status, _) = act(&hub, &hub.operator_token, &id, json!({"action": "accept"})).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "accepting is the department's move"
        );
        let (status, _) = act(&hub, &hub.fire_token, &id, json!({"action": "accept"})).await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "another department's case is invisible"
        );
        let (status, _) = act(
            &hub,
            &hub.technician_token,
            &id,
            json!({"action": "accept"}),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, err) = act(&hub, &hub.police_token, &id, json!({"action": "finish"})).await;
        assert_eq!(
            (status, err["error"]["field"].clone()),
            (StatusCode::UNPROCESSABLE_ENTITY, json!("action"))
        );

        let steps = [
            (&hub.police_token, json!({"action": "accept"}), "handling"),
            (
                &hub.police_token,
                json!({"action": "handle", "reason": "crowd dispersed by two officers"}),
                "handled",
            ),
            (
                &hub.operator_token,
                json!({"action": "verify"}),
                "verifying",
            ),
            (
                &hub.operator_token,
                json!({"action": "rework", "reason": "people are back"}),
                "handling",
            ),
            (
                &hub.police_token,
                json!({"action": "handle", "reason": "dispersed again, patrol posted"}),
                "handled",
            ),
            (
                &hub.operator_token,
                json!({"action": "verify"}),
                "verifying",
            ),
            (&hub.operator_token, json!({"action": "close"}), "closed"),
        ];
        for (token, body, want) in steps {
            let (status, out) = act(&hub, token, &id, body.clone()).await;
            assert_eq!(status, StatusCode::OK, "{body}: {out}");
            assert_eq!(out["to"], want, "{body}");
        }
        let (_, c) = case(&hub, &hub.operator_token, &id).await;
        assert_eq!(c["state"], "closed");
        assert_eq!(c["rework_count"], 1);
        assert_eq!(c["allowed_actions"], json!([]));
        let actions: Vec<&str> = c["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["action"].as_str().unwrap())
            .collect();
        // The camera that raised it is asked to look again at the first `handle`; the
        // second finds that request still open and asks nothing more.
        assert_eq!(
            actions,
            [
                "open",
                "accept",
                "handle",
                "reinspection_requested",
                "verify",
                "rework",
                "handle",
                "verify",
                "close"
            ]
        );
        assert_eq!(c["timeline"][2]["note"], "crowd dispersed by two officers");
        assert_eq!(c["timeline"][2]["actor"], "user:police-1");
    }
);

on_both_backends!(
    handling_needs_feedback_and_backward_moves_a_reason,
    |hub: TestHub| async move {
        let id = open(&hub, "event:0407").await;
        let (status, err) = act(
            &hub,
            &hub.police_token,
            &id,
            json!({"action": "refuse", "reason": "  "}),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err["error"]["field"], "reason");
        act(&hub, &hub.police_token, &id, json!({"action": "accept"})).await;
        let (status, _) = act(&hub, &hub.police_token, &id, json!({"action": "handle"})).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "handled without feedback"
        );
    }
);

on_both_backends!(
    a_refused_case_goes_back_and_is_dispatched_again,
    |hub: TestHub| async move {
        let id = open(&hub, "event:0407").await;
        let (status, out) = act(
            &hub,
            &hub.police_token,
            &id,
            json!({"action": "refuse", "reason": "非本单位: a fire drill"}),
        )
        .await;
        assert_eq!(
            (status, out["to"].clone()),
            (StatusCode::OK, json!("registered"))
        );
        assert_eq!(
            case(&hub, &hub.police_token, &id).await.0,
            StatusCode::NOT_FOUND,
            "no longer theirs"
        );
        let (_, c) = case(&hub, &hub.operator_token, &id).await;
        assert_eq!(
            (
                c["department"].clone(),
                c["queue"].clone(),
                c["due_at"].clone()
            ),
            (Value::Null, json!("joint_review"), Value::Null)
        );

        let (status, err) = act(
            &hub,
            &hub.operator_token,
            &id,
            json!({"action": "dispatch", "department": "fire", "time_limit": "4 hours"}),
        )
        .await;
        assert_eq!(
            (status, err["error"]["field"].clone()),
            (StatusCode::UNPROCESSABLE_ENTITY, json!("time_limit"))
        );
        let (status, _) = act(
            &hub,
            &hub.operator_token,
            &id,
            json!({"action": "dispatch", "department": "fire", "time_limit": "4 urgent_hours"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (status, c) = case(&hub, &hub.fire_token, &id).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (
                c["state"].clone(),
                c["department"].clone(),
                c["time_limit"].clone()
            ),
            (json!("dispatched"), json!("fire"), json!("4 urgent_hours"))
        );
        let updated =
            chrono::DateTime::parse_from_rfc3339(c["updated_at"].as_str().unwrap()).unwrap();
        let due = chrono::DateTime::parse_from_rfc3339(c["due_at"].as_str().unwrap()).unwrap();
        assert_eq!(due - updated, chrono::Duration::hours(4));
    }
);

on_both_backends!(
    an_unowned_case_needs_a_named_department,
    |hub: TestHub| async move {
        let id = open(&hub, "event:0501").await;
        let (status, err) = act(
            &hub,
            &hub.operator_token,
            &id,
            json!({"action": "dispatch"}),
        )
        .await;
        assert_eq!(
            (status, err["error"]["field"].clone()),
            (StatusCode::UNPROCESSABLE_ENTITY, json!("department"))
        );
        let (status, _) = act(
            &hub,
            &hub.operator_token,
            &id,
            json!({"action": "register"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = act(
            &hub,
            &hub.operator_token,
            &id,
            json!({"action": "void", "reason": "duplicate of a closed case"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (_, c) = case(&hub, &hub.operator_token, &id).await;
        assert_eq!(c["state"], "void");
        let (status, err) = act(
            &hub,
            &hub.operator_token,
            &id,
            json!({"action": "register"}),
        )
        .await;
        assert_eq!(
            (status, err["error"]["allowed"].clone()),
            (StatusCode::CONFLICT, json!([]))
        );
    }
);
