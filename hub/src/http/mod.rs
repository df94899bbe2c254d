//! The hub's HTTP API and the dashboard's files. Every API endpoint but the liveness probe
//! and signing in authenticates, with a bearer token (gateways, API clients) or the
//! dashboard's session cookie; what a caller may do follows from its
//! [`Principal`](crate::store::Principal).

mod appeals;
mod blobs;
mod cases;
mod deferrals;
pub mod error;
mod events;
mod extract;
mod gateways;
mod map;
mod photos;
mod reference;
mod registry;
mod session;
mod side_records;
mod stats;
mod stream;
mod supervision;
mod terminal_registry;
mod terminals;
mod throttle;
mod users;
mod web;

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{any, get, post, put};
use axum::{Json, Router};
use tower_http::trace::TraceLayer;

use crate::config::{Limits, MapSettings, SessionSettings};
use crate::engine::{CorrelationConfig, DeadlineConfig, WorkingCalendar};
use crate::live::LiveFeed;
use crate::store::{Principal, Store};
use error::ApiError;
pub use throttle::Throttle;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Departments, categories, the ownership list and the area map in force.
    pub reference: crate::reference::Shared,
    pub map: MapSettings,
    pub calendar: Arc<WorkingCalendar>,
    pub correlation: CorrelationConfig,
    pub deadlines: DeadlineConfig,
    pub limits: Limits,
    pub session: SessionSettings,
    /// Failed sign-ins per user name and client address.
    pub throttle: Arc<Mutex<Throttle>>,
    /// What just happened, for open dashboards.
    pub live: LiveFeed,
    /// Seals camera passwords in the device registry; `None`: passwords are refused.
    pub registry_key: Option<crate::sealing::SealKey>,
    /// Counts registry changes made here, waking gateways waiting for a new configuration
    /// (changes made through another hub are seen by polling).
    pub registry_changed: Arc<tokio::sync::watch::Sender<u64>>,
}

impl AppState {
    /// Wakes the gateways waiting for a new configuration after a registry change here.
    pub fn registry_did_change(&self) {
        self.registry_changed.send_modify(|n| *n += 1);
    }
}

/// The API under `/api/v1`, the liveness probe, and the dashboard's files from `web_root`.
pub fn router(state: AppState, web_root: Option<&Path>) -> Router {
    let limits = state.limits.clone();
    let tile_origin = state.map.tile_origin();
    Router::new()
        .route(
            "/api/v1/events",
            post(events::post)
                .get(events::list)
                .layer(DefaultBodyLimit::max(limits.max_batch_bytes)),
        )
        .route(
            "/api/v1/blobs/{sha256}",
            put(blobs::put)
                .get(blobs::get)
                .layer(DefaultBodyLimit::max(limits.max_blob_bytes)),
        )
        .route("/api/v1/cases", get(cases::list))
        .route("/api/v1/cases/{id}", get(cases::get))
        .route("/api/v1/cases/{id}/actions", post(cases::act))
        .route("/api/v1/cases/{id}/tasks", post(terminals::create_task))
        .route("/api/v1/cases/{id}/supervision", post(supervision::issue))
        .route(
            "/api/v1/cases/{id}/extensions",
            post(side_records::request_extension),
        )
        .route(
            "/api/v1/cases/{id}/extensions/{extension}/decision",
            post(side_records::decide_extension),
        )
        .route("/api/v1/cases/{id}/callbacks", post(side_records::callback))
        .route("/api/v1/cases/{id}/deferrals", post(deferrals::request))
        .route(
            "/api/v1/cases/{id}/deferrals/{deferral}/decision",
            post(deferrals::decide),
        )
        .route(
            "/api/v1/cases/{id}/deferrals/{deferral}/end",
            post(deferrals::end),
        )
        .route("/api/v1/cases/{id}/appeals", post(appeals::request))
        .route(
            "/api/v1/cases/{id}/appeals/{appeal}/decision",
            post(appeals::decide),
        )
        .route(
            "/api/v1/cases/{id}/photos",
            post(photos::post).layer(DefaultBodyLimit::max(limits.max_blob_bytes)),
        )
        .route(
            "/api/v1/cases/{id}/supervision/{notice}/reply",
            post(supervision::reply),
        )
        .route(
            "/api/v1/gateways",
            get(gateways::list).post(gateways::register),
        )
        .route(
            "/api/v1/gateways/{id}/token",
            post(gateways::new_token).delete(gateways::revoke_token),
        )
        .route("/api/v1/gateway/report", put(terminals::report))
        .route("/api/v1/gateway/config", get(registry::gateway_config))
        .route(
            "/api/v1/registry/cameras",
            get(registry::list).post(registry::import),
        )
        .route(
            "/api/v1/registry/cameras/{id}",
            get(registry::get)
                .put(registry::put)
                .delete(registry::delete),
        )
        .route(
            "/api/v1/registry/terminals",
            get(terminal_registry::list).post(terminal_registry::import),
        )
        .route("/api/v1/users", get(users::list).post(users::import))
        .route(
            "/api/v1/registry/terminals/{id}",
            put(terminal_registry::put).delete(terminal_registry::delete),
        )
        .route(
            "/api/v1/registry/terminals/{id}/secret",
            post(terminal_registry::new_secret),
        )
        .route("/api/v1/registry/audit", get(registry::audit))
        .route("/api/v1/terminals", get(terminals::list))
        .route("/api/v1/cameras", get(terminals::cameras))
        .route(
            "/api/v1/session",
            post(session::login)
                .get(session::current)
                .delete(session::logout),
        )
        .route("/api/v1/session/password", put(session::change_password))
        .route(
            "/api/v1/reference/{kind}",
            get(reference::get).put(reference::put),
        )
        .route("/api/v1/stream", get(stream::stream))
        .route("/api/v1/stats", get(stats::get))
        .route("/api/v1/map", get(map::get))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/healthz", get(health))
        .route(
            "/api/{*rest}",
            any(|| async { ApiError::not_found("endpoint") }),
        )
        .fallback_service(web::service(web_root, tile_origin.as_deref()))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Liveness and readiness for load balancers: unauthenticated, and says nothing but whether
/// the database answers.
async fn health(State(app): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    app.store.ping().await?;
    Ok(Json(serde_json::json!({ "status": "ok" })))
}

/// The API's OpenAPI document, `docs/openapi.json` (kept in step with the routes above by
/// a test), for any caller with a token or session.
async fn openapi(_: Principal) -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("../../../docs/openapi.json"),
    )
}

/// Validated `limit` and `offset` query parameters.
fn paging(limit: Option<i64>, offset: Option<i64>) -> Result<(i64, i64), ApiError> {
    let limit = limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid_field("limit", "must be 1..=500"));
    }
    let offset = offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::invalid_field("offset", "must not be negative"));
    }
    Ok((limit, offset))
}
