//! Episodes: a camera rule's start, updates and end of one lasting condition, applied in
//! order however late or often they arrive.

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{TestHub, event};

/// The events of one episode at (`lat`, 120.15): a start, two updates that raise the risk,
/// an end. The start's id is the episode's, as a gateway sends it.
fn episode(category: &str, lat: f64) -> Vec<Value> {
    let id = uuid::Uuid::now_v7();
    let steps = [
        ("raised", "low", "08:00"),
        ("update", "medium", "08:01"),
        ("update", "high", "08:02"),
        ("ended", "high", "08:05"),
    ];
    steps
        .iter()
        .enumerate()
        .map(|(seq, (kind, severity, at))| {
            let mut e = event(category);
            if seq == 0 {
                e["id"] = json!(id);
            }
            e["kind"] = json!(kind);
            e["episode"] = json!({"id": id, "seq": seq});
            e["severity"] = json!(severity);
            e["occurred_at"] = json!(format!("2026-11-22T{at}:00Z"));
            e["location"]["lat"] = json!(lat);
            e
        })
        .collect()
}

/// `event` as the hub's event list shows it.
async fn listed(hub: &TestHub, event: &Value) -> Value {
    let events = hub
        .get_json("/api/v1/events?limit=200", &hub.operator_token)
        .await;
    events["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == event["id"])
        .unwrap_or_else(|| panic!("event {} stored", event["id"]))
        .clone()
}

/// The case `event` is in.
async fn case_of(hub: &TestHub, event: &Value) -> String {
    listed(hub, event).await["case_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn detail(hub: &TestHub, case_id: &str) -> Value {
    hub.get_json(&format!("/api/v1/cases/{case_id}"), &hub.operator_token)
        .await
}

/// What a case shows of its one episode and its own risk level.
fn summary(case: &Value) -> (Value, Value, Value, bool, bool, usize) {
    let episodes = case["episodes"].as_array().unwrap();
    assert_eq!(episodes.len(), 1, "{case}");
    let e = &episodes[0];
    (
        e["last_seq"].clone(),
        e["severity"].clone(),
        case["severity"].clone(),
        e["started_at"].is_string(),
        e["ended_at"].is_string(),
        case["events"].as_array().unwrap().len(),
    )
}

on_both_backends!(
    an_episode_ends_the_same_however_its_events_arrive,
    |hub: TestHub| async move {
        // Three episodes far apart (about 1 km), so each has a case of its own.
        let in_order = episode("event:0407", 30.27);
        for e in &in_order {
            hub.post_events(vec![e.clone()]).await;
        }
        // The end first, then the rest late, the end again, and an update twice.
        let shuffled = episode("event:0407", 30.28);
        for i in [3, 1, 0, 2, 3, 1] {
            hub.post_events(vec![shuffled[i].clone()]).await;
        }
        // All in one batch, backwards.
        let mut one_batch = episode("event:0407", 30.29);
        one_batch.reverse();
        hub.post_events(one_batch.clone()).await;

        let expected = (json!(3), json!("high"), json!("high"), true, true, 4);
        let mut cases = Vec::new();
        for events in [&in_order, &shuffled, &one_batch] {
            let case_id = case_of(&hub, &events[0]).await;
            for e in events.iter() {
                assert_eq!(case_of(&hub, e).await, case_id, "one case per episode");
            }
            let case = detail(&hub, &case_id).await;
            assert_eq!(summary(&case), expected, "{case}");
            cases.push(case);
        }
        let all = hub.get_json("/api/v1/cases", &hub.operator_token).await;
        assert_eq!(all["total"], 3);
        assert_eq!(listed(&hub, &in_order[3]).await["kind"], "ended");

        // Applied in order, the updates and the end are on the timeline; overtaken, not.
        let actions = |case: &Value| -> Vec<String> {
            case["timeline"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["action"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            actions(&cases[0]),
            ["open", "episode_update", "episode_update", "episode_ended"]
        );
        assert_eq!(actions(&cases[1]), ["open"], "the end came first");
    }
);

on_both_backends!(
    an_update_that_outlives_its_voided_case_opens_another,
    |hub: TestHub| async move {
        // An unowned category waits in joint review, where the centre may void it.
        let events = episode("event:0501", 30.27);
        hub.post_events(vec![events[0].clone()]).await;
        let first = case_of(&hub, &events[0]).await;
        let resp = hub
            .post_json(
                &format!("/api/v1/cases/{first}/actions"),
                &hub.operator_token,
                &json!({"action": "void", "reason": "misread shadow"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), reqwest::StatusCode::OK);

        // The rule saw it go on: the update opens a new case, which the end then follows.
        hub.post_events(vec![events[2].clone(), events[3].clone()])
            .await;
        let second = case_of(&hub, &events[2]).await;
        assert_ne!(second, first);
        assert_eq!(case_of(&hub, &events[3]).await, second);
        let case = detail(&hub, &second).await;
        let (last_seq, _, _, started, ended, n) = summary(&case);
        assert_eq!((last_seq, started, ended, n), (json!(3), true, true, 2));
        assert!(
            detail(&hub, &first).await["episodes"]
                .as_array()
                .unwrap()
                .is_empty()
        );

        // Overtaken, the late update changes nothing and goes with the episode's case.
        hub.post_events(vec![events[1].clone()]).await;
        assert_eq!(case_of(&hub, &events[1]).await, second);
        assert_eq!(summary(&detail(&hub, &second).await).0, json!(3));
    }
);

on_both_backends!(
    an_episode_not_heard_of_for_twice_its_refresh_time_is_silent,
    |hub: TestHub| async move {
        // Two crowds that started, far apart: one an hour ago, one now; each refreshes
        // every 600 s while it lasts.
        let mut quiet = episode("event:0407", 30.27)[0].clone();
        quiet["episode"]["refresh_s"] = json!(600);
        quiet["occurred_at"] =
            json!((chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339());
        let mut lively = episode("event:0407", 30.28)[0].clone();
        lively["episode"]["refresh_s"] = json!(600);
        lively["occurred_at"] = json!(chrono::Utc::now().to_rfc3339());
        hub.post_events(vec![quiet.clone(), lively.clone()]).await;
        for (event, silent) in [(&quiet, true), (&lively, false)] {
            let case = detail(&hub, &case_of(&hub, event).await).await;
            let ep = &case["episodes"][0];
            assert_eq!(
                (ep["refresh_s"].as_i64(), ep["silent"].as_bool()),
                (Some(600), Some(silent)),
                "{case}"
            );
        }
    }
);
