//! `GET /api/v1/map`: what the dashboard's map needs besides the cases: the tile server
//! (if any) and the area outlines.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::{AppState, error::ApiError};
use crate::store::Principal;

pub async fn get(
    State(app): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    if matches!(principal, Principal::Gateway { .. }) {
        return Err(ApiError::forbidden("the map is for people"));
    }
    let reference = app.reference.current();
    let areas = if reference.areas.is_empty() {
        json!({"type": "FeatureCollection", "features": []})
    } else {
        reference.areas.geojson.clone()
    };
    Ok(Json(json!({
        "tile_url": app.map.tile_url,
        "attribution": app.map.attribution,
        "max_zoom": app.map.max_zoom,
        "areas": areas,
    })))
}
