//! Helpers for whole-system tests: build a test clip with ffmpeg, serve it with the
//! GStreamer RTSP server, and run the real `hub` and `edge-gateway` binaries as processes on
//! free ports, with a network link between them a test can break (`link`). Every process is
//! killed when its handle drops. `procfs` reads what a process uses, for the benchmark
//! programs.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub mod fixtures;
pub mod link;
pub mod procfs;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn shared() -> PathBuf {
    std::env::var_os("SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared"))
}

/// A binary of this workspace, built by `cargo build --bins` (the test command does it).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --bins` first (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Builds an H.264 clip (no B-frames, a key frame every second) showing `image`.
pub fn make_clip(image: &Path, out: &Path, seconds: u32) -> anyhow::Result<()> {
    let still = "scale=trunc(iw/2)*2:trunc(ih/2)*2,format=yuv420p";
    encode(
        image,
        out,
        seconds,
        10,
        still,
        &["-tune", "stillimage", "-g", "10", "-bf", "0"],
    )
}

/// A camera-like clip of `image`: 640×360 H.264 at 25 fps, a key frame every 2 s, no
/// B-frames. `pan`: the view sways across the image and back (else it stands still).
/// Raw Annex B (what cameras send) when `out` ends in `.h264`, else MP4.
pub fn make_camera_clip(image: &Path, out: &Path, seconds: u32, pan: bool) -> anyhow::Result<()> {
    camera_clip(image, out, seconds, pan, 0)
}

/// A panning camera-like clip as [`make_camera_clip`] makes, with two B-frames between
/// reference pictures, as some cameras send in their main profiles.
pub fn make_camera_clip_with_b_frames(
    image: &Path,
    out: &Path,
    seconds: u32,
) -> anyhow::Result<()> {
    camera_clip(image, out, seconds, true, 2)
}

fn camera_clip(
    image: &Path,
    out: &Path,
    seconds: u32,
    pan: bool,
    b_frames: u32,
) -> anyhow::Result<()> {
    let view = if pan {
        "scale=1280:-2,crop=640:360:x='(iw-640)*(0.5+0.5*sin(t/3))':y='(ih-360)/2',format=yuv420p"
    } else {
        "scale=640:360,format=yuv420p"
    };
    let raw = out.extension().is_some_and(|e| e == "h264");
    let format: &[&str] = if raw { &["-f", "h264"] } else { &[] };
    encode(
        image,
        out,
        seconds,
        25,
        view,
        &[&["-g", "50", "-bf", &b_frames.to_string()], format].concat(),
    )
}

/// `image` looped for `seconds` at `fps` through the filter `view`, encoded by libx264
/// with `extra` output options.
fn encode(
    image: &Path,
    out: &Path,
    seconds: u32,
    fps: u32,
    view: &str,
    extra: &[&str],
) -> anyhow::Result<()> {
    let status = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-loop", "1", "-i"])
        .arg(image)
        .args([
            "-t",
            &seconds.to_string(),
            "-r",
            &fps.to_string(),
            "-vf",
            view,
        ])
        .args(["-c:v", "libx264", "-preset", "veryfast"])
        .args(extra)
        .arg(out)
        .status()
        .context("running ffmpeg (scripts/install-deps.sh installs it)")?;
    if !status.success() {
        bail!("ffmpeg failed building {}", out.display());
    }
    Ok(())
}

/// A child process killed (SIGKILL) on drop.
pub struct Process {
    pub name: &'static str,
    child: Child,
}

impl Process {
    pub fn spawn(name: &'static str, cmd: &mut Command, log: &Path) -> anyhow::Result<Self> {
        let log = std::fs::File::create(log)?;
        let child = cmd
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Self { name, child })
    }

    /// Takes charge of a child started elsewhere (with its own output redirection).
    pub fn from_child(name: &'static str, child: Child) -> Self {
        Self { name, child }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks the process to stop (SIGTERM) and waits until it has.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal` (`STOP`, `CONT`, …) without waiting: a stopped server hangs its
    /// clients' connections open without a word.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -{signal} {} failed", self.name);
        Ok(())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The GStreamer RTSP server from `deploy/demo/rtsp-server.py`, serving `clip`.
pub fn rtsp_server(clip: &Path) -> anyhow::Result<(Process, String)> {
    rtsp_server_with(&[OsStr::new("--clip"), clip.as_os_str()])
}

/// The RTSP server with other options (`--test-pattern`, `--user`, `--password`, `--mount`);
/// returns it with its stream's URL.
pub fn rtsp_server_with(args: &[&OsStr]) -> anyhow::Result<(Process, String)> {
    rtsp_server_on(free_port(), args)
}

/// The RTSP server on `port` (to bring a stopped one back at the same address).
pub fn rtsp_server_on(port: u16, args: &[&OsStr]) -> anyhow::Result<(Process, String)> {
    let mut child = Command::new("/usr/bin/python3")
        .arg(repo().join("deploy/demo/rtsp-server.py"))
        .args(["--port", &port.to_string()])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the RTSP server (python3-gi and gir1.2-gst-rtsp-server-1.0)")?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line)?;
    let url = line.trim().strip_prefix("READY ").map(str::to_owned);
    let process = Process {
        name: "rtsp-server",
        child,
    };
    match url {
        Some(url) => Ok((process, url)),
        None => bail!("the RTSP server did not start: {line:?}"),
    }
}

pub fn hub_command(env: &[(&str, String)], args: &[&str]) -> anyhow::Result<String> {
    hub_command_with_input(env, args, "")
}

/// Runs a `hub` subcommand with `input` on its standard input; returns its stdout.
pub fn hub_command_with_input(
    env: &[(&str, String)],
    args: &[&str],
    input: &str,
) -> anyhow::Result<String> {
    use std::io::Write;
    let mut child = Command::new(binary("hub"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "hub {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// Polls `check` every 250 ms until it returns `Some`, or fails after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let start = Instant::now();
    let mut last_error = None;
    while start.elapsed() < timeout {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_error = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bail!("timed out after {timeout:?} waiting for {what} (last error: {last_error:?})")
}

/// A fresh PostgreSQL database URL, or `None` outside CI when no server answers (in CI a
/// missing server fails the test instead). Databases are named `{prefix}_{pid}_{random}`;
/// those left by processes that have exited are dropped first, so test runs do not pile up.
pub async fn fresh_postgres(prefix: &str) -> Option<String> {
    use sqlx::{Connection, Row};
    let admin = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut conn = match sqlx::PgConnection::connect(&admin).await {
        Ok(c) => c,
        Err(e) if std::env::var("CI").is_err() => {
            eprintln!("SKIPPED: PostgreSQL at {admin} is not reachable ({e}); CI runs this test");
            return None;
        }
        Err(e) => panic!("PostgreSQL at {admin} is required in CI: {e}"),
    };
    let pattern = format!("{prefix}\\_%");
    let existing = sqlx::query("SELECT datname FROM pg_database WHERE datname LIKE $1")
        .bind(&pattern)
        .fetch_all(&mut conn)
        .await
        .unwrap();
    for row in existing {
        let name: String = row.get("datname");
        let pid = name
            .strip_prefix(prefix)
            .and_then(|r| r.split('_').nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            // Best effort: a database still in use stays.
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name}"
            )))
            .execute(&mut conn)
            .await;
        }
    }
    let name = format!(
        "{prefix}_{}_{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    Some(format!("{}/{name}", admin.rsplit_once('/').unwrap().0))
}

/// The real hub as a process on a free port, with its database, an operator login, and its
/// log in `dir`. Started by [`Hub::start`]; killed (SIGKILL) by [`Hub::kill`] or on drop.
pub struct Hub {
    pub url: String,
    pub env: Vec<(&'static str, String)>,
    pub operator_token: String,
    pub client: reqwest::Client,
    pub log: PathBuf,
    process: Option<Process>,
}

impl Hub {
    /// Prepares a hub on `database_url` (migrated, with an operator user), not yet started.
    pub fn prepare(
        dir: &Path,
        database_url: String,
        ownership: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = free_port();
        let mut env = vec![
            ("HUB_DATABASE_URL", database_url),
            ("HUB_LISTEN", format!("127.0.0.1:{port}")),
        ];
        if let Some(o) = ownership {
            env.push(("HUB_OWNERSHIP_LIST", o.display().to_string()));
        }
        let operator_token = hub_command(&env, &["user", "add", "operator", "--role", "operator"])?;
        Ok(Self {
            url: format!("http://127.0.0.1:{port}"),
            env,
            operator_token,
            client: reqwest::Client::new(),
            log: dir.join("hub.log"),
            process: None,
        })
    }

    /// Registers gateway `id` and returns its token.
    pub fn add_gateway(&self, id: &str) -> anyhow::Result<String> {
        hub_command(&self.env, &["gateway", "add", id])
    }

    /// Starts the hub (appending to its log) and waits until it answers.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        let mut cmd = Command::new(binary("hub"));
        cmd.arg("serve").envs(self.env.iter().map(|(k, v)| (k, v)));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = cmd
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .context("starting the hub")?;
        self.process = Some(Process::from_child("hub", child));
        let (client, url) = (self.client.clone(), format!("{}/healthz", self.url));
        wait_for("the hub to answer", Duration::from_secs(30), || {
            let (client, url) = (client.clone(), url.clone());
            async move {
                Ok(client
                    .get(url)
                    .send()
                    .await?
                    .status()
                    .is_success()
                    .then_some(()))
            }
        })
        .await
    }

    pub fn kill(&mut self) {
        self.process.take();
    }

    /// GET `path` as the operator.
    pub async fn get(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        let resp = self
            .client
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.operator_token)
            .send()
            .await?;
        Ok(resp.error_for_status()?.json().await?)
    }
}

/// The last `n` lines of the log at `path`, headed by `name`, for a failing test's message.
pub fn log_tail(name: &str, path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(n).collect();
    format!(
        "--- {name} (last lines) ---\n{}",
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    )
}
