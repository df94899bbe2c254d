//! The deadline clock, driven with a simulated clock: a warning at 75% of the limit, then
//! the overdue alarm with a supervision notice and escalation, each raised once; the
//! department's reply; notices from the centre; and two hubs on one PostgreSQL database
//! sharing the sweep without raising anything twice.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestHub, batch, department_levels, event, events_apart, spawn};
use hub::engine::{Alarm, DeadlineConfig};

async fn case_of(hub: &TestHub, token: &str) -> Value {
    let list: Value = hub.get_json("/api/v1/cases", token).await;
    let id = list["items"][0]["id"].as_str().unwrap();
    hub.get_json(&format!("/api/v1/cases/{id}"), token).await
}

on_both_backends!(
    deadlines_warn_then_escalate_once,
    |hub: TestHub| async move {
        let posted = Utc::now();
        hub.post_events(vec![event("event:0407")]).await;
        let config = DeadlineConfig::default();
        let sweep = |minutes: i64| {
            hub::deadlines::sweep(&hub.store, &config, posted + Duration::minutes(minutes))
        };
        // 2 urgent hours: the warning at 90 minutes, overdue at 120.
        assert!(sweep(60).await.unwrap().is_empty());
        let warned = sweep(95).await.unwrap();
        assert_eq!(warned.len(), 1);
        assert_eq!(warned[0].alarm, Alarm::DeadlineWarning);
        assert!(sweep(100).await.unwrap().is_empty(), "warned once");
        let overdue = sweep(125).await.unwrap();
        assert_eq!(overdue.len(), 1);
        assert_eq!(overdue[0].alarm, Alarm::Overdue);
        assert_eq!(overdue[0].escalated_to.as_deref(), Some("county-centre"));
        assert!(sweep(600).await.unwrap().is_empty(), "overdue once");

        let case = case_of(&hub, &hub.operator_token).await;
        assert_eq!(case["escalated_to"], "county-centre");
        assert!(case["overdue_at"].is_string());
        let actions: Vec<&str> = case["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, ["open", "deadline_warning", "overdue"]);
        let notices = case["supervision"].as_array().unwrap();
        assert_eq!(notices.len(), 1);
        assert_eq!(notices[0]["kind"], "timeout");
        assert_eq!(notices[0]["department"], "police");
        let case_id = case["id"].as_str().unwrap().to_owned();
        let notice = notices[0]["id"].as_str().unwrap().to_owned();

        // The department answers with its reason; only it, and only once.
        let reply_path = format!("/api/v1/cases/{case_id}/supervision/{notice}/reply");
        let reply = |token: &str| {
            hub.post_json(
                &reply_path,
                token,
                &json!({"reply": "等待配件 waiting for a replacement cover"}),
            )
            .send()
        };
        assert_eq!(
            reply(&hub.operator_token).await.unwrap().status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            reply(&hub.fire_token).await.unwrap().status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            reply(&hub.police_token).await.unwrap().status(),
            StatusCode::OK
        );
        assert_eq!(
            reply(&hub.police_token).await.unwrap().status(),
            StatusCode::NOT_FOUND
        );
        let case = case_of(&hub, &hub.police_token).await;
        assert_eq!(case["supervision"][0]["replied_by"], "user:police-1");

        // The centre presses too; a department cannot, and timeouts are the clock's.
        let issue = |token: &str, kind: &str| {
            hub.post_json(
                &format!("/api/v1/cases/{case_id}/supervision"),
                token,
                &json!({"kind": kind, "message": "领导督办 the county head asks for this today"}),
            )
            .send()
        };
        assert_eq!(
            issue(&hub.operator_token, "leader").await.unwrap().status(),
            StatusCode::CREATED
        );
        assert_eq!(
            issue(&hub.police_token, "leader").await.unwrap().status(),
            StatusCode::FORBIDDEN
        );
        let timeout = issue(&hub.operator_token, "timeout").await.unwrap();
        assert_eq!(timeout.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let case = case_of(&hub, &hub.police_token).await;
        assert_eq!(case["supervision"].as_array().unwrap().len(), 2);
    }
);

on_both_backends!(
    a_re_dispatch_restarts_the_clock,
    |hub: TestHub| async move {
        let posted = Utc::now();
        hub.post_events(vec![event("event:0407")]).await;
        let config = DeadlineConfig::default();
        assert_eq!(
            hub::deadlines::sweep(&hub.store, &config, posted + Duration::minutes(95))
                .await
                .unwrap()
                .len(),
            1
        );
        let case = case_of(&hub, &hub.operator_token).await;
        let id = case["id"].as_str().unwrap();
        // Refused as not theirs, then dispatched again with a day to go.
        for (token, body) in [
            (
                &hub.police_token,
                json!({"action": "refuse", "reason": "非本单位 not ours"}),
            ),
            (
                &hub.operator_token,
                json!({"action": "dispatch", "department": "fire", "time_limit": "1 calendar_days"}),
            ),
        ] {
            let resp = hub
                .post_json(&format!("/api/v1/cases/{id}/actions"), token, &body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
        }
        assert!(
            hub::deadlines::sweep(&hub.store, &config, posted + Duration::hours(3))
                .await
                .unwrap()
                .is_empty(),
            "the new limit has not run out"
        );
        let late = hub::deadlines::sweep(&hub.store, &config, posted + Duration::hours(25))
            .await
            .unwrap();
        let alarms: Vec<_> = late.iter().map(|r| r.alarm).collect();
        assert_eq!(
            alarms,
            [Alarm::DeadlineWarning, Alarm::Overdue],
            "a fresh warning, then overdue"
        );
        assert_eq!(late[0].department.as_deref(), Some("fire"));
    }
);

/// Two hubs on one PostgreSQL database sweep the same due cases at once; every alarm is
/// raised exactly once between them.
#[tokio::test]
async fn two_hubs_share_the_sweep_on_postgres() {
    let Some(hub) = spawn(Backend::Postgres).await else {
        return;
    };
    const CASES: usize = 300;
    let posted = Utc::now();
    let events = events_apart("event:0407", CASES);
    for chunk in events.chunks(100) {
        let resp = hub
            .post_json("/api/v1/events", &hub.gateway_token, &batch(chunk.to_vec()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let other = hub::Store::connect(&hub.database_url).await.unwrap();
    let config = DeadlineConfig::default();
    let late = posted + Duration::hours(3);
    let (a, b) = tokio::join!(
        hub::deadlines::sweep(&hub.store, &config, late),
        hub::deadlines::sweep(&other, &config, late)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut overdue: Vec<_> = a
        .iter()
        .chain(&b)
        .filter(|r| r.alarm == Alarm::Overdue)
        .map(|r| r.case_id.clone())
        .collect();
    let raised = overdue.len();
    overdue.sort();
    overdue.dedup();
    assert_eq!(
        raised,
        CASES,
        "each case's overdue alarm raised once ({} + {})",
        a.len(),
        b.len()
    );
    assert_eq!(overdue.len(), CASES);
}

on_both_backends!(
    a_case_still_overdue_goes_up_the_levels_to_the_top,
    |hub: TestHub| async move {
        let posted = Utc::now();
        hub.post_events(vec![event("event:0407")]).await;
        let reference = department_levels();
        let config = DeadlineConfig::default();
        let escalate = |minutes: i64| {
            hub::deadlines::escalate(&hub.store, &reference, posted + Duration::minutes(minutes))
        };
        // Overdue at 2 hours: to the supervising level (the default, county-centre).
        hub::deadlines::sweep(&hub.store, &config, posted + Duration::minutes(125))
            .await
            .unwrap();
        let case = case_of(&hub, &hub.operator_token).await;
        assert_eq!(case["escalated_to"], "county-centre");
        assert_eq!(case["escalation_level"], 1);
        // Another span of the limit (2 hours) later, one level up; then the top stays.
        assert!(escalate(200).await.unwrap().is_empty());
        let up = escalate(250).await.unwrap();
        assert_eq!(up.len(), 1, "{up:?}");
        assert_eq!(up[0].alarm, Alarm::Escalated);
        assert_eq!(up[0].escalated_to.as_deref(), Some("city-centre"));
        assert!(
            escalate(400).await.unwrap().is_empty(),
            "city-centre is the top"
        );
        assert!(escalate(10_000).await.unwrap().is_empty());
        let case = case_of(&hub, &hub.operator_token).await;
        assert_eq!(case["escalated_to"], "city-centre");
        assert_eq!(case["escalation_level"], 2);
        let notices = case["supervision"].as_array().unwrap();
        assert_eq!(notices.len(), 2, "a notice to the department at each level");
        assert!(
            notices[1]["message"]
                .as_str()
                .unwrap()
                .contains("city-centre")
        );
        let actions: Vec<&str> = case["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            actions,
            ["open", "deadline_warning", "overdue", "escalated"]
        );
    }
);
