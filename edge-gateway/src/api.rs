//! The gateway's local API for technicians and monitoring: liveness, status and Prometheus
//! metrics. It listens on loopback by default and shows no secrets. With `[api] token` set,
//! everything but `/healthz` needs it as a bearer token (a Prometheus scrape job sends it
//! with `authorization: { credentials: … }`); without one, status and metrics are open to
//! whoever reaches the listener.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use subtle::ConstantTimeEq;

use crate::cameras::CameraBoard;
use crate::health::{CameraStatus, GatewayStats, UplinkStatus};
use crate::outbox::Outbox;
use crate::patrol::Board;
use crate::patrol::terminals::{Counters, TerminalState};

#[derive(Clone)]
pub struct ApiState {
    pub gateway_id: String,
    pub model: String,
    pub cameras: Arc<CameraBoard>,
    pub stats: Arc<GatewayStats>,
    pub outbox: Outbox,
    /// Patrol terminals, when the gateway serves them.
    pub terminals: Option<Arc<Board>>,
    /// The technician's token (`[api] token`); when set, status, terminals and metrics
    /// need it.
    pub token: Option<SecretString>,
}

/// Whether the request carries `token` as its bearer token (compared in constant time).
pub fn bearer_matches(headers: &HeaderMap, token: &SecretString) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    bool::from(given.as_bytes().ct_eq(token.expose_secret().as_bytes()))
}

/// Lets a request through when no token is set or it carries the token; else 401.
async fn guard(State(s): State<ApiState>, request: Request, next: Next) -> Response {
    match &s.token {
        Some(token) if !bearer_matches(request.headers(), token) => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "the gateway's API token is needed (Authorization: Bearer …)",
        )
            .into_response(),
        _ => next.run(request).await,
    }
}

#[derive(Serialize)]
struct Status {
    gateway_id: String,
    version: &'static str,
    model: String,
    cameras: Vec<CameraStatus>,
    outbox_pending: i64,
    /// Seconds the oldest waiting event has waited; 0 when none waits.
    outbox_oldest_age_s: f64,
    dead_letters: i64,
    events_created: u64,
    events_delivered: u64,
    events_rejected: u64,
    evicted_blobs: u64,
    evicted_events: u64,
    uplink: UplinkStatus,
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/terminals", get(terminals))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), guard))
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({ "status": "ok" })) }),
        )
        .with_state(state)
}

async fn status(State(s): State<ApiState>) -> Result<Json<Status>, (StatusCode, String)> {
    let unavailable = |e: crate::outbox::OutboxError| {
        tracing::error!(error = %e, "status: outbox unreadable");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the outbox cannot be read".to_owned(),
        )
    };
    let stats = &s.stats;
    Ok(Json(Status {
        gateway_id: s.gateway_id.clone(),
        version: env!("CARGO_PKG_VERSION"),
        model: s.model.clone(),
        cameras: s.cameras.snapshot(),
        outbox_pending: s.outbox.pending().await.map_err(unavailable)?,
        outbox_oldest_age_s: s
            .outbox
            .oldest_pending()
            .await
            .map_err(unavailable)?
            .map_or(0.0, |t| {
                (chrono::Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0
            }),
        dead_letters: s.outbox.dead_letters().await.map_err(unavailable)?,
        events_created: GatewayStats::get(&stats.events_created),
        events_delivered: GatewayStats::get(&stats.events_delivered),
        events_rejected: GatewayStats::get(&stats.events_rejected),
        evicted_blobs: GatewayStats::get(&stats.evicted_blobs),
        evicted_events: GatewayStats::get(&stats.evicted_events),
        uplink: stats
            .uplink
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone(),
    }))
}

#[derive(Serialize)]
struct Terminals {
    counters: Counters,
    terminals: Vec<TerminalState>,
}

/// Patrol terminals seen since start: presence, last position, counts.
async fn terminals(State(s): State<ApiState>) -> Result<Json<Terminals>, (StatusCode, String)> {
    let board = s.terminals.as_ref().ok_or((
        StatusCode::NOT_FOUND,
        "this gateway serves no patrol terminals ([patrol] is not configured)".to_owned(),
    ))?;
    Ok(Json(Terminals {
        counters: board.counters(),
        terminals: board.terminals(),
    }))
}

async fn metrics(
    State(s): State<ApiState>,
) -> Result<([(axum::http::HeaderName, &'static str); 1], String), (StatusCode, String)> {
    let patrol = s.terminals.as_ref().map(|b| {
        let online = b
            .terminals()
            .iter()
            .filter(|t| t.presence == Some(protocol::patrol::Presence::Online))
            .count();
        (b.counters(), online)
    });
    let Json(status) = status(State(s)).await?;
    let text = crate::metrics::render(&crate::metrics::Snapshot {
        cameras: &status.cameras,
        outbox_pending: status.outbox_pending,
        outbox_oldest_age_s: status.outbox_oldest_age_s,
        dead_letters: status.dead_letters,
        events_created: status.events_created,
        events_delivered: status.events_delivered,
        events_rejected: status.events_rejected,
        evicted_blobs: status.evicted_blobs,
        evicted_events: status.evicted_events,
        uplink_consecutive_failures: status.uplink.consecutive_failures,
        uplink_retries: status.uplink.retries,
        patrol: patrol.as_ref().map(|(c, n)| (c, *n)),
    });
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    ))
}
