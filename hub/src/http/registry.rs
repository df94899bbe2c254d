//! The device registry (设备台账) and each gateway's configuration document:
//! - `GET /api/v1/registry/cameras[?gateway_id=]`, `GET /api/v1/registry/cameras/{id}`:
//!   admins, operators and technicians; a password shows only as `password_set`;
//! - `PUT /api/v1/registry/cameras/{id}` `{gateway_id, camera, sub_url?, asset_code?,
//!   clear_password?}`: admins and technicians enter or replace a camera (a password left
//!   out keeps the stored one);
//! - `DELETE /api/v1/registry/cameras/{id}`;
//! - `GET /api/v1/registry/audit[?limit=]`: every change, newest first (admins, technicians);
//! - `GET /api/v1/gateway/config[?wait_s=]`: a gateway's own cameras with their passwords,
//!   ETag = its revision; with `If-None-Match` it answers 304 while nothing changed, and
//!   with `wait_s` (≤ 60) it waits that long for a change first.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use protocol::PROTOCOL_VERSION;
use protocol::device::{CameraSpec, GatewayConfig, Secret, check_stream_url};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::extract::{JsonBody, QueryParams};
use super::{AppState, error::ApiError};
use crate::store::{AuditRow, PasswordChange, Principal, RegistryCamera};

/// How long a gateway may ask to wait for a change.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// Changes made through another hub are seen within this.
const POLL: Duration = Duration::from_secs(2);

/// A camera as the registry shows it: never its password.
#[derive(Serialize)]
pub struct CameraView {
    id: String,
    gateway_id: String,
    camera: CameraSpec,
    password_set: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    asset_code: Option<String>,
    updated_at: DateTime<Utc>,
    updated_by: String,
}

impl From<RegistryCamera> for CameraView {
    fn from(c: RegistryCamera) -> Self {
        Self {
            id: c.id,
            gateway_id: c.gateway_id,
            camera: c.spec,
            password_set: c.password_sealed.is_some(),
            sub_url: c.sub_url,
            asset_code: c.asset_code,
            updated_at: c.updated_at,
            updated_by: c.updated_by,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    gateway_id: Option<String>,
}

pub async fn list(
    State(app): State<AppState>,
    principal: Principal,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Json<Vec<CameraView>>, ApiError> {
    principal.device_viewer()?;
    let cameras = app.store.registry_cameras(q.gateway_id.as_deref()).await?;
    Ok(Json(cameras.into_iter().map(CameraView::from).collect()))
}

pub async fn get(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<CameraView>, ApiError> {
    principal.device_viewer()?;
    let camera = app
        .store
        .registry_camera(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("camera"))?;
    Ok(Json(camera.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraEntry {
    gateway_id: String,
    camera: CameraSpec,
    /// The sub-stream, for previews and low-bandwidth links.
    #[serde(default)]
    sub_url: Option<String>,
    /// The asset the camera watches (a manhole cover's component code).
    #[serde(default)]
    asset_code: Option<String>,
    /// Forget the stored password (the camera needs none now).
    #[serde(default)]
    clear_password: bool,
}

pub async fn put(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    JsonBody(entry): JsonBody<CameraEntry>,
) -> Result<Response, ApiError> {
    let actor = principal.device_manager()?;
    let CameraEntry {
        gateway_id,
        mut camera,
        sub_url,
        asset_code,
        clear_password,
    } = entry;
    if camera.id != id {
        return Err(ApiError::invalid_field(
            "camera.id",
            format!(
                "{:?} differs from the camera in the path ({id:?})",
                camera.id
            ),
        ));
    }
    let password = camera.password.take();
    let change = match (&password, clear_password) {
        (Some(_), true) => {
            return Err(ApiError::invalid_field(
                "clear_password",
                "give a password or clear it, not both",
            ));
        }
        (Some(p), false) => {
            let key = app.registry_key.as_ref().ok_or_else(|| {
                ApiError::invalid_field(
                    "camera.password",
                    "this hub has no registry_key (HUB_REGISTRY_KEY), so it cannot store passwords",
                )
            })?;
            PasswordChange::Set(key.seal(&id, p.expose()))
        }
        (None, true) => PasswordChange::Clear,
        (None, false) => PasswordChange::Keep,
    };
    // The username/password pairing is checked against the password the camera will have.
    let stored = app.store.registry_camera(&id).await?;
    let will_have_password = match &change {
        PasswordChange::Set(_) => true,
        PasswordChange::Clear => false,
        PasswordChange::Keep => stored.as_ref().is_some_and(|c| c.password_sealed.is_some()),
    };
    let mut checked = camera.clone();
    checked.password = will_have_password.then(|| Secret::new(""));
    checked
        .validate("camera")
        .map_err(|e| ApiError::invalid_field(e.path, e.message))?;
    if let Some(url) = &sub_url {
        check_stream_url(url).map_err(|m| ApiError::invalid_field("sub_url", m))?;
    }
    if let Some(code) = &asset_code {
        check_asset_code(code).map_err(|m| ApiError::invalid_field("asset_code", m))?;
    }
    let detail = json!({
        "gateway_id": gateway_id,
        "url": camera.url,
        "password": match change {
            PasswordChange::Keep => "unchanged",
            PasswordChange::Set(_) => "set",
            PasswordChange::Clear => "cleared",
        },
    });
    let entered = app
        .store
        .enter_camera(
            &gateway_id,
            &camera,
            &change,
            sub_url.as_deref(),
            asset_code.as_deref(),
            &actor,
            Utc::now(),
            detail,
        )
        .await?
        .ok_or_else(|| {
            ApiError::invalid_field(
                "gateway_id",
                format!("{gateway_id:?} is not a registered gateway"),
            )
        })?;
    app.registry_changed.notify_waiters();
    tracing::info!(camera = %id, gateway = %gateway_id, revision = entered.revision, %actor, "camera entered in the registry");
    let view: CameraView = app
        .store
        .registry_camera(&id)
        .await?
        .ok_or_else(|| ApiError::internal("the camera just entered is gone"))?
        .into();
    let status = if entered.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)).into_response())
}

pub async fn delete(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let actor = principal.device_manager()?;
    if !app.store.remove_camera(&id, &actor, Utc::now()).await? {
        return Err(ApiError::not_found("camera"));
    }
    app.registry_changed.notify_waiters();
    tracing::info!(camera = %id, %actor, "camera removed from the registry");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    limit: Option<i64>,
}

pub async fn audit(
    State(app): State<AppState>,
    principal: Principal,
    QueryParams(q): QueryParams<AuditQuery>,
) -> Result<Json<Vec<AuditRow>>, ApiError> {
    principal.device_manager()?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid_field("limit", "must be 1..=1000"));
    }
    Ok(Json(app.store.device_audit(limit).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigQuery {
    /// Seconds to wait for a change when the caller's `If-None-Match` is current.
    wait_s: Option<u64>,
}

pub async fn gateway_config(
    State(app): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    QueryParams(q): QueryParams<ConfigQuery>,
) -> Result<Response, ApiError> {
    let gateway_id = principal.gateway()?.to_owned();
    let wait = Duration::from_secs(q.wait_s.unwrap_or(0));
    if wait > MAX_WAIT {
        return Err(ApiError::invalid_field("wait_s", "must be 0..=60"));
    }
    let known = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().trim_matches('"').parse::<i64>().ok());
    let deadline = tokio::time::Instant::now() + wait;
    let revision = loop {
        // Registered gateways only reach here (they authenticated), so a revision exists.
        let revision = app.store.config_revision(&gateway_id).await?.unwrap_or(0);
        let now = tokio::time::Instant::now();
        if known != Some(revision) || now >= deadline {
            break revision;
        }
        tokio::select! {
            () = app.registry_changed.notified() => {}
            () = tokio::time::sleep(POLL.min(deadline - now)) => {}
        }
    };
    let etag = HeaderValue::from_str(&format!("\"{revision}\"")).expect("digits are a header");
    if known == Some(revision) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let cameras = app.store.registry_cameras(Some(&gateway_id)).await?;
    let mut specs = Vec::with_capacity(cameras.len());
    for camera in cameras {
        let mut spec = camera.spec;
        if let Some(sealed) = &camera.password_sealed {
            let key = app.registry_key.as_ref().ok_or_else(|| {
                ApiError::internal("camera passwords are stored but this hub has no registry_key")
            })?;
            let password = key
                .open(&camera.id, sealed)
                .map_err(|e| ApiError::internal(format!("camera {}: {e}", camera.id)))?;
            spec.password = Some(Secret::new(password));
        }
        specs.push(spec);
    }
    let config = GatewayConfig {
        v: PROTOCOL_VERSION,
        gateway_id,
        revision,
        cameras: specs,
    };
    Ok((
        [
            (header::ETAG, etag),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Json(config),
    )
        .into_response())
}

/// An asset code: 1 to 64 letters, digits and dashes (a manhole cover's 16-digit code).
fn check_asset_code(code: &str) -> Result<(), String> {
    if code.is_empty()
        || code.len() > 64
        || !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(format!(
            "{code:?} must be 1 to 64 letters, digits and dashes"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_codes_are_plain_codes() {
        check_asset_code("3301020010000123").unwrap();
        check_asset_code("MH-0001").unwrap();
        assert!(check_asset_code("").is_err());
        assert!(check_asset_code("has space").is_err());
        assert!(check_asset_code(&"9".repeat(65)).is_err());
    }

    #[test]
    fn the_view_shows_whether_a_password_is_set_never_the_password() {
        let spec: CameraSpec = serde_json::from_value(json!({
            "id": "cam-01", "url": "rtsp://cam/x", "username": "admin",
            "location": {"lat": 30.0, "lon": 120.0}
        }))
        .unwrap();
        let view = CameraView::from(RegistryCamera {
            id: "cam-01".into(),
            gateway_id: "gw-1".into(),
            spec,
            password_sealed: Some("c2VhbGVk".into()),
            sub_url: None,
            asset_code: None,
            updated_at: Utc::now(),
            updated_by: "user:tech".into(),
        });
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["password_set"], true);
        assert!(!json.to_string().contains("c2VhbGVk"), "{json}");
        assert!(json["camera"].get("password").is_none());
    }
}
