//! `GET /api/v1/gateways`: the registered gateways and when each last called, for
//! technicians and operators.

use axum::Json;
use axum::extract::State;

use super::{AppState, error::ApiError};
use crate::store::{GatewayRow, Principal};

pub async fn list(
    State(app): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<GatewayRow>>, ApiError> {
    principal.device_viewer()?;
    Ok(Json(app.store.list_gateways().await?))
}
