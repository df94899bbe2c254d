//! The county hub: gateways deliver events, the hub stores them, opens cases, routes each
//! case by the ownership list with a deadline on the working calendar, and serves the cases
//! to operators and departments.
//!
//! Flow: `http` (ingest) → `store` (one transaction per batch) → `engine` (pure routing and
//! deadlines, called inside that transaction) → `http` (queries).

pub mod config;
pub mod engine;
pub mod http;
pub mod store;

use std::sync::Arc;

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
    let state = http::AppState {
        store: store.clone(),
        ownership: Arc::new(config.ownership),
        calendar: Arc::new(config.calendar),
        correlation: config.correlation,
        limits: config.limits,
    };
    tracing::info!(
        addr = %listener.local_addr()?,
        backend = ?store.backend(),
        ownership_items = state.ownership.items.len(),
        "hub listening"
    );
    if state.ownership.items.is_empty() {
        tracing::warn!(
            "no ownership list is loaded: every case goes to the joint review queue (set ownership_list)"
        );
    }
    axum::serve(listener, http::router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    store.close().await;
    Ok(())
}
