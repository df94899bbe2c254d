//! Patrol terminals end to end: `patrol-sim` terminals → the gateway's embedded broker (or
//! Mosquitto) → outbox → hub, with the gateway killed (SIGKILL) or the broker restarted
//! while they report; and tasks from the hub to a terminal and back.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use system_tests::{Hub, Process, binary, free_port, log_tail, repo, wait_for};

const TERMINALS: usize = 4;
const REPORTS_EACH: u64 = 60;

pub(crate) struct Gateway {
    config: PathBuf,
    token: String,
    log: PathBuf,
    api: String,
    pub(crate) process: Option<Process>,
}

impl Gateway {
    /// Restarts the gateway (SIGKILL) with its settings file changed by `edit`.
    pub(crate) fn reconfigure(
        &mut self,
        edit: impl FnOnce(String) -> String,
    ) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(&self.config)?;
        std::fs::write(&self.config, edit(text))?;
        self.process.take();
        self.start()
    }

    pub(crate) fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut cmd = Command::new(binary("edge-gateway"));
        cmd.arg("--config")
            .arg(&self.config)
            .env("EDGE_HUB__TOKEN", &self.token)
            .stdout(log.try_clone()?)
            .stderr(log);
        self.process = Some(Process::from_child("edge-gateway", cmd.spawn()?));
        Ok(())
    }

    pub(crate) async fn status(
        &self,
        client: &reqwest::Client,
    ) -> anyhow::Result<serde_json::Value> {
        Ok(client
            .get(format!("{}/api/v1/status", self.api))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }
}

/// Terminal credentials made with the gateway's own command: the terminals file for the
/// gateway and the `id,secret` lines for the simulator.
fn add_terminals(dir: &Path, n: usize) -> anyhow::Result<PathBuf> {
    let ids: Vec<String> = (1..=n).map(|i| format!("t-{i:04}")).collect();
    let out = Command::new(binary("edge-gateway"))
        .args(["terminal", "add", "--file"])
        .arg(dir.join("terminals.toml"))
        .args(&ids)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let creds = dir.join("credentials.csv");
    std::fs::write(&creds, &out.stdout)?;
    Ok(creds)
}

/// A started hub on SQLite, and a started gateway reporting to it every half second with
/// `patrol` as its `[patrol]` section.
async fn start(dir: &Path, patrol: &str) -> anyhow::Result<(Hub, Gateway)> {
    start_on(
        dir,
        format!("sqlite:{}", dir.join("hub.db").display()),
        patrol,
    )
    .await
}

/// [`start`] with the hub on `database_url`.
async fn start_on(
    dir: &Path,
    database_url: String,
    patrol: &str,
) -> anyhow::Result<(Hub, Gateway)> {
    let mut hub = Hub::prepare(dir, database_url, None)?;
    hub.start().await?;
    let api_port = free_port();
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[gateway]
id = "gw-patrol"
data_dir = "gateway-data"

[hub]
url = "{hub}"
token = "set in the environment"
report_interval_s = 0.5

[api]
listen = "127.0.0.1:{api_port}"

[model]
manifest = "{manifest}"

[patrol]
{patrol}
"#,
            hub = hub.url,
            manifest = repo().join("models/yolox-nano.toml").display(),
        ),
    )?;
    let mut gateway = Gateway {
        config,
        token: hub.add_gateway("gw-patrol")?,
        log: dir.join("gateway.log"),
        api: format!("http://127.0.0.1:{api_port}"),
        process: None,
    };
    gateway.start()?;
    let client = reqwest::Client::new();
    wait_for("the gateway's API", Duration::from_secs(60), || async {
        Ok(gateway.status(&client).await.ok().map(|_| ()))
    })
    .await?;
    Ok((hub, gateway))
}

/// [`start`] with the embedded broker serving `TERMINALS` terminals; returns their
/// credentials for the simulator and the MQTT port too.
async fn start_embedded(dir: &Path) -> anyhow::Result<(Hub, Gateway, PathBuf, u16)> {
    let (hub, gateway, creds, mqtt_port) = start_embedded_on(
        dir,
        format!("sqlite:{}", dir.join("hub.db").display()),
        TERMINALS,
    )
    .await?;
    Ok((hub, gateway, creds, mqtt_port))
}

/// [`start_embedded`] with `terminals` terminals and the hub on `database_url`.
pub(crate) async fn start_embedded_on(
    dir: &Path,
    database_url: String,
    terminals: usize,
) -> anyhow::Result<(Hub, Gateway, PathBuf, u16)> {
    let creds = add_terminals(dir, terminals)?;
    let mqtt_port = free_port();
    let patrol = format!("listen = \"127.0.0.1:{mqtt_port}\"\nterminals_file = \"terminals.toml\"");
    let (hub, gateway) = start_on(dir, database_url, &patrol).await?;
    Ok((hub, gateway, creds, mqtt_port))
}

/// `patrol-sim` sending `REPORTS_EACH` reports from each terminal as fast as it can (with
/// `terminals` = its terminal options), writing acknowledged event ids to `dir/acked.txt`.
fn run_sim(dir: &Path, mqtt_port: u16, terminals: &[&str]) -> anyhow::Result<Process> {
    let reports = REPORTS_EACH.to_string();
    let mut args = terminals.to_vec();
    args.extend([
        "--report-every",
        "0.05",
        "--photo-kb",
        "8",
        "--reports",
        &reports,
    ]);
    run_sim_with(dir, mqtt_port, &args)
}

/// `patrol-sim` with `args`, tracks every half second, acknowledged event ids written to
/// `dir/acked.txt`, its log in `dir/sim.log`.
pub(crate) fn run_sim_with(dir: &Path, mqtt_port: u16, args: &[&str]) -> anyhow::Result<Process> {
    let mut sim = Command::new(binary("patrol-sim"));
    sim.arg("--broker")
        .arg(format!("mqtt://127.0.0.1:{mqtt_port}"))
        .args(["--location-every", "0.5"])
        .args(args)
        .arg("--acked")
        .arg(dir.join("acked.txt"));
    Process::spawn("patrol-sim", &mut sim, &dir.join("sim.log"))
}

/// Waits for the simulator to finish and checks that all `sent` reports were acknowledged,
/// each exactly once at the hub, with no session lost and no report refused.
pub(crate) async fn check_delivered(
    dir: &Path,
    sim: &mut Process,
    hub: &Hub,
    gateway: &Gateway,
    sent: u64,
) -> anyhow::Result<()> {
    wait_for("the simulator to finish", Duration::from_secs(600), || {
        let running = sim.is_running();
        async move { Ok((!running).then_some(())) }
    })
    .await?;
    let log = std::fs::read_to_string(dir.join("sim.log"))?;
    let summary: serde_json::Value = log
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .with_context(|| format!("no summary from the simulator:\n{log}"))?;
    anyhow::ensure!(
        summary["sessions_lost"] == 0 && summary["replies_refused"] == 0,
        "{summary}"
    );
    let acked: Vec<String> = std::fs::read_to_string(dir.join("acked.txt"))?
        .lines()
        .map(str::to_owned)
        .collect();
    let unique: HashSet<&String> = acked.iter().collect();
    anyhow::ensure!(
        unique.len() as u64 == sent,
        "{} of {sent} reports acknowledged ({} acks); simulator said:\n{summary}",
        unique.len(),
        acked.len()
    );
    let client = reqwest::Client::new();
    wait_for("the outbox to drain", Duration::from_secs(600), || async {
        let s = gateway.status(&client).await?;
        Ok((s["outbox_pending"] == 0).then_some(()))
    })
    .await?;
    let mut at_hub = Vec::new();
    for offset in (0..).step_by(500) {
        let page = hub
            .get(&format!("/api/v1/events?limit=500&offset={offset}"))
            .await?;
        let items = page["items"].as_array().context("items")?;
        at_hub.extend(
            items
                .iter()
                .filter_map(|e| e["id"].as_str().map(str::to_owned)),
        );
        if items.len() < 500 {
            break;
        }
    }
    let hub_ids: HashSet<&String> = at_hub.iter().collect();
    anyhow::ensure!(
        hub_ids.len() == at_hub.len(),
        "the hub lists an event twice"
    );
    let missing: Vec<_> = unique.iter().filter(|id| !hub_ids.contains(**id)).collect();
    anyhow::ensure!(
        missing.is_empty(),
        "{} acknowledged reports missing at the hub, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    anyhow::ensure!(
        at_hub.len() as u64 == sent,
        "the hub holds {} events for {sent} reports",
        at_hub.len()
    );
    Ok(())
}

pub(crate) fn logs(dir: &Path) -> String {
    ["hub", "gateway", "sim"]
        .map(|n| log_tail(n, &dir.join(format!("{n}.log")), 25))
        .join("\n")
}

/// Every report a terminal saw acknowledged reaches the hub exactly once, although the
/// gateway is killed three times while the terminals report.
#[tokio::test]
async fn acknowledged_reports_survive_killing_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, mut gateway, creds, mqtt_port) = start_embedded(dir.path())
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", logs(dir.path())));
    let result = async {
        let creds = creds.display().to_string();
        let mut sim = run_sim(dir.path(), mqtt_port, &["--credentials", &creds])?;
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(700)).await;
            gateway.process.take(); // SIGKILL
            tokio::time::sleep(Duration::from_millis(500)).await;
            gateway.start()?;
        }
        check_delivered(
            dir.path(),
            &mut sim,
            &hub,
            &gateway,
            TERMINALS as u64 * REPORTS_EACH,
        )
        .await
    }
    .await;
    if let Err(e) = result {
        panic!("{e:#}\n{}", logs(dir.path()));
    }
}

/// The same through an external Mosquitto (persistence on) that is stopped and restarted
/// while the terminals report. Mosquitto saves its state on a clean stop and periodically;
/// killed with SIGKILL it would lose what it acknowledged since its last save, which is why
/// the embedded broker is the default.
#[tokio::test]
async fn acknowledged_reports_survive_restarting_mosquitto() {
    let dir = tempfile::tempdir().unwrap();
    let mqtt_port = free_port();
    let store = dir.path().join("mosquitto");
    std::fs::create_dir(&store).unwrap();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            // `user root`: started as root, Mosquitto would otherwise switch to its own user,
            // which may not write here (no effect when not started as root).
            "user root\nlistener {mqtt_port} 127.0.0.1\nallow_anonymous true\npersistence true\n\
             persistence_location {}/\nmax_queued_messages 100000\nmax_inflight_messages 100\n",
            store.display()
        ),
    )
    .unwrap();
    let mosquitto = || {
        let mut cmd = Command::new("mosquitto");
        cmd.arg("-c").arg(&conf);
        let log = dir.path().join("mosquitto.log");
        Process::spawn("mosquitto", &mut cmd, &log)
    };
    let mut broker = mosquitto().expect("mosquitto (Debian package mosquitto)");
    let patrol = format!("broker = \"mqtt://127.0.0.1:{mqtt_port}\"");
    let (hub, gateway) = start(dir.path(), &patrol)
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", logs(dir.path())));
    let result = async {
        let terminals = ["--terminals", "4", "--prefix", "m-"];
        let mut sim = run_sim(dir.path(), mqtt_port, &terminals)?;
        tokio::time::sleep(Duration::from_millis(1200)).await;
        broker.terminate();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _broker = mosquitto()?;
        check_delivered(dir.path(), &mut sim, &hub, &gateway, 4 * REPORTS_EACH).await
    }
    .await;
    if let Err(e) = result {
        panic!(
            "{e:#}\n{}\n{}",
            logs(dir.path()),
            log_tail("mosquitto", &dir.path().join("mosquitto.log"), 20)
        );
    }
}

/// The centre sends a terminal to a case's place: the task reaches the terminal through its
/// gateway, and the terminal's answers come back onto the case.
#[tokio::test]
async fn a_task_reaches_the_terminal_and_its_answers_the_case() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, _gateway, creds, mqtt_port) = start_embedded(dir.path())
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", logs(dir.path())));
    let mut sim = Command::new(binary("patrol-sim"));
    sim.arg("--broker")
        .arg(format!("mqtt://127.0.0.1:{mqtt_port}"))
        .arg("--credentials")
        .arg(&creds)
        .args([
            "--report-every",
            "1",
            "--location-every",
            "1",
            "--photo-kb",
            "4",
        ])
        .args(["--task-done-after", "1", "--duration", "120"]);
    let _sim = Process::spawn("patrol-sim", &mut sim, &dir.path().join("sim.log")).unwrap();
    let result = async {
        wait_for(
            "terminal t-0001 online at the hub",
            Duration::from_secs(30),
            || async {
                let terminals = hub.get("/api/v1/terminals").await?;
                let online =
                    terminals.as_array().into_iter().flatten().any(|t| {
                        t["id"] == "t-0001" && t["presence"] == "online" && t["lat"].is_f64()
                    });
                Ok(online.then_some(()))
            },
        )
        .await?;
        let case = wait_for("a patrol case", Duration::from_secs(30), || async {
            let cases = hub.get("/api/v1/cases").await?;
            Ok(cases["items"][0]["id"].as_str().map(str::to_owned))
        })
        .await?;
        let resp = hub
            .client
            .post(format!("{}/api/v1/cases/{case}/tasks", hub.url))
            .bearer_auth(&hub.operator_token)
            .json(
                &serde_json::json!({"terminal_id": "t-0001", "kind": "verify",
                                      "title": "核实现场 verify on site"}),
            )
            .send()
            .await?;
        anyhow::ensure!(resp.status() == 201, "{}", resp.text().await?);
        let detail = wait_for("the task done", Duration::from_secs(60), || async {
            let d = hub.get(&format!("/api/v1/cases/{case}")).await?;
            Ok((d["tasks"][0]["state"] == "done").then_some(d))
        })
        .await?;
        let reply = detail["tasks"][0]["reply"].as_str().unwrap_or_default();
        anyhow::ensure!(reply.contains("simulated"), "reply {reply:?}");
        let actions: Vec<&str> = detail["timeline"]
            .as_array()
            .context("timeline")?
            .iter()
            .filter_map(|t| t["action"].as_str())
            .filter(|a| a.starts_with("task_"))
            .collect();
        anyhow::ensure!(
            actions == ["task_assigned", "task_received", "task_done"],
            "{actions:?}"
        );
        Ok::<_, anyhow::Error>(())
    }
    .await;
    if let Err(e) = result {
        panic!("{e:#}\n{}", logs(dir.path()));
    }
}
