//! `edge-gateway`: the township gateway's command line. Parses arguments, loads and checks
//! settings, starts logging and hands over to the library.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use edge_gateway::patrol::terminals::{TerminalsFile, new_terminal};
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
    #[arg(long, short, env = "EDGE_CONFIG", required = false)]
    config: Option<PathBuf>,
    /// Check the settings and exit.
    #[arg(long)]
    check: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Patrol terminals served by the embedded MQTT broker.
    #[command(subcommand)]
    Terminal(TerminalCommand),
}

#[derive(Subcommand)]
enum TerminalCommand {
    /// Adds terminals to a terminals file and prints `id,secret` for each, once: only the
    /// secret's hash is stored. Give the secret to the terminal; restart the gateway.
    Add {
        /// The terminals file (created if missing).
        #[arg(long)]
        file: PathBuf,
        /// The grid worker who carries the terminal(s).
        #[arg(long)]
        holder: Option<String>,
        /// Terminal ids; an id already in the file gets a new secret.
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,rumqttd=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Some(Command::Terminal(TerminalCommand::Add { file, holder, ids })) = cli.command {
        return add_terminals(&file, holder, &ids);
    }
    let file = cli
        .config
        .context("--config (or EDGE_CONFIG) is required to run the gateway")?;
    let raw = RawConfig::load(&file)?;
    let config = Config::from_raw(raw, &file).context("checking the gateway's settings")?;
    if cli.check {
        eprintln!(
            "{}: the settings are valid ({} cameras, patrol terminals {})",
            file.display(),
            config.cameras.len(),
            if config.patrol.is_some() { "on" } else { "off" }
        );
        return Ok(());
    }
    let shutdown = CancellationToken::new();
    tokio::spawn(shutdown_on_signal(shutdown.clone()));
    edge_gateway::run(config, shutdown).await
}

fn add_terminals(
    file: &std::path::Path,
    holder: Option<String>,
    ids: &[String],
) -> anyhow::Result<()> {
    let mut terminals: TerminalsFile = match std::fs::read_to_string(file) {
        Ok(text) => toml::from_str(&text).with_context(|| format!("{}", file.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => TerminalsFile::default(),
        Err(e) => return Err(e).with_context(|| format!("{}", file.display())),
    };
    let mut lines = Vec::new();
    for id in ids {
        let (secret, entry) =
            new_terminal(id, holder.clone()).map_err(|m| anyhow::anyhow!("terminal id {m}"))?;
        terminals.terminals.retain(|t| &t.id != id);
        terminals.terminals.push(entry);
        lines.push(format!("{id},{secret}"));
    }
    let tmp = file.with_extension("toml.tmp");
    std::fs::write(&tmp, toml::to_string(&terminals)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, file).with_context(|| format!("writing {}", file.display()))?;
    for l in lines {
        println!("{l}");
    }
    eprintln!(
        "{}: {} terminals; the secrets above are shown only now",
        file.display(),
        terminals.terminals.len()
    );
    Ok(())
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
