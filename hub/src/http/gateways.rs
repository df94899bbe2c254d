//! `GET /api/v1/gateways`: the registered gateways and when each last called, for
//! technicians and operators.

use axum::Json;
use axum::extract::State;

use super::{AppState, error::ApiError};
use crate::store::{GatewayRow, Principal, Role};

pub async fn list(
    State(app): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<GatewayRow>>, ApiError> {
    match principal {
        Principal::User {
            role: Role::Admin | Role::Operator | Role::Technician,
            ..
        } => {}
        _ => {
            return Err(ApiError::forbidden(
                "only admins, operators and technicians may list gateways",
            ));
        }
    }
    Ok(Json(app.store.list_gateways().await?))
}
