//! The user roster as data: admins import a spreadsheet of users; new users sign in with
//! the initial password shown once, listed users get the roster's role, bad rosters are
//! refused row by row and change nothing.

use reqwest::StatusCode;
use reqwest::header::COOKIE;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::TestHub;

async fn post_roster(hub: &TestHub, token: &str, query: &str, csv: &str) -> (StatusCode, Value) {
    hub.post_csv(&format!("/api/v1/users{query}"), token, csv)
        .await
}

/// Signs in; the session cookie, or the refusal's status.
async fn sign_in(hub: &TestHub, name: &str, password: &str) -> Result<String, StatusCode> {
    let resp = hub
        .client
        .post(format!("{}/api/v1/session", hub.url))
        .json(&json!({"name": name, "password": password}))
        .send()
        .await
        .unwrap();
    match resp.status() {
        StatusCode::OK => Ok(resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned()),
        other => Err(other),
    }
}

on_both_backends!(
    admins_import_a_roster_and_new_users_sign_in_with_their_first_password,
    |hub: TestHub| async move {
        let roster = "name,role,department\n\
            zhang.wei,operator,\n\
            li-na,department,police\n\
            op,admin,\n";
        let (status, _) = post_roster(&hub, &hub.operator_token, "", roster).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "admins only");

        let bad = "name,role,department\n\
            ok.user,operator,\n\
            x-2,mayor,\n\
            x-3,department,\n\
            x-4,technician,police\n";
        let (status, body) = post_roster(&hub, &hub.admin_token, "", bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let lines: Vec<_> = body["error"]["rows"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .iter()
            .map(|r| r["line"].as_u64().unwrap())
            .collect();
        assert_eq!(lines, [3, 4, 5], "{body}");

        let (status, body) = post_roster(&hub, &hub.admin_token, "?dry_run=true", roster).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["to_create"], json!(["zhang.wei", "li-na"]));
        assert_eq!(body["listed"], json!(["op"]));
        let users = hub.get_json("/api/v1/users", &hub.admin_token).await;
        let names: Vec<&str> = users["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["name"].as_str().unwrap())
            .collect();
        assert!(!names.contains(&"zhang.wei"), "a dry run creates nobody");
        assert!(
            !users.to_string().contains("argon2"),
            "no password hash is ever listed"
        );

        let (status, body) = post_roster(&hub, &hub.admin_token, "", roster).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["updated"], json!(["op"]));
        let created = body["created"].as_array().unwrap();
        assert_eq!(created.len(), 2);
        let password_of = |name: &str| {
            created.iter().find(|c| c["name"] == name).unwrap()["password"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let cookie = sign_in(&hub, "li-na", &password_of("li-na")).await.unwrap();
        let me: Value = hub
            .client
            .get(format!("{}/api/v1/session", hub.url))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["user"]["role"], "department");
        assert_eq!(me["user"]["department"], "police");
        assert_eq!(
            sign_in(&hub, "zhang.wei", "not the password").await,
            Err(StatusCode::UNAUTHORIZED)
        );
        // The operator listed as admin is one now: it may read the roster.
        assert_eq!(
            hub.get_status("/api/v1/users", &hub.operator_token).await,
            StatusCode::OK
        );

        // Roster changes are in the audit log, for admins only.
        let audit = |token: &str| {
            let req = hub.get("/api/v1/registry/audit", token);
            async move {
                let resp = req.send().await.unwrap();
                assert_eq!(resp.status(), StatusCode::OK);
                resp.text().await.unwrap()
            }
        };
        let seen_by_admin = audit(&hub.admin_token).await;
        assert!(seen_by_admin.contains("user:li-na"), "{seen_by_admin}");
        assert!(seen_by_admin.contains("user_changed"), "{seen_by_admin}");
        let seen_by_technician = audit(&hub.technician_token).await;
        assert!(
            !seen_by_technician.contains("user:"),
            "{seen_by_technician}"
        );

        // The same roster again changes nothing and creates nobody.
        let (status, body) = post_roster(&hub, &hub.admin_token, "", roster).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["created"], json!([]));
        assert_eq!(body["unchanged"], 3);
    }
);
