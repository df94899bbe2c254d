//! `edge-gateway`: the township gateway's command line. Parses arguments, loads and checks
//! settings, starts logging and hands over to the library.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use edge_gateway::{Config, RawConfig};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    version,
    about = "Township edge gateway: cameras in, events to the hub"
)]
struct Cli {
    /// Settings file (TOML); `EDGE_*` environment variables override it
    /// (e.g. `EDGE_HUB__TOKEN`).
    #[arg(long, short, env = "EDGE_CONFIG")]
    config: PathBuf,
    /// Check the settings and exit.
    #[arg(long)]
    check: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let raw = RawConfig::load(&cli.config)?;
    let config = Config::from_raw(raw, &cli.config).context("checking the gateway's settings")?;
    if cli.check {
        eprintln!(
            "{}: the settings are valid ({} cameras)",
            cli.config.display(),
            config.cameras.len()
        );
        return Ok(());
    }
    let shutdown = CancellationToken::new();
    tokio::spawn(shutdown_on_signal(shutdown.clone()));
    edge_gateway::run(config, shutdown).await
}

/// Cancels `shutdown` on SIGINT or SIGTERM; a second signal exits at once.
async fn shutdown_on_signal(shutdown: CancellationToken) {
    wait_for_signal().await;
    tracing::info!("shutting down; a second signal exits at once");
    shutdown.cancel();
    wait_for_signal().await;
    std::process::exit(130);
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
