//! Patrol terminals and their tasks:
//! - `PUT /api/v1/gateway/report` (gateways): presence of their terminals and the terminals'
//!   answers to tasks in; the open tasks of those terminals out;
//! - `GET /api/v1/terminals` and `GET /api/v1/cameras` (admins, operators, technicians);
//! - `POST /api/v1/cases/{id}/tasks` (admins, operators): send a terminal to a case's place.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use protocol::gateway::{GatewayReport, GatewayReportAck};
use protocol::patrol::TaskKind;
use protocol::{Location, PROTOCOL_VERSION, check_identifier};
use serde::Deserialize;

use super::extract::JsonBody;
use super::{AppState, error::ApiError};
use crate::store::{CameraRow, NewTask, Principal, Role, TaskRow, TerminalRow};

/// Most terminals one report may carry; a county has a few thousand.
const MAX_TERMINALS: usize = 20_000;
const MAX_TEXT: usize = 2000;
/// Most cameras one gateway may report; an NVR-backed township box has dozens.
const MAX_CAMERAS: usize = 1000;

pub async fn report(
    State(app): State<AppState>,
    principal: Principal,
    JsonBody(report): JsonBody<GatewayReport>,
) -> Result<Json<GatewayReportAck>, ApiError> {
    let gateway = principal.gateway()?;
    validate(gateway, &report)?;
    Ok(Json(
        app.store.apply_gateway_report(gateway, &report).await?,
    ))
}

fn validate(gateway: &str, r: &GatewayReport) -> Result<(), ApiError> {
    if r.v != PROTOCOL_VERSION {
        return Err(ApiError::invalid_field(
            "v",
            format!(
                "protocol version {} is not supported (expected {PROTOCOL_VERSION})",
                r.v
            ),
        ));
    }
    if r.gateway_id != gateway {
        return Err(ApiError::forbidden(format!(
            "this token belongs to gateway {gateway:?}, not {:?}",
            r.gateway_id
        )));
    }
    if r.config_error
        .as_ref()
        .is_some_and(|e| e.chars().count() > 2000)
    {
        return Err(ApiError::invalid_field(
            "config_error",
            "longer than 2000 characters",
        ));
    }
    if r.version.chars().count() > 64 {
        return Err(ApiError::invalid_field(
            "version",
            "longer than 64 characters",
        ));
    }
    if r.terminals.len() > MAX_TERMINALS || r.task_acks.len() > MAX_TERMINALS {
        return Err(ApiError::invalid_field(
            "terminals",
            format!("at most {MAX_TERMINALS} terminals and task acknowledgements per report"),
        ));
    }
    for (i, t) in r.terminals.iter().enumerate() {
        check_identifier(&t.terminal_id)
            .map_err(|m| ApiError::invalid_field(format!("terminals[{i}].terminal_id"), m))?;
        if let Some(p) = &t.position {
            let at = Location {
                lat: p.lat,
                lon: p.lon,
                area_code: None,
                grid: None,
            };
            at.validate().map_err(|e| {
                ApiError::invalid_field(format!("terminals[{i}].position.{}", e.path), e.message)
            })?;
        }
    }
    if r.reinspections.len() > MAX_CAMERAS {
        return Err(ApiError::invalid_field(
            "reinspections",
            format!("at most {MAX_CAMERAS} re-inspection answers per report"),
        ));
    }
    for (i, a) in r.reinspections.iter().enumerate() {
        let field = |name: &str| format!("reinspections[{i}].{name}");
        if a.score
            .is_some_and(|s| !(s.is_finite() && (0.0..=1.0).contains(&s)))
        {
            return Err(ApiError::invalid_field(field("score"), "must be 0..=1"));
        }
        if a.snapshot.as_ref().is_some_and(|s| {
            s.len() != 64
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }) {
            return Err(ApiError::invalid_field(
                field("snapshot"),
                "must be a SHA-256 in lower-case hex",
            ));
        }
        if a.note
            .as_ref()
            .is_some_and(|n| n.chars().count() > MAX_TEXT)
        {
            return Err(ApiError::invalid_field(
                field("note"),
                format!("longer than {MAX_TEXT} characters"),
            ));
        }
    }
    if r.cameras.len() > MAX_CAMERAS {
        return Err(ApiError::invalid_field(
            "cameras",
            format!("at most {MAX_CAMERAS} cameras per report"),
        ));
    }
    for (i, c) in r.cameras.iter().enumerate() {
        let field = |name: &str| format!("cameras[{i}].{name}");
        check_identifier(&c.camera_id)
            .map_err(|m| ApiError::invalid_field(field("camera_id"), m))?;
        if c.name.chars().count() > 200 {
            return Err(ApiError::invalid_field(
                field("name"),
                "longer than 200 characters",
            ));
        }
        if !(c.fps.is_finite() && (0.0..=1000.0).contains(&c.fps)) {
            return Err(ApiError::invalid_field(field("fps"), "must be 0..=1000"));
        }
        if c.last_error
            .as_ref()
            .is_some_and(|e| e.chars().count() > MAX_TEXT)
        {
            return Err(ApiError::invalid_field(
                field("last_error"),
                format!("longer than {MAX_TEXT} characters"),
            ));
        }
    }
    for (i, a) in r.task_acks.iter().enumerate() {
        check_identifier(&a.terminal_id)
            .map_err(|m| ApiError::invalid_field(format!("task_acks[{i}].terminal_id"), m))?;
        if a.note
            .as_ref()
            .is_some_and(|n| n.chars().count() > MAX_TEXT)
        {
            return Err(ApiError::invalid_field(
                format!("task_acks[{i}].note"),
                format!("longer than {MAX_TEXT} characters"),
            ));
        }
    }
    Ok(())
}

pub async fn list(
    State(app): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<TerminalRow>>, ApiError> {
    principal.device_viewer()?;
    Ok(Json(app.store.list_terminals().await?))
}

/// `GET /api/v1/cameras`: every camera as its gateway last reported it.
pub async fn cameras(
    State(app): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<CameraRow>>, ApiError> {
    principal.device_viewer()?;
    Ok(Json(app.store.list_cameras().await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskRequest {
    terminal_id: String,
    kind: TaskKind,
    title: String,
    #[serde(default)]
    note: Option<String>,
}

pub async fn create_task(
    State(app): State<AppState>,
    principal: Principal,
    Path(case_id): Path<String>,
    JsonBody(req): JsonBody<TaskRequest>,
) -> Result<(StatusCode, Json<TaskRow>), ApiError> {
    match principal {
        Principal::User {
            role: Role::Admin | Role::Operator,
            ..
        } => {}
        _ => {
            return Err(ApiError::forbidden(
                "only the centre sends tasks to terminals",
            ));
        }
    }
    check_identifier(&req.terminal_id).map_err(|m| ApiError::invalid_field("terminal_id", m))?;
    let title = req.title.trim();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(ApiError::invalid_field("title", "must be 1–200 characters"));
    }
    if req
        .note
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_TEXT)
    {
        return Err(ApiError::invalid_field(
            "note",
            format!("longer than {MAX_TEXT} characters"),
        ));
    }
    let task = NewTask {
        case_id: &case_id,
        terminal_id: &req.terminal_id,
        kind: req.kind,
        title,
        note: req.note.as_deref(),
        actor: principal.actor(),
    };
    match app.store.create_task(&task).await? {
        Ok(row) => Ok((StatusCode::CREATED, Json(row))),
        Err(what) => Err(ApiError::not_found(what)),
    }
}
