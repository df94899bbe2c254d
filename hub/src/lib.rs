//! The county hub: gateways deliver events, the hub stores them, opens cases, routes each
//! case by the ownership list with a deadline on the working calendar, and serves the cases
//! to operators and departments.
//!
//! Flow: `http` (ingest) → `store` (one transaction per batch) → `engine` (pure routing and
//! deadlines, called inside that transaction) → `http` (queries). Beside it, the
//! `deadlines` worker raises warnings and overdue alarms, and `live` fans out what just
//! happened to open dashboards.

pub mod config;
pub mod deadlines;
pub mod devices;
pub mod engine;
pub mod http;
pub mod indicators;
pub mod live;
pub mod password;
pub mod reference;
pub mod reference_sync;
pub mod sealing;
pub mod store;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{Config, RawConfig};
pub use store::Store;

/// Serves the API on `listener` until `shutdown` is cancelled, then drains open requests.
pub async fn run(
    config: Config,
    store: Store,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let reference = reference_sync::load_with_seed(&store, &config.reference_seed)
        .await
        .map_err(|e| std::io::Error::other(format!("loading the reference data: {e}")))?;
    let loaded = (
        reference.departments.len(),
        reference.categories.len(),
        reference.ownership.items.len(),
        reference.areas.len(),
    );
    let state = http::AppState {
        store: store.clone(),
        reference: reference::Shared::new(reference),
        map: config.map,
        calendar: Arc::new(config.calendar),
        correlation: config.correlation,
        deadlines: config.deadlines.clone(),
        limits: config.limits,
        throttle: Arc::new(Mutex::new(http::Throttle::new(
            config.session.max_failures,
            Duration::from_secs(config.session.failure_window_s),
        ))),
        session: config.session,
        registry_key: config.registry_key,
        registry_changed: Arc::new(tokio::sync::watch::Sender::new(0)),
        live: match store.backend() {
            store::Backend::Postgres => live::LiveFeed::shared(store.clone(), shutdown.clone()),
            store::Backend::Sqlite => live::LiveFeed::new(shutdown.clone()),
        },
    };
    tracing::info!(
        addr = %listener.local_addr()?,
        backend = ?store.backend(),
        departments = loaded.0,
        categories = loaded.1,
        ownership_items = loaded.2,
        areas = loaded.3,
        "hub listening"
    );
    if loaded.2 == 0 {
        tracing::warn!(
            "no ownership list is loaded: every case goes to the joint review queue (import one with `hub import ownership FILE`)"
        );
    }
    match &config.web_root {
        Some(root) => tracing::info!(root = %root.display(), "serving the dashboard"),
        None => tracing::warn!("no web_root is set: the dashboard is not served"),
    }
    let worker = tokio::spawn(deadlines::run(
        store.clone(),
        config.deadlines,
        state.calendar.clone(),
        state.reference.clone(),
        state.live.clone(),
        shutdown.clone(),
    ));
    let follower = tokio::spawn(reference_sync::follow(
        store.clone(),
        state.reference.clone(),
        shutdown.clone(),
    ));
    let app = http::router(state, config.web_root.as_deref());
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned())
    .await?;
    // The worker stops on the same signal; wait so it never writes to a closed store.
    let _ = worker.await;
    let _ = follower.await;
    store.close().await;
    Ok(())
}
