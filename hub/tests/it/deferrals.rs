//! Deferrals and appeals: a 缓办 parks the deadline (no alarms, not due to close, no
//! handling report) until its date, when the deadline worker gives the time left back; a
//! 挂账 until someone resumes it; and appeals that, upheld, excuse an overdue finding and a
//! rework in the indicators.

use chrono::{DateTime, Duration, FixedOffset, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{TestHub, department_levels, event};
use hub::engine::{DeadlineConfig, WorkingCalendar};

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .unwrap_or_else(|| panic!("{v} is not a time"))
        .parse()
        .unwrap()
}

/// A local date (the default calendar's +08:00) `days` from today.
fn local_date(days: i64) -> String {
    let offset = FixedOffset::east_opt(8 * 3600).unwrap();
    (Utc::now().with_timezone(&offset).date_naive() + Duration::days(days)).to_string()
}

/// Posts one event (a police case, 2 urgent hours) and returns its id.
async fn police_case(hub: &TestHub) -> String {
    hub.post_events(vec![event("event:0407")]).await;
    hub.get_json("/api/v1/cases", &hub.police_token).await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

on_both_backends!(
    a_deferral_parks_the_deadline_and_gives_the_time_left_back,
    |hub: TestHub| async move {
        let posted = Utc::now();
        let id = police_case(&hub).await;
        let path = |tail: &str| format!("/api/v1/cases/{id}{tail}");
        let send = |token: &str, tail: &str, body: Value| {
            let req = hub.post_json(&path(tail), token, &body);
            async move { req.send().await.unwrap() }
        };
        let created = |r: reqwest::Response| async move {
            assert_eq!(r.status(), StatusCode::CREATED);
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let due = time(&hub.get_json(&path(""), &hub.police_token).await["due_at"]);

        // What a request must be.
        let ask = json!({"kind": "defer", "until": local_date(3), "reason": "冬季停工 no asphalt in frost"});
        assert_eq!(
            send(&hub.operator_token, "/deferrals", ask.clone())
                .await
                .status(),
            StatusCode::FORBIDDEN,
            "the department asks"
        );
        for (bad, field) in [
            (json!({"kind": "later", "reason": "x"}), "kind"),
            (json!({"kind": "defer", "reason": "x"}), "until"),
            (
                json!({"kind": "defer", "until": local_date(0), "reason": "x"}),
                "until",
            ),
            (
                json!({"kind": "defer", "until": "next spring", "reason": "x"}),
                "until",
            ),
            (
                json!({"kind": "ledger", "until": local_date(3), "reason": "x"}),
                "until",
            ),
            (
                json!({"kind": "defer", "until": local_date(3), "reason": " "}),
                "reason",
            ),
        ] {
            let resp = send(&hub.police_token, "/deferrals", bad.clone()).await;
            assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
            let body: Value = resp.json().await.unwrap();
            assert!(body.to_string().contains(field), "{bad}: {body}");
        }
        let deferral = created(send(&hub.police_token, "/deferrals", ask.clone()).await).await;
        assert_eq!(
            send(&hub.police_token, "/deferrals", ask.clone())
                .await
                .status(),
            StatusCode::CONFLICT,
            "one at a time"
        );

        // The centre approves: the deadline is parked.
        let decide = format!("/deferrals/{deferral}/decision");
        let approve = json!({"approve": true, "note": "同意 agreed"});
        assert_eq!(
            send(&hub.police_token, &decide, approve.clone())
                .await
                .status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            send(&hub.operator_token, &decide, approve.clone())
                .await
                .status(),
            StatusCode::OK
        );
        let case = hub.get_json(&path(""), &hub.police_token).await;
        assert!(case["due_at"].is_null(), "{case}");
        assert_eq!(case["deferral_kind"], "defer");
        assert_eq!(time(&case["paused_due_at"]), due);
        let deferred_at = time(&case["deferrals"][0]["decided_at"]);
        let until = time(&case["deferred_until"]);
        assert_eq!(case["deferrals"][0]["state"], "approved");
        let listed = hub
            .get_json("/api/v1/cases?deferral=defer", &hub.operator_token)
            .await;
        assert_eq!(listed["items"][0]["id"], id.as_str());
        assert_eq!(
            hub.get_json("/api/v1/cases?deferral=ledger", &hub.operator_token)
                .await["total"],
            0
        );
        assert_eq!(
            hub.get("/api/v1/cases?deferral=soon", &hub.operator_token)
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );

        // Parked: no alarm, not due to close, no handling report until it is resumed.
        let config = DeadlineConfig::default();
        let swept = hub::deadlines::sweep(&hub.store, &config, posted + Duration::hours(5))
            .await
            .unwrap();
        assert!(swept.is_empty(), "{swept:?}");
        let totals = hub.get_json("/api/v1/stats", &hub.operator_token).await["totals"].clone();
        assert_eq!(totals["deferred"], 1);
        assert_eq!(totals["due_to_close"], 0);
        assert_eq!(
            send(&hub.police_token, "/actions", json!({"action": "accept"}))
                .await
                .status(),
            StatusCode::OK
        );
        let handle = json!({"action": "handle", "reason": "fixed"});
        assert_eq!(
            send(&hub.police_token, "/actions", handle.clone())
                .await
                .status(),
            StatusCode::CONFLICT
        );
        let case = hub.get_json(&path(""), &hub.police_token).await;
        assert!(
            !case["allowed_actions"]
                .as_array()
                .unwrap()
                .contains(&json!("handle")),
            "{}",
            case["allowed_actions"]
        );

        // Its date comes: the worker resumes it with the time that was left.
        let calendar = WorkingCalendar::default();
        let early =
            hub::deadlines::resume_deferrals(&hub.store, &calendar, until - Duration::minutes(1))
                .await
                .unwrap();
        assert!(early.is_empty());
        let resumed_at = until + Duration::minutes(1);
        let resumed = hub::deadlines::resume_deferrals(&hub.store, &calendar, resumed_at)
            .await
            .unwrap();
        assert_eq!(resumed.len(), 1);
        let case = hub.get_json(&path(""), &hub.police_token).await;
        assert_eq!(time(&case["due_at"]), resumed_at + (due - deferred_at));
        assert!(case["deferral_kind"].is_null());
        assert_eq!(case["deferrals"][0]["state"], "ended");
        assert_eq!(case["deferrals"][0]["ended_by"], "system:deadlines");
        let timeline: Vec<&str> = case["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["action"].as_str().unwrap())
            .collect();
        for action in ["deferral_requested", "deferral_approved", "deferral_ended"] {
            assert!(timeline.contains(&action), "{timeline:?}");
        }

        // A ledger item (挂账) waits for someone to resume it; rejected requests change nothing.
        let ledger = json!({"kind": "ledger", "reason": "需市级立项 needs a city project"});
        let rejected = created(send(&hub.police_token, "/deferrals", ledger.clone()).await).await;
        let no = json!({"approve": false, "note": "先处置 handle it first"});
        assert_eq!(
            send(
                &hub.operator_token,
                &format!("/deferrals/{rejected}/decision"),
                no
            )
            .await
            .status(),
            StatusCode::OK
        );
        let case = hub.get_json(&path(""), &hub.police_token).await;
        assert!(case["due_at"].is_string());
        let ledgered = created(send(&hub.police_token, "/deferrals", ledger).await).await;
        let decided = send(
            &hub.operator_token,
            &format!("/deferrals/{ledgered}/decision"),
            approve,
        )
        .await;
        assert_eq!(decided.status(), StatusCode::OK);
        let end = format!("/deferrals/{ledgered}/end");
        let resp = send(&hub.police_token, &end, json!({"note": "立项了 funded"})).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let back = time(&resp.json::<Value>().await.unwrap()["due_at"]);
        let case = hub.get_json(&path(""), &hub.police_token).await;
        assert_eq!(time(&case["due_at"]), back);
        assert_eq!(case["deferrals"][2]["state"], "ended");
        assert_eq!(
            send(&hub.police_token, &end, json!({"note": "again"}))
                .await
                .status(),
            StatusCode::CONFLICT
        );
        assert_eq!(
            send(&hub.police_token, "/actions", handle).await.status(),
            StatusCode::OK,
            "resumed, it can be reported handled"
        );
    }
);

on_both_backends!(
    upheld_appeals_excuse_an_overdue_finding_and_a_rework,
    |hub: TestHub| async move {
        let id = police_case(&hub).await;
        let path = |tail: &str| format!("/api/v1/cases/{id}{tail}");
        let send = |token: &str, tail: &str, body: Value| {
            let req = hub.post_json(&path(tail), token, &body);
            async move { req.send().await.unwrap() }
        };
        let appeal = |token: &str, subject: &str| {
            send(
                token,
                "/appeals",
                json!({"subject": subject, "reason": "暴雨封路 the road was closed by the flood"}),
            )
        };
        let decide = |appeal: String, approve: bool| {
            send(
                &hub.operator_token,
                &format!("/appeals/{appeal}/decision"),
                json!({"approve": approve, "note": "核实 checked"}),
            )
        };
        let id_of = |r: reqwest::Response| async move {
            assert_eq!(r.status(), StatusCode::CREATED);
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        };

        assert_eq!(
            appeal(&hub.police_token, "overdue").await.status(),
            StatusCode::CONFLICT,
            "not overdue yet"
        );
        assert_eq!(
            appeal(&hub.police_token, "unfair").await.status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        // Its deadline moved into the past: found overdue now, and closed late below.
        sqlx::any::install_default_drivers();
        let db = sqlx::AnyPool::connect(&hub.database_url).await.unwrap();
        sqlx::query("UPDATE cases SET due_at = $1, warn_at = $1 WHERE id = $2")
            .bind((Utc::now() - Duration::hours(1)).timestamp_millis())
            .bind(id.as_str())
            .execute(&db)
            .await
            .unwrap();
        let config = DeadlineConfig::default();
        let swept = hub::deadlines::sweep(&hub.store, &config, Utc::now())
            .await
            .unwrap();
        assert_eq!(swept.len(), 2, "warned and overdue: {swept:?}");
        assert_eq!(
            appeal(&hub.operator_token, "overdue").await.status(),
            StatusCode::FORBIDDEN
        );
        let overdue = id_of(appeal(&hub.police_token, "overdue").await).await;
        assert_eq!(
            appeal(&hub.police_token, "overdue").await.status(),
            StatusCode::CONFLICT,
            "one waiting appeal per subject"
        );
        let resp = send(
            &hub.police_token,
            &format!("/appeals/{overdue}/decision"),
            json!({"approve": true, "note": "x"}),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        assert_eq!(decide(overdue.clone(), true).await.status(), StatusCode::OK);
        assert_eq!(
            decide(overdue, true).await.status(),
            StatusCode::NOT_FOUND,
            "decided once"
        );
        assert_eq!(
            appeal(&hub.police_token, "overdue").await.status(),
            StatusCode::CONFLICT,
            "excused already"
        );

        // Rework: the first appeal rejected, the second upheld.
        for (token, action) in [
            (&hub.police_token, "accept"),
            (&hub.police_token, "handle"),
            (&hub.operator_token, "verify"),
            (&hub.operator_token, "rework"),
        ] {
            let resp = send(token, "/actions", json!({"action": action, "reason": "r"})).await;
            assert_eq!(resp.status(), StatusCode::OK, "{action}");
        }
        let first = id_of(appeal(&hub.police_token, "rework").await).await;
        assert_eq!(decide(first, false).await.status(), StatusCode::OK);
        let second = id_of(appeal(&hub.police_token, "rework").await).await;
        assert_eq!(decide(second, true).await.status(), StatusCode::OK);
        for (token, action) in [
            (&hub.police_token, "handle"),
            (&hub.operator_token, "verify"),
            (&hub.operator_token, "close"),
        ] {
            let resp = send(token, "/actions", json!({"action": action, "reason": "r"})).await;
            assert_eq!(resp.status(), StatusCode::OK, "{action}");
        }

        let case = hub.get_json(&path(""), &hub.operator_token).await;
        let states: Vec<(&str, &str)> = case["appeals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["subject"].as_str().unwrap(), a["state"].as_str().unwrap()))
            .collect();
        assert_eq!(
            states,
            [
                ("overdue", "upheld"),
                ("rework", "rejected"),
                ("rework", "upheld")
            ]
        );
        assert_eq!(case["rework_count"], 1, "the count itself is history");
        // Closed hours after its deadline, yet on time; reworked once, yet not counted.
        let totals = hub.get_json("/api/v1/stats", &hub.operator_token).await["totals"].clone();
        assert_eq!(totals["on_time"], 1, "{totals}");
        assert_eq!(totals["on_time_closure_rate"].as_f64(), Some(1.0));
        assert_eq!(totals["on_time_handling_rate"].as_f64(), Some(1.0));
        assert_eq!(totals["reworks"], 0);
        assert_eq!(totals["rework_rate"].as_f64(), Some(0.0));
    }
);

on_both_backends!(
    an_overdue_case_deferred_waits_as_long_for_its_next_escalation,
    |hub: TestHub| async move {
        let posted = Utc::now();
        let id = police_case(&hub).await;
        let path = |tail: &str| format!("/api/v1/cases/{id}{tail}");
        let ask = json!({"kind": "defer", "until": local_date(3), "reason": "冬季停工 no asphalt in frost"});
        let r = hub
            .post_json(&path("/deferrals"), &hub.police_token, &ask)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let deferral = r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        // Overdue at 2 hours (to the supervising level), the next level due 2 hours later;
        // then the deferral is approved and parks the deadline for days.
        hub::deadlines::sweep(
            &hub.store,
            &DeadlineConfig::default(),
            posted + Duration::minutes(125),
        )
        .await
        .unwrap();
        let r = hub
            .post_json(
                &path(&format!("/deferrals/{deferral}/decision")),
                &hub.operator_token,
                &json!({"approve": true, "note": "同意 agreed"}),
            )
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        let resumed_at = posted + Duration::days(5);
        let resumed =
            hub::deadlines::resume_deferrals(&hub.store, &WorkingCalendar::default(), resumed_at)
                .await
                .unwrap();
        assert_eq!(resumed.len(), 1);

        let reference = department_levels();
        let escalate = |at| hub::deadlines::escalate(&hub.store, &reference, at);
        assert!(
            escalate(resumed_at + Duration::minutes(130))
                .await
                .unwrap()
                .is_empty(),
            "overdue again, but the days deferred do not count toward the next level"
        );
        let up = escalate(resumed_at + Duration::minutes(250)).await.unwrap();
        assert_eq!(up.len(), 1, "{up:?}");
        assert_eq!(up[0].escalated_to.as_deref(), Some("city-centre"));
    }
);
