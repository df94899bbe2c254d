//! Gateways, for technicians and operators:
//! - `GET /api/v1/gateways`: the registered gateways, when each last called and what it
//!   reported (admins, operators, technicians);
//! - `POST /api/v1/gateways` `{"id", "name", "area_code"?}`: admins and technicians register a
//!   gateway; the answer carries its token, shown this once;
//! - `POST /api/v1/gateways/{id}/token`: a new token (the old one stops working at once);
//! - `DELETE /api/v1/gateways/{id}/token`: revokes the token (a lost or stolen gateway).
//!
//! Every change is in the device audit.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use protocol::{check_area_code, check_identifier};
use serde::Deserialize;

use super::extract::{JsonBody, required_text};
use super::{AppState, error::ApiError};
use crate::store::{GatewayRow, NewGateway, Principal, TokenIssued};

pub async fn list(
    State(app): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<GatewayRow>>, ApiError> {
    principal.device_viewer()?;
    Ok(Json(app.store.list_gateways().await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    id: String,
    name: String,
    /// The township (division code) the gateway serves.
    #[serde(default)]
    area_code: Option<String>,
}

pub async fn register(
    State(app): State<AppState>,
    principal: Principal,
    JsonBody(r): JsonBody<Registration>,
) -> Result<(StatusCode, Json<TokenIssued>), ApiError> {
    let actor = principal.device_manager()?;
    check_identifier(&r.id).map_err(|m| ApiError::invalid_field("id", m))?;
    let name = required_text("name", &r.name)?;
    if let Some(code) = &r.area_code {
        check_area_code(code).map_err(|m| ApiError::invalid_field("area_code", m))?;
    }
    let gateway = NewGateway {
        id: r.id,
        name,
        area_code: r.area_code,
    };
    let issued = app
        .store
        .register_gateway(&gateway, &actor, Utc::now())
        .await?
        .ok_or_else(|| {
            ApiError::conflict(
                format!("gateway {:?} is already registered", gateway.id),
                vec![],
            )
        })?;
    tracing::info!(gateway = %gateway.id, %actor, "gateway registered");
    Ok((StatusCode::CREATED, Json(issued)))
}

pub async fn new_token(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<TokenIssued>, ApiError> {
    let actor = principal.device_manager()?;
    let issued = app
        .store
        .replace_gateway_token(&id, true, &actor, Utc::now())
        .await?
        .ok_or_else(|| ApiError::not_found("gateway"))?
        .ok_or_else(|| ApiError::internal("no token was issued"))?;
    tracing::info!(gateway = %id, %actor, "gateway token issued");
    Ok(Json(issued))
}

pub async fn revoke_token(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let actor = principal.device_manager()?;
    app.store
        .replace_gateway_token(&id, false, &actor, Utc::now())
        .await?
        .ok_or_else(|| ApiError::not_found("gateway"))?;
    tracing::info!(gateway = %id, %actor, "gateway token revoked");
    Ok(StatusCode::NO_CONTENT)
}
