//! Patrol terminals in the device registry (the gateway that admits each receives them in
//! its configuration document, `GET /api/v1/gateway/config`):
//! - `GET /api/v1/registry/terminals[?gateway_id=]`: admins, operators and technicians;
//!   never a secret nor its hash;
//! - `PUT /api/v1/registry/terminals/{id}` `{gateway_id, holder?, grid?}`: admins and
//!   technicians enter a terminal (201, with its secret, shown this once) or change its
//!   gateway, holder or grid (200; the secret stays);
//! - `POST /api/v1/registry/terminals[?dry_run=]`: many at once from a CSV or TOML
//!   document, all or none, every bad row with its line; the new ones' secrets shown once;
//! - `POST /api/v1/registry/terminals/{id}/secret`: a new secret; the old one stops working
//!   and the gateway disconnects the terminal;
//! - `DELETE /api/v1/registry/terminals/{id}`: the gateway stops admitting it.
//!
//! Every change is in the device audit.

use std::collections::HashSet;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use protocol::{FieldError, check_identifier};
use serde::{Deserialize, Serialize};

use super::extract::{DryRun, JsonBody, MAX_TEXT, QueryParams, document};
use super::registry::{self, ListQuery, no_gateway};
use super::{AppState, error::ApiError};
use crate::reference::format;
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

/// One terminal as the API's body or a line of an import (CSV header names, or keys of a
/// TOML `[[terminal]]`), checked into what the store writes; an error names the field.
fn check(
    id: &str,
    gateway_id: &str,
    holder: Option<String>,
    grid: Option<String>,
) -> Result<NewTerminal, FieldError> {
    let err = |path: &str, message: String| FieldError {
        path: path.to_owned(),
        message,
    };
    check_identifier(id).map_err(|m| err("id", m.to_string()))?;
    check_identifier(gateway_id).map_err(|m| err("gateway_id", m.to_string()))?;
    let text = |field: &str, value: Option<String>| match value
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
    {
        Some(v) if v.chars().count() > MAX_TEXT => {
            Err(err(field, format!("is longer than {MAX_TEXT} characters")))
        }
        v => Ok(v),
    };
    Ok(NewTerminal {
        id: id.to_owned(),
        gateway_id: gateway_id.to_owned(),
        holder: text("holder", holder)?,
        grid: text("grid", grid)?,
    })
}

pub async fn put(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<TerminalBody>,
) -> Result<(StatusCode, Json<Entered>), ApiError> {
    let actor = principal.device_manager()?;
    let terminal = check(&id, &body.gateway_id, body.holder, body.grid)?;
    let entered = app
        .store
        .enter_terminals(std::slice::from_ref(&terminal), &actor, Utc::now())
        .await?
        .map_err(|gateway| no_gateway(&gateway))?;
    let (status, secret) = match entered.into_iter().next() {
        Some(TerminalEntered::Created { secret }) => (StatusCode::CREATED, Some(secret)),
        _ => (StatusCode::OK, None),
    };
    app.registry_did_change();
    tracing::info!(terminal = %id, gateway = %terminal.gateway_id, %actor, "patrol terminal entered in the registry");
    let terminal = app
        .store
        .registry_terminal(&id)
        .await?
        .ok_or_else(|| ApiError::internal("the terminal just entered is gone"))?;
    Ok((status, Json(Entered { terminal, secret })))
}

/// A line of a terminals import.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminalRow {
    id: String,
    gateway_id: String,
    holder: Option<String>,
    grid: Option<String>,
}

#[derive(Serialize)]
pub struct ImportOutcome {
    #[serde(flatten)]
    counts: registry::ImportOutcome,
    /// The new terminals' secrets, shown this once.
    secrets: Vec<SecretIssued>,
}

/// `POST /api/v1/registry/terminals`: many terminals from a CSV (`id,gateway_id,holder,grid`)
/// or TOML (`[[terminal]]`) document, all or none; every bad row is reported with its line.
pub async fn import(
    State(app): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    QueryParams(q): QueryParams<DryRun>,
    body: Bytes,
) -> Result<Json<ImportOutcome>, ApiError> {
    let actor = principal.device_manager()?;
    let (format, text) = document(&headers, &body, format::Format::ROWS)?;
    let rows =
        format::rows::<TerminalRow>(text, format, "terminal").map_err(ApiError::invalid_rows)?;
    let stored: HashSet<String> = app
        .store
        .registry_terminals(None)
        .await?
        .into_iter()
        .map(|t| t.id)
        .collect();
    let gateways = registry::registered_gateways(&app).await?;
    let check = |row: TerminalRow| check(&row.id, &row.gateway_id, row.holder, row.grid);
    let terminals = registry::checked_rows(rows, "terminal", &gateways, check, |t| {
        (t.id.as_str(), t.gateway_id.as_str())
    })?;
    let created = terminals.iter().filter(|t| !stored.contains(&t.id)).count();
    let mut outcome = ImportOutcome {
        counts: registry::ImportOutcome::new(terminals.len(), created, q.dry_run),
        secrets: Vec::new(),
    };
    if q.dry_run {
        return Ok(Json(outcome));
    }
    let entered = app
        .store
        .enter_terminals(&terminals, &actor, Utc::now())
        .await?
        .map_err(|gateway| no_gateway(&gateway))?;
    outcome.secrets = terminals
        .iter()
        .zip(entered)
        .filter_map(|(t, e)| match e {
            TerminalEntered::Created { secret } => Some(SecretIssued {
                id: t.id.clone(),
                secret,
            }),
            TerminalEntered::Updated => None,
        })
        .collect();
    app.registry_did_change();
    tracing::info!(rows = outcome.counts.rows, created = outcome.counts.created, %actor, "patrol terminals imported into the registry");
    Ok(Json(outcome))
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
    app.registry_did_change();
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
    app.registry_did_change();
    tracing::info!(terminal = %id, %actor, "patrol terminal removed from the registry");
    Ok(StatusCode::NO_CONTENT)
}
