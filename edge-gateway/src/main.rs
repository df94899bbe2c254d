//! `edge-gateway`: the township gateway's command line. Parses arguments, loads and checks
//! settings, starts logging and hands over to the library.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use edge_gateway::onvif;
use edge_gateway::patrol::terminals::{TerminalsFile, new_terminal};
use edge_gateway::probe::{self, ProbeRequest};
use edge_gateway::rtsp::{self, Vendor};
use edge_gateway::{Config, RawConfig};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use url::Url;

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
    /// Connects to a camera as the gateway would and reports codec, resolution, frame rate,
    /// key frame interval and time to first frame, or why it failed.
    Probe(ProbeArgs),
    /// Finds ONVIF cameras on this network (or at --host, or the device service --device)
    /// and reports maker, model and streams; --csv prints them as rows for the hub's
    /// registry import.
    Discover(DiscoverArgs),
}

#[derive(clap::Args)]
struct DiscoverArgs {
    /// Send the WS-Discovery probe to this address only (across subnets, where multicast
    /// does not reach).
    #[arg(long, conflicts_with = "device")]
    host: Option<IpAddr>,
    /// Ask this device service directly (`http://host/onvif/device_service`): no discovery.
    #[arg(long)]
    device: Option<Url>,
    /// The user name (the password comes from EDGE_CAMERA_PASSWORD, never the command line).
    #[arg(long)]
    user: Option<String>,
    /// Seconds to listen for answers to the WS-Discovery probe.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// The report as JSON on standard output.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// The cameras as CSV rows for the hub's registry import (`POST
    /// /api/v1/registry/cameras`), for this gateway; fill in the location and rules.
    #[arg(long, requires = "gateway")]
    csv: bool,
    /// The gateway the cameras belong to, with --csv.
    #[arg(long)]
    gateway: Option<String>,
    /// The cameras' latitude, with --csv (WGS-84 degrees).
    #[arg(long, allow_negative_numbers = true)]
    lat: Option<f64>,
    /// The cameras' longitude, with --csv (WGS-84 degrees).
    #[arg(long, allow_negative_numbers = true)]
    lon: Option<f64>,
}

#[derive(clap::Args)]
struct ProbeArgs {
    /// The stream's URL (`rtsp://[user:password@]host[:port]/path`); or give --vendor and
    /// --host instead.
    #[arg(required_unless_present = "vendor", conflicts_with = "vendor")]
    url: Option<String>,
    /// The camera's maker, to build the URL from its pattern (cameras without ONVIF).
    #[arg(long, value_enum, requires = "host")]
    vendor: Option<Vendor>,
    /// The camera's or NVR's address, with --vendor.
    #[arg(long)]
    host: Option<String>,
    /// The RTSP port, with --vendor (554 when not given).
    #[arg(long)]
    port: Option<u16>,
    /// The channel, with --vendor (from 1).
    #[arg(long, default_value_t = 1)]
    channel: u32,
    /// The sub-stream rather than the main stream, with --vendor.
    #[arg(long)]
    sub: bool,
    /// The user name (the password comes from EDGE_CAMERA_PASSWORD, never the command line).
    #[arg(long)]
    user: Option<String>,
    /// RTP over the RTSP connection (TCP) rather than UDP.
    #[arg(long)]
    tcp: bool,
    /// Seconds to watch the stream after its first frame.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Seconds allowed for each RTSP step and for the first frame.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// Where to save the first picture as JPEG.
    #[arg(long)]
    snapshot: Option<PathBuf>,
    /// The report as JSON on standard output.
    #[arg(long)]
    json: bool,
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

fn main() -> anyhow::Result<()> {
    // Before any thread starts, so none has an arena of its own yet.
    limit_malloc_arenas();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run())
}

/// glibc gives threads that allocate at once arenas of their own, up to eight per core,
/// and each keeps what was freed in it for reuse: with a decoder thread per camera that is
/// tens of MB held for nothing (16 cameras: RSS 183 MB with the default, 159 MB with two
/// arenas, the same CPU; docs/benchmarks.md). `MALLOC_ARENA_MAX`, when set, still decides.
#[allow(unsafe_code)]
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes glibc's allocator settings; it is called before
        // any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,rumqttd=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Terminal(TerminalCommand::Add { file, holder, ids })) => {
            return add_terminals(&file, holder, &ids);
        }
        Some(Command::Probe(args)) => return probe(args).await,
        Some(Command::Discover(args)) => return discover(args).await,
        None => {}
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

async fn probe(args: ProbeArgs) -> anyhow::Result<()> {
    let url = match (&args.url, args.vendor, &args.host) {
        (Some(url), _, _) => Url::parse(url).with_context(|| format!("the URL {url:?}"))?,
        (None, Some(vendor), Some(host)) => {
            rtsp::vendor_url(vendor, host, args.port, args.channel, args.sub)
                .map_err(anyhow::Error::msg)?
        }
        _ => anyhow::bail!("give a URL, or --vendor and --host"),
    };
    let password = std::env::var("EDGE_CAMERA_PASSWORD")
        .ok()
        .map(SecretString::from);
    let (url, credentials) =
        probe::split_credentials(url, args.user, password).map_err(anyhow::Error::msg)?;
    ffmpeg_next::init().context("initialising FFmpeg")?;
    ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Fatal);
    let request = ProbeRequest {
        url,
        credentials,
        tcp: args.tcp,
        watch: Duration::from_secs(args.seconds),
        timeout: Duration::from_secs(args.timeout.max(1)),
    };
    let report = match probe::probe(&request).await {
        Ok(report) => report,
        // An answer about the camera, not a fault of this program: no backtrace.
        Err(e) => {
            eprintln!("探测失败 probe failed: {e}");
            std::process::exit(2);
        }
    };
    if let (Some(path), Some(jpeg)) = (&args.snapshot, &report.snapshot) {
        std::fs::write(path, jpeg).with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", probe::describe(&report));
    }
    match (&args.snapshot, &report.snapshot) {
        (Some(path), Some(_)) => eprintln!("快照 snapshot: {}", path.display()),
        (Some(_), None) => anyhow::bail!("no picture could be decoded for the snapshot"),
        _ => {}
    }
    Ok(())
}

async fn discover(args: DiscoverArgs) -> anyhow::Result<()> {
    let target = match (args.device, args.host) {
        (Some(url), _) => onvif::Target::Device(url),
        (None, Some(ip)) => onvif::Target::Host(ip),
        (None, None) => onvif::Target::Multicast,
    };
    let credentials = match (args.user, std::env::var("EDGE_CAMERA_PASSWORD").ok()) {
        (Some(user), Some(password)) => Some((user, SecretString::from(password))),
        (Some(_), None) => anyhow::bail!("--user needs the password in EDGE_CAMERA_PASSWORD"),
        (None, _) => None,
    };
    let wait = Duration::from_secs(args.seconds.max(1));
    let outcome = match onvif::discover(&target, wait, credentials.as_ref()).await {
        Ok(outcome) => outcome,
        Err(e) => {
            eprintln!("发现失败 discovery failed: {e}");
            std::process::exit(2);
        }
    };
    for failed in &outcome.failed {
        eprintln!("设备 device {}: {}", failed.found.device_url, failed.error);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else if args.csv {
        let defaults = onvif::EntryDefaults {
            gateway_id: args.gateway.unwrap_or_default(),
            username: credentials.map(|(user, _)| user),
            lat: args.lat,
            lon: args.lon,
        };
        let mut entries = Vec::new();
        for device in &outcome.devices {
            match device.entry(&defaults) {
                Ok(entry) => entries.push(entry),
                Err(e) => eprintln!("{e}"),
            }
        }
        print!("{}", onvif::entries_csv(&entries)?);
        if !entries.is_empty() {
            eprintln!(
                "{} cameras: fill in the password, location (lat, lon, area_code, grid) and rules, then import the file at the hub",
                entries.len()
            );
        }
    } else {
        for device in &outcome.devices {
            print!("{}", onvif::describe(device));
        }
    }
    if outcome.devices.is_empty() {
        eprintln!(
            "未发现设备 no ONVIF device answered{}",
            if outcome.failed.is_empty() {
                " (is ONVIF discovery enabled on the cameras, and are they on this network? --host asks one address across subnets)"
            } else {
                ""
            }
        );
        std::process::exit(2);
    }
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
