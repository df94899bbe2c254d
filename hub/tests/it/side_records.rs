//! Extensions and callbacks: a department asks for more time, the centre decides, and an
//! approval moves the deadline and restarts its alarms; callbacks after closing; both in
//! the indicators.

use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{TestHub, event};
use hub::engine::{Alarm, DeadlineConfig};

fn due(case: &Value) -> DateTime<Utc> {
    case["due_at"].as_str().unwrap().parse().unwrap()
}

on_both_backends!(
    extensions_move_the_deadline_and_callbacks_rate_the_work,
    |hub: TestHub| async move {
        let posted = Utc::now();
        hub.post_events(vec![event("event:0407")]).await;
        let id = hub.get_json("/api/v1/cases", &hub.police_token).await["items"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let path = |tail: &str| format!("/api/v1/cases/{id}{tail}");
        let send =
            |token: &str, tail: &str, body: Value| hub.post_json(&path(tail), token, &body).send();
        let first_due = due(&hub.get_json(&path(""), &hub.operator_token).await);

        let ask = json!({"extra": "1 urgent_hours", "reason": "等待配件 waiting for a part"});
        assert_eq!(
            send(&hub.operator_token, "/extensions", ask.clone())
                .await
                .unwrap()
                .status(),
            StatusCode::FORBIDDEN
        );
        let bad = send(
            &hub.police_token,
            "/extensions",
            json!({"extra": "1 fortnight", "reason": "x"}),
        )
        .await
        .unwrap();
        assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let asked = send(&hub.police_token, "/extensions", ask.clone())
            .await
            .unwrap();
        assert_eq!(asked.status(), StatusCode::CREATED);
        let extension = asked.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            send(&hub.police_token, "/extensions", ask.clone())
                .await
                .unwrap()
                .status(),
            StatusCode::CONFLICT,
            "one request at a time"
        );

        let decide = format!("/extensions/{extension}/decision");
        let approve = json!({"approve": true, "note": "同意 approved"});
        assert_eq!(
            send(&hub.police_token, &decide, approve.clone())
                .await
                .unwrap()
                .status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            send(&hub.operator_token, &decide, approve.clone())
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
        assert_eq!(
            send(&hub.operator_token, &decide, approve.clone())
                .await
                .unwrap()
                .status(),
            StatusCode::NOT_FOUND,
            "decided once"
        );
        let case = hub.get_json(&path(""), &hub.police_token).await;
        assert_eq!(due(&case), first_due + Duration::hours(1));
        assert_eq!(case["extensions"][0]["state"], "approved");

        // The clock runs to the new deadline: a warning at 75% of the extra hour, then overdue.
        let config = DeadlineConfig::default();
        let at = |minutes: i64| {
            hub::deadlines::sweep(&hub.store, &config, posted + Duration::minutes(minutes))
        };
        assert!(
            at(150).await.unwrap().is_empty(),
            "the old deadline passed, the new one not"
        );
        let alarms: Vec<_> = at(170).await.unwrap().iter().map(|r| r.alarm).collect();
        assert_eq!(alarms, [Alarm::DeadlineWarning]);
        let alarms: Vec<_> = at(185).await.unwrap().iter().map(|r| r.alarm).collect();
        assert_eq!(alarms, [Alarm::Overdue]);

        // A second request, rejected: the deadline stays.
        let again = send(&hub.police_token, "/extensions", ask).await.unwrap();
        let second = again.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let reject = json!({"approve": false, "note": "不同意 finish today"});
        let resp = send(
            &hub.operator_token,
            &format!("/extensions/{second}/decision"),
            reject,
        )
        .await
        .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let case = hub.get_json(&path(""), &hub.operator_token).await;
        assert_eq!(due(&case), first_due + Duration::hours(1));
        assert_eq!(case["extensions"][1]["state"], "rejected");

        // Callbacks follow closing.
        let call = json!({"satisfaction": 4, "result": "满意 the cover is fixed"});
        assert_eq!(
            send(&hub.operator_token, "/callbacks", call.clone())
                .await
                .unwrap()
                .status(),
            StatusCode::CONFLICT
        );
        for (token, action) in [
            (&hub.police_token, "accept"),
            (&hub.police_token, "handle"),
            (&hub.operator_token, "verify"),
            (&hub.operator_token, "close"),
        ] {
            let resp = send(
                token,
                "/actions",
                json!({"action": action, "reason": "done"}),
            )
            .await
            .unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{action}");
        }
        let out_of_range = send(
            &hub.operator_token,
            "/callbacks",
            json!({"satisfaction": 6, "result": "x"}),
        )
        .await
        .unwrap();
        assert_eq!(out_of_range.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            send(&hub.police_token, "/callbacks", call.clone())
                .await
                .unwrap()
                .status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            send(&hub.operator_token, "/callbacks", call)
                .await
                .unwrap()
                .status(),
            StatusCode::CREATED
        );
        let case = hub.get_json(&path(""), &hub.operator_token).await;
        assert_eq!(case["callbacks"][0]["satisfaction"], 4);

        let totals = hub.get_json("/api/v1/stats", &hub.operator_token).await["totals"].clone();
        assert_eq!(totals["extension_rate"].as_f64(), Some(1.0));
        assert_eq!(totals["satisfaction"].as_f64(), Some(4.0));
    }
);
