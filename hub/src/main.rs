//! `hub`: the county hub's command line. Parses arguments, loads settings, starts logging
//! and hands over to the library.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hub::config::ReferenceFile;
use hub::reference::Kind;
use hub::reference_sync::Origin;
use hub::store::Role;
use hub::{Config, RawConfig, Store};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(version, about = "County hub: events in, routed cases out")]
struct Cli {
    /// Settings file (TOML); `HUB_*` environment variables override it.
    #[arg(long, short, env = "HUB_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Manage gateways.
    #[command(subcommand)]
    Gateway(GatewayCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Replace a set of reference data (departments, categories or ownership) with a CSV
    /// or TOML file, or the area map with a GeoJSON file. Every row is checked, also against
    /// the other sets in force; on any error nothing is imported. Running hubs put the new
    /// set in force within seconds.
    Import {
        /// departments, categories, ownership or areas.
        kind: String,
        file: PathBuf,
        /// Check the file and report, without importing it.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum GatewayCommand {
    /// Register a gateway and print its token once (only its hash is stored).
    Add {
        /// Gateway id, as in the gateway's own config (`gateway.id`).
        id: String,
        #[arg(long)]
        name: Option<String>,
        /// Issue a new token for an existing gateway; the old one stops working.
        #[arg(long)]
        rotate: bool,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user and print its API token once.
    Add {
        name: String,
        /// admin, operator, department or technician.
        #[arg(long)]
        role: String,
        /// The department a `department` user works for.
        #[arg(long)]
        department: Option<String>,
        /// Also set a dashboard password, read from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// The password is for the user to replace: they must choose their own at their
        /// first sign-in.
        #[arg(long, requires = "password_stdin")]
        temporary: bool,
    },
    /// Set a user's dashboard password, read from the first line of standard input; the
    /// user's open dashboard sessions end.
    Password {
        name: String,
        /// The user must choose their own at their next sign-in (a reset).
        #[arg(long)]
        temporary: bool,
    },
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
    let raw = RawConfig::load(cli.config.as_deref()).context("loading the hub's settings")?;
    let config = Config::try_from(raw).context("checking the hub's settings")?;
    let store = Store::connect(&config.database_url)
        .await
        .with_context(|| {
            format!(
                "opening the database {}",
                hub::store::redact(&config.database_url)
            )
        })?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("listening on {}", config.listen))?;
            let shutdown = CancellationToken::new();
            tokio::spawn(shutdown_on_signal(shutdown.clone()));
            hub::run(config, store, listener, shutdown).await?;
        }
        Command::Gateway(GatewayCommand::Add { id, name, rotate }) => {
            protocol::check_identifier(&id).map_err(|m| anyhow::anyhow!("gateway id: {m}"))?;
            let issued = store
                .add_gateway(&id, name.as_deref().unwrap_or(&id), rotate)
                .await?;
            eprintln!(
                "Gateway {} registered. Its token is printed below, once; only its hash is kept.",
                issued.id
            );
            println!("{}", issued.token);
        }
        Command::User(UserCommand::Add {
            name,
            role,
            department,
            password_stdin,
            temporary,
        }) => {
            let role = Role::parse(&role).with_context(|| {
                format!("--role {role:?} must be admin, operator, department or technician")
            })?;
            if (role == Role::Department) != department.is_some() {
                anyhow::bail!("--department is required for, and only for, --role department");
            }
            // Read and checked first, so a bad password creates no half-made user.
            let hash = password_stdin.then(password_from_stdin).transpose()?;
            let issued = store.add_user(&name, role, department.as_deref()).await?;
            if let Some(hash) = hash {
                store.set_password_hash(&name, &hash, temporary).await?;
            }
            eprintln!(
                "User {name} ({}) created. Its API token is printed below, once.",
                role.as_str()
            );
            println!("{}", issued.token);
        }
        Command::Import {
            kind,
            file,
            dry_run,
        } => {
            let kind = Kind::parse(&kind).with_context(|| {
                format!("{kind:?} must be departments, categories, ownership or areas")
            })?;
            let read = ReferenceFile::read(kind, file)?;
            let rows = read.set.len();
            let current = store.load_reference().await?;
            if dry_run {
                current
                    .with(read.set)
                    .map_err(|errors| anyhow::anyhow!("{}", hub::reference::report(&errors)))
                    .with_context(|| format!("{} is refused", read.path.display()))?;
                eprintln!(
                    "{}: {rows} rows of {kind}, all good (--dry-run: nothing imported)",
                    read.path.display()
                );
                return Ok(());
            }
            let source = format!("hub import {}", read.path.display());
            let origin = Origin {
                actor: "command line",
                source: &source,
                sha256: &read.sha256,
            };
            let next = hub::reference_sync::import(&store, &current, read.set, origin)
                .await
                .with_context(|| {
                    format!("{} is refused; nothing was imported", read.path.display())
                })?;
            eprintln!(
                "Imported {rows} rows of {kind} (revision {}); running hubs put them in force within {} s.",
                next.revision,
                hub::reference_sync::FOLLOW_INTERVAL.as_secs()
            );
        }
        Command::User(UserCommand::Password { name, temporary }) => {
            let hash = password_from_stdin()?;
            if !store.set_password_hash(&name, &hash, temporary).await? {
                anyhow::bail!("there is no user {name:?}");
            }
            eprintln!("Password of {name} set; the user's open sessions have ended.");
        }
    }
    Ok(())
}

/// Reads a password from the first line of standard input and hashes it.
fn password_from_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']);
    hub::password::hash(password).map_err(|e| anyhow::anyhow!("password: {e}"))
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
