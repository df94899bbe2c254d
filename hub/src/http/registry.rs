//! The device registry (设备台账) and each gateway's configuration document:
//! - `GET /api/v1/registry/cameras[?gateway_id=]`, `GET /api/v1/registry/cameras/{id}`:
//!   admins, operators and technicians; a password shows only as `password_set`;
//! - `PUT /api/v1/registry/cameras/{id}` `{gateway_id, camera, asset_code?,
//!   clear_password?}`: admins and technicians enter or replace a camera (a password left
//!   out keeps the stored one);
//! - `POST /api/v1/registry/cameras[?dry_run=]`: admins and technicians enter many cameras
//!   from a CSV or TOML document, all or none, every bad row reported with its line;
//! - `DELETE /api/v1/registry/cameras/{id}`;
//! - `GET /api/v1/registry/audit[?limit=]`: every change, newest first (admins, technicians;
//!   user roster changes for admins only);
//! - `GET /api/v1/gateway/config[?wait_s=]`: a gateway's own cameras with their passwords,
//!   and its patrol terminals with the hashes of their secrets,
//!   ETag = its revision; with `If-None-Match` it answers 304 while nothing changed, and
//!   with `wait_s` (≤ 60) it waits that long for a change first.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use protocol::device::{CameraSpec, GatewayConfig, Secret, TerminalSpec};
use protocol::{FieldError, PROTOCOL_VERSION};
use serde::{Deserialize, Serialize};

use super::extract::{DryRun, JsonBody, QueryParams, document};
use super::{AppState, error::ApiError};
use crate::devices::{CameraEntry, CameraRow, check_entry};
use crate::reference::RowError;
use crate::reference::format;
use crate::store::{AuditRow, NewCamera, Principal, RegistryCamera};

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
            asset_code: c.asset_code,
            updated_at: c.updated_at,
            updated_by: c.updated_by,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
/// `?gateway_id=`: one gateway's devices only.
pub struct ListQuery {
    pub gateway_id: Option<String>,
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

pub async fn put(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    JsonBody(entry): JsonBody<CameraEntry>,
) -> Result<Response, ApiError> {
    let actor = principal.device_manager()?;
    let stored = app.store.registry_camera(&id).await?;
    let stored_password = stored.is_some_and(|c| c.password_sealed.is_some());
    let camera = check_entry(&id, entry, app.registry_key.as_ref(), stored_password)?;
    let gateway_id = camera.gateway_id.clone();
    let entered = app
        .store
        .enter_cameras(&[camera], &actor, Utc::now())
        .await?
        .map_err(|gateway| no_gateway(&gateway))?[0];
    app.registry_did_change();
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

/// What an import did, or with `dry_run` would do.
#[derive(Serialize)]
pub struct ImportOutcome {
    pub(super) rows: usize,
    pub(super) created: usize,
    updated: usize,
    dry_run: bool,
}

impl ImportOutcome {
    pub(super) fn new(rows: usize, created: usize, dry_run: bool) -> Self {
        Self {
            rows,
            created,
            updated: rows - created,
            dry_run,
        }
    }
}

pub(super) fn no_gateway(gateway: &str) -> FieldError {
    FieldError {
        path: "gateway_id".to_owned(),
        message: format!("{gateway:?} is not a registered gateway"),
    }
}

/// The ids of the registered gateways.
pub(super) async fn registered_gateways(app: &AppState) -> Result<HashSet<String>, ApiError> {
    Ok(app
        .store
        .list_gateways()
        .await?
        .into_iter()
        .map(|g| g.id)
        .collect())
}

/// The devices of an import's rows, or every bad row by its line: each row through `check`;
/// then a device listed twice, or on a gateway not registered, is refused. `ids` gives a
/// checked device's id and gateway; `kind` names devices in messages.
pub(super) fn checked_rows<R, T>(
    (rows, mut errors): format::Rows<R>,
    kind: &str,
    gateways: &HashSet<String>,
    mut check: impl FnMut(R) -> Result<T, FieldError>,
    ids: impl Fn(&T) -> (&str, &str),
) -> Result<Vec<T>, ApiError> {
    let at = |line, e: FieldError| RowError::at(line, format!("{}: {}", e.path, e.message));
    let mut seen = HashSet::new();
    let mut devices = Vec::with_capacity(rows.len());
    for (line, row) in rows {
        match check(row) {
            Err(e) => errors.push(at(line, e)),
            Ok(d) => {
                let (id, gateway) = ids(&d);
                if !seen.insert(id.to_owned()) {
                    errors.push(RowError::at(line, format!("{kind} {id:?} is listed twice")));
                } else if !gateways.contains(gateway) {
                    errors.push(at(line, no_gateway(gateway)));
                } else {
                    devices.push(d);
                }
            }
        }
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.line);
        return Err(ApiError::invalid_rows(errors));
    }
    Ok(devices)
}

/// `POST /api/v1/registry/cameras`: many cameras from a CSV (a header line, then one camera
/// per line; see `devices::CameraRow`) or TOML (`[[camera]]`) document, all or none; every
/// bad row is reported with its line.
pub async fn import(
    State(app): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    QueryParams(q): QueryParams<DryRun>,
    body: Bytes,
) -> Result<Json<ImportOutcome>, ApiError> {
    let actor = principal.device_manager()?;
    let (format, text) = document(&headers, &body, format::Format::ROWS)?;
    let rows = format::rows::<CameraRow>(text, format, "camera").map_err(ApiError::invalid_rows)?;
    let stored: HashMap<String, bool> = app
        .store
        .registry_cameras(None)
        .await?
        .into_iter()
        .map(|c| (c.id, c.password_sealed.is_some()))
        .collect();
    let gateways = registered_gateways(&app).await?;
    let check = |row: CameraRow| {
        let id = row.id.clone();
        row.into_entry().and_then(|entry| {
            check_entry(
                &id,
                entry,
                app.registry_key.as_ref(),
                stored.get(&id).copied().unwrap_or(false),
            )
        })
    };
    let cameras = checked_rows(rows, "camera", &gateways, check, |c: &NewCamera| {
        (c.spec.id.as_str(), c.gateway_id.as_str())
    })?;
    let created = cameras
        .iter()
        .filter(|c| !stored.contains_key(&c.spec.id))
        .count();
    let outcome = ImportOutcome::new(cameras.len(), created, q.dry_run);
    if q.dry_run {
        return Ok(Json(outcome));
    }
    app.store
        .enter_cameras(&cameras, &actor, Utc::now())
        .await?
        .map_err(|gateway| no_gateway(&gateway))?;
    app.registry_did_change();
    tracing::info!(rows = outcome.rows, created = outcome.created, %actor, "cameras imported into the registry");
    Ok(Json(outcome))
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
    app.registry_did_change();
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
    // Changes to the user roster are the admins' to read.
    let users = principal.admin().is_ok();
    Ok(Json(app.store.device_audit(limit, users).await?))
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
    // Subscribed before the first look, so no change between a look and the wait is missed.
    let mut changed = app.registry_changed.subscribe();
    let revision = loop {
        // Registered gateways only reach here (they authenticated), so a revision exists.
        let revision = app.store.config_revision(&gateway_id).await?.unwrap_or(0);
        let now = tokio::time::Instant::now();
        if known != Some(revision) || now >= deadline {
            break revision;
        }
        tokio::select! {
            _ = changed.changed() => {}
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
    let terminals = app
        .store
        .registry_terminals(Some(&gateway_id))
        .await?
        .into_iter()
        .map(|t| TerminalSpec {
            id: t.id,
            holder: t.holder,
            grid: t.grid,
            secret_sha256: t.secret_sha256,
        })
        .collect();
    let config = GatewayConfig {
        v: PROTOCOL_VERSION,
        gateway_id,
        revision,
        cameras: specs,
        terminals,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
