//! Patrol terminals in the device registry (the gateway that admits each receives them in
//! its configuration document, `GET /api/v1/gateway/config`):
//! - `GET /api/v1/registry/terminals[?gateway_id=]`: admins, operators and technicians;
//!   never a secret nor its hash;
//! - `PUT /api/v1/registry/terminals/{id}` `{gateway_id, holder?, grid?}`: admins and
//!   technicians enter a terminal (201, with its secret, shown this once) or change its
//!   gateway, holder or grid (200; the secret stays);
//! - `POST /api/v1/registry/terminals/{id}/secret`: a new secret; the old one stops working
//!   and the gateway disconnects the terminal;
//! - `DELETE /api/v1/registry/terminals/{id}`: the gateway stops admitting it.
//!
//! Every change is in the device audit.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use protocol::check_identifier;
use serde::{Deserialize, Serialize};

use super::extract::{JsonBody, QueryParams, required_text};
use super::registry::ListQuery;
use super::{AppState, error::ApiError};
use crate::store::{NewTerminal, Principal, RegistryTerminal, TerminalEntered};

pub async fn list(
    State(app): State<AppState>,
    principal: Principal,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Json<Vec<RegistryTerminal>>, ApiError> {
    principal.device_viewer()?;
    Ok(Json(
        app.store
            .registry_terminals(q.gateway_id.as_deref())
            .await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminalBody {
    gateway_id: String,
    /// The grid worker who carries it.
    #[serde(default)]
    holder: Option<String>,
    /// The grid (网格) they patrol.
    #[serde(default)]
    grid: Option<String>,
}

/// A terminal entered: the registry's view and, when new, its secret.
#[derive(Serialize)]
pub struct Entered {
    terminal: RegistryTerminal,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

#[derive(Serialize)]
pub struct SecretIssued {
    id: String,
    secret: String,
}

fn optional_text(field: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    value
        .filter(|v| !v.trim().is_empty())
        .map(|v| required_text(field, &v))
        .transpose()
}

pub async fn put(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<TerminalBody>,
) -> Result<(StatusCode, Json<Entered>), ApiError> {
    let actor = principal.device_manager()?;
    check_identifier(&id).map_err(|m| ApiError::invalid_field("id", m))?;
    check_identifier(&body.gateway_id).map_err(|m| ApiError::invalid_field("gateway_id", m))?;
    let terminal = NewTerminal {
        id: id.clone(),
        gateway_id: body.gateway_id,
        holder: optional_text("holder", body.holder)?,
        grid: optional_text("grid", body.grid)?,
    };
    let (status, secret) = match app
        .store
        .enter_terminal(&terminal, &actor, Utc::now())
        .await?
    {
        TerminalEntered::Created { secret } => (StatusCode::CREATED, Some(secret)),
        TerminalEntered::Updated => (StatusCode::OK, None),
        TerminalEntered::NoGateway => {
            return Err(ApiError::invalid_field(
                "gateway_id",
                format!("{:?} is not a registered gateway", terminal.gateway_id),
            ));
        }
    };
    app.registry_changed.send_modify(|n| *n += 1);
    tracing::info!(terminal = %id, gateway = %terminal.gateway_id, %actor, "patrol terminal entered in the registry");
    let terminal = app
        .store
        .registry_terminal(&id)
        .await?
        .ok_or_else(|| ApiError::internal("the terminal just entered is gone"))?;
    Ok((status, Json(Entered { terminal, secret })))
}

pub async fn new_secret(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<SecretIssued>, ApiError> {
    let actor = principal.device_manager()?;
    let secret = app
        .store
        .new_terminal_secret(&id, &actor, Utc::now())
        .await?
        .ok_or_else(|| ApiError::not_found("terminal"))?;
    app.registry_changed.send_modify(|n| *n += 1);
    tracing::info!(terminal = %id, %actor, "patrol terminal given a new secret");
    Ok(Json(SecretIssued { id, secret }))
}

pub async fn delete(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let actor = principal.device_manager()?;
    if !app.store.remove_terminal(&id, &actor, Utc::now()).await? {
        return Err(ApiError::not_found("terminal"));
    }
    app.registry_changed.send_modify(|n| *n += 1);
    tracing::info!(terminal = %id, %actor, "patrol terminal removed from the registry");
    Ok(StatusCode::NO_CONTENT)
}
