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

/// A request on `cookie`'s session, with the header the dashboard sends with writes.
fn on_session(
    hub: &TestHub,
    method: reqwest::Method,
    path: &str,
    cookie: &str,
) -> reqwest::RequestBuilder {
    hub.client
        .request(method, format!("{}{path}", hub.url))
        .header(COOKIE, cookie)
        .header("x-requested-with", "test")
}

on_both_backends!(
    a_first_password_is_replaced_before_anything_else,
    |hub: TestHub| async move {
        let (status, body) = post_roster(
            &hub,
            &hub.admin_token,
            "",
            "name,role,department\nwang.fang,operator,\n",
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let first = body["created"][0]["password"].as_str().unwrap().to_owned();
        let cookie = sign_in(&hub, "wang.fang", &first).await.unwrap();
        let other = sign_in(&hub, "wang.fang", &first).await.unwrap();
        let status = |method: reqwest::Method, path: &'static str, cookie: &str| {
            let req = on_session(&hub, method, path, cookie);
            async move { req.send().await.unwrap().status() }
        };

        // Only who they are and the password change are open to them.
        let resp = on_session(&hub, reqwest::Method::GET, "/api/v1/cases", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "password_change_required", "{body}");
        let me: Value = on_session(&hub, reqwest::Method::GET, "/api/v1/session", &cookie)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["user"]["password_change_due"], true, "{me}");

        let change = |current: &str, new: &str| {
            on_session(
                &hub,
                reqwest::Method::PUT,
                "/api/v1/session/password",
                &cookie,
            )
            .json(&json!({"current": current, "new": new}))
            .send()
        };
        let wrong = change("not my password", "my own long password")
            .await
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body: Value = wrong.json().await.unwrap();
        assert_eq!(body["error"]["field"], "current", "{body}");
        let short = change(&first, "short").await.unwrap();
        assert_eq!(short.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let same = change(&first, &first).await.unwrap();
        assert_eq!(same.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            change(&first, "my own long password")
                .await
                .unwrap()
                .status(),
            StatusCode::NO_CONTENT
        );

        // This session goes on, now with everything the role allows; the other one ended.
        assert_eq!(
            status(reqwest::Method::GET, "/api/v1/cases", &cookie).await,
            StatusCode::OK
        );
        assert_eq!(
            status(reqwest::Method::GET, "/api/v1/cases", &other).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            sign_in(&hub, "wang.fang", &first).await,
            Err(StatusCode::UNAUTHORIZED)
        );
        let again = sign_in(&hub, "wang.fang", "my own long password")
            .await
            .unwrap();
        assert_eq!(
            status(reqwest::Method::GET, "/api/v1/cases", &again).await,
            StatusCode::OK
        );
        let audit = hub
            .get("/api/v1/registry/audit", &hub.admin_token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(audit.contains("password_changed"), "{audit}");
        // A password set by an administrator for themselves (no roster) is their own.
        let op = sign_in(&hub, "op", crate::support::PASSWORD).await.unwrap();
        assert_eq!(
            status(reqwest::Method::GET, "/api/v1/cases", &op).await,
            StatusCode::OK
        );
    }
);
