//! Dashboard sign-in: `POST /api/v1/session` checks a name and password and sets an
//! HttpOnly session cookie; `GET` says who is signed in; `DELETE` signs out. API clients
//! keep using bearer tokens and never need this.

use std::net::SocketAddr;
use std::sync::MutexGuard;
use std::time::Instant;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::extract::{JsonBody, session_cookie};
use super::throttle::Throttle;
use super::{AppState, error::ApiError};
use crate::password;
use crate::store::{Principal, Role};

pub const COOKIE: &str = "hub_session";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    name: String,
    password: String,
}

/// Who is signed in, as the dashboard shows it.
#[derive(Serialize)]
pub struct Me {
    name: String,
    role: Role,
    department: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<DateTime<Utc>>,
    /// Signed in with a password someone else set: choose one's own before anything else.
    password_change_due: bool,
}

pub async fn login(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    JsonBody(req): JsonBody<Login>,
) -> Result<Response, ApiError> {
    let name = req.name.trim().to_owned();
    if name.is_empty() {
        return Err(ApiError::invalid_field("name", "must not be empty"));
    }
    let keys = [format!("name:{name}"), format!("addr:{}", peer.ip())];
    throttle_check(&app, &keys)?;
    let record = app.store.login_record(&name).await?;
    let stored = record.as_ref().and_then(|r| r.password_hash.clone());
    let matched = verify(req.password, stored).await?;
    let (true, Some(record)) = (matched, record) else {
        throttle_fail(&app, &keys);
        tracing::warn!(user = %name, peer = %peer.ip(), "failed sign-in");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "wrong name or password",
        ));
    };
    // Only the name's failures are forgiven: one good account must not reset the count of
    // an address that is guessing other people's passwords.
    throttle(&app).succeed(&keys[0]);
    let ttl = chrono::Duration::hours(i64::from(app.session.ttl_hours));
    let issued = app.store.open_session(&record.user_id, ttl).await?;
    let principal = app
        .store
        .authenticate_session(&issued.token)
        .await?
        .ok_or_else(|| ApiError::internal("a session just opened does not authenticate"))?;
    tracing::info!(user = %name, "signed in");
    let mut cookie = format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        issued.token,
        ttl.num_seconds()
    );
    if app.session.secure_cookie {
        cookie.push_str("; Secure");
    }
    let mut response = Json(me(&principal, Some(issued.expires_at))?).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("a token is plain ASCII"),
    );
    Ok(response)
}

/// The sign-in throttle, locked.
fn throttle(app: &AppState) -> MutexGuard<'_, Throttle> {
    app.throttle
        .lock()
        .expect("the throttle lock is never poisoned")
}

/// Refuses with 429 while any of `keys` has failed too often of late.
fn throttle_check(app: &AppState, keys: &[String]) -> Result<(), ApiError> {
    let now = Instant::now();
    let mut throttle = throttle(app);
    for key in keys {
        throttle.check(key, now).map_err(|wait| {
            ApiError::too_many_requests(
                "too many wrong passwords; wait before trying again",
                wait.as_secs().max(1),
            )
        })?;
    }
    Ok(())
}

/// Counts a wrong password against each of `keys`.
fn throttle_fail(app: &AppState, keys: &[String]) {
    let now = Instant::now();
    let mut throttle = throttle(app);
    for key in keys {
        throttle.fail(key, now);
    }
}

/// Whether `password` matches `stored`, checked on a blocking thread (Argon2id is slow on
/// purpose).
async fn verify(password: String, stored: Option<String>) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || password::verify(&password, stored.as_deref()))
        .await
        .map_err(|e| ApiError::internal(format!("password check: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current: String,
    new: String,
}

/// A signed-in user chooses their own password. The current one must be given (a session
/// left open must not be enough to take the account over), and wrong guesses count as
/// failed sign-ins; the user's other sessions end, this one goes on.
pub async fn change_password(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    principal: Principal,
    JsonBody(req): JsonBody<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    let Principal::User { id, name, .. } = &principal else {
        return Err(ApiError::forbidden("gateways have no password"));
    };
    let token = session_cookie(&headers).ok_or_else(|| {
        ApiError::forbidden("a password is changed from a signed-in dashboard session")
    })?;
    let keys = [format!("name:{name}"), format!("addr:{}", peer.ip())];
    throttle_check(&app, &keys)?;
    let stored = app
        .store
        .login_record(name)
        .await?
        .and_then(|r| r.password_hash);
    if !verify(req.current.clone(), stored).await? {
        throttle_fail(&app, &keys);
        tracing::warn!(user = %name, peer = %peer.ip(), "wrong current password in a password change");
        return Err(ApiError::invalid_field("current", "is not your password"));
    }
    if req.new == req.current {
        return Err(ApiError::invalid_field(
            "new",
            "must differ from the current password",
        ));
    }
    let hash = tokio::task::spawn_blocking(move || password::hash(&req.new))
        .await
        .map_err(|e| ApiError::internal(format!("password hash: {e}")))?
        .map_err(|message| ApiError::invalid_field("new", message))?;
    app.store
        .change_own_password(id, name, &hash, token)
        .await?;
    tracing::info!(user = %name, "password changed");
    Ok(StatusCode::NO_CONTENT)
}

/// Who is signed in: `{"user": …}`, or `{"user": null}` for nobody, so a page can ask
/// before signing in without provoking an error.
pub async fn current(
    principal: Result<Principal, ApiError>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let user = match principal {
        Ok(principal) => Some(me(&principal, None)?),
        Err(e) if e.status() == StatusCode::UNAUTHORIZED => None,
        Err(e) => return Err(e),
    };
    Ok(Json(serde_json::json!({ "user": user })))
}

/// Signs out: the session ends at the hub and the browser forgets the cookie.
pub async fn logout(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(token) = session_cookie(&headers) {
        app.store.close_session(token).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("hub_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(response)
}

fn me(principal: &Principal, expires_at: Option<DateTime<Utc>>) -> Result<Me, ApiError> {
    match principal {
        Principal::User {
            name,
            role,
            department,
            password_temporary,
            ..
        } => Ok(Me {
            name: name.clone(),
            role: *role,
            department: department.clone(),
            expires_at,
            password_change_due: *password_temporary,
        }),
        Principal::Gateway { .. } => Err(ApiError::forbidden("gateways do not sign in")),
    }
}
