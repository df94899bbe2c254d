//! Whole-system tests: a real RTSP server serving an H.264 clip made from a licensed crowd
//! photo (or a generated road scene), the real `hub` and `edge-gateway` binaries as
//! processes on free ports, ONNX Runtime with the shared YOLOX-Nano weights (or the
//! project's manhole model). The path under test is the product's: camera → decode →
//! detect → crowd or hazard rule → outbox → uplink → hub → routed case, and patrol terminal
//! → MQTT → outbox → hub (`patrol`).

mod cameras;
mod dashboard;
mod manhole;
mod patrol;
mod registry;
mod store_forward;
mod terminal_registry;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;
use system_tests::{
    Hub, Process, binary, free_port, fresh_postgres, log_tail, make_clip, repo, rtsp_server,
    shared, wait_for,
};

/// The crowd photo and its hand-counted people (see ../shared/testdata/README.md).
const CROWD_IMAGE: &str = "crowd_seminar_ibm_stc-brownbag.jpg";
const CROWD_TRUE_COUNT: f64 = 18.0;

/// What the camera shows and what the gateway and hub make of it.
struct Scenario {
    /// The still the camera's clip is made from.
    image: PathBuf,
    /// The hub's ownership list.
    ownership: &'static str,
    /// Gateway configuration after `[api]`: the model(s) and the camera with its rules.
    gateway: String,
}

impl Scenario {
    fn crowd() -> Self {
        Self {
            image: shared().join("testdata").join(CROWD_IMAGE),
            ownership: "[[item]]\ncategory = \"event:0407\"\ndepartment = \"police\"\ntime_limit = \"2 urgent_hours\"\n",
            gateway: format!(
                r#"
[model]
manifest = "{manifest}"

[[camera]]
id = "cam-1"
name = "test camera"
url = "{{rtsp_url}}"
detect_fps = 2

[camera.location]
lat = 30.27
lon = 120.15
area_code = "330106001001"

[camera.crowd]
min_persons = 5
cooldown_s = 2
refresh_s = 2
"#,
                manifest = repo().join("models/yolox-nano.toml").display(),
            ),
        }
    }
}

struct System {
    dir: tempfile::TempDir,
    rtsp: Option<Process>,
    hub: Hub,
    gateway: Option<Process>,
    gateway_api: String,
    client: reqwest::Client,
}

impl System {
    async fn start(database_url: String, scenario: Scenario) -> anyhow::Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir()?;
        let clip = dir.path().join("camera.mp4");
        make_clip(&scenario.image, &clip, 20)?;
        let (rtsp, rtsp_url) = rtsp_server(&clip)?;

        let ownership = dir.path().join("ownership.toml");
        std::fs::write(&ownership, scenario.ownership)?;
        let hub = Hub::prepare(dir.path(), database_url, Some(&ownership))?;
        let gateway_token = hub.add_gateway("gw-test")?;

        let api_port = free_port();
        let config = dir.path().join("gateway.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[gateway]
id = "gw-test"
data_dir = "gateway-data"

[hub]
url = "{hub_url}"
token = "set in the environment"
report_interval_s = 2

[api]
listen = "127.0.0.1:{api_port}"
{rest}"#,
                hub_url = hub.url,
                rest = scenario.gateway.replace("{rtsp_url}", &rtsp_url),
            ),
        )?;
        let mut system = System {
            rtsp: Some(rtsp),
            hub,
            gateway: None,
            gateway_api: format!("http://127.0.0.1:{api_port}"),
            client: reqwest::Client::new(),
            dir,
        };
        system.hub.start().await?;
        let mut gw = std::process::Command::new(binary("edge-gateway"));
        gw.arg("--config")
            .arg(&config)
            .env("EDGE_HUB__TOKEN", gateway_token)
            .env("MODEL_CACHE", shared().join("models"));
        system.gateway = Some(Process::spawn(
            "edge-gateway",
            &mut gw,
            &system.log("gateway"),
        )?);
        Ok(system)
    }

    fn log(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    async fn gateway_status(&self) -> anyhow::Result<Value> {
        gateway_status(&self.client, &self.gateway_api).await
    }

    /// The logs, for a failing test's message.
    fn logs(&self) -> String {
        format!(
            "{}\n{}",
            log_tail("hub", &self.hub.log, 30),
            log_tail("gateway", &self.log("gateway"), 30)
        )
    }
}

/// The gateway's `/api/v1/status` from its local API at `api`.
async fn gateway_status(client: &reqwest::Client, api: &str) -> anyhow::Result<Value> {
    Ok(client
        .get(format!("{api}/api/v1/status"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// The port of a local RTSP server's URL (`rtsp://127.0.0.1:PORT/…`).
fn port_of(url: &str) -> anyhow::Result<u16> {
    url.trim_start_matches("rtsp://127.0.0.1:")
        .split('/')
        .next()
        .and_then(|p| p.parse().ok())
        .context("the server's port")
}

/// A camera's crowd becomes a case at the hub, routed to the department the ownership
/// list names, with a plausible person count, a downloadable annotated snapshot and a clip
/// of the seconds before.
async fn crowd_case_reaches_the_hub(database_url: String) {
    let system = System::start(database_url, Scenario::crowd())
        .await
        .unwrap();
    let result = async {
        let cases = wait_for(
            "a crowd case at the hub",
            Duration::from_secs(120),
            || async {
                let cases = system.hub.get("/api/v1/cases?category=event:0407").await?;
                Ok((cases["total"].as_i64() > Some(0)).then_some(cases))
            },
        )
        .await?;
        let case = &cases["items"][0];
        anyhow::ensure!(
            case["department"] == "police",
            "routed to {}",
            case["department"]
        );
        anyhow::ensure!(
            case["state"] == "dispatched" && case["queue"] == "department",
            "{case}"
        );
        let id = case["id"].as_str().context("case id")?;
        let detail = system.hub.get(&format!("/api/v1/cases/{id}")).await?;
        let event = &detail["events"][0]["event"];
        anyhow::ensure!(event["source"]["camera_id"] == "cam-1", "{event}");
        let persons = event["detection"]["counts"]["person"]
            .as_f64()
            .context("person count")?;
        let (low, high) = (CROWD_TRUE_COUNT * 0.7, CROWD_TRUE_COUNT * 1.3);
        anyhow::ensure!(
            (low..=high).contains(&persons),
            "counted {persons} persons, expected {low}..={high}"
        );
        // Each person is tracked, under an id of its own; the crowd goes on at the hub.
        let mut ids: Vec<u64> = event["detection"]["objects"]
            .as_array()
            .context("objects")?
            .iter()
            .map(|o| o["track_id"].as_u64().context("a track id"))
            .collect::<anyhow::Result<_>>()?;
        let counted = ids.len();
        ids.sort_unstable();
        ids.dedup();
        anyhow::ensure!(ids.len() == counted, "track ids repeat: {event}");
        let episode = &detail["episodes"][0];
        anyhow::ensure!(
            episode["source_id"] == "cam-1"
                && episode["rule"] == "crowd"
                && episode["ended_at"].is_null(),
            "{detail}"
        );
        let url = detail["evidence_urls"][0]
            .as_str()
            .context("an evidence URL")?;
        let resp = system
            .client
            .get(format!("{}{url}", system.hub.url))
            .bearer_auth(&system.hub.operator_token)
            .send()
            .await?;
        anyhow::ensure!(
            resp.headers()["content-type"] == "image/jpeg",
            "{:?}",
            resp.headers()
        );
        let jpeg = resp.error_for_status()?.bytes().await?;
        // The gateway counts a delivery once the hub has answered, which may be a moment
        // after the case shows at the hub.
        wait_for(
            "the gateway's metrics to count the delivery",
            Duration::from_secs(30),
            || async {
                let metrics = system
                    .client
                    .get(format!("{}/metrics", system.gateway_api))
                    .send()
                    .await?
                    .error_for_status()?
                    .text()
                    .await?;
                let sample = |name: &str| {
                    metrics
                        .lines()
                        .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
                        .with_context(|| {
                            format!("{name} missing from the gateway's metrics:\n{metrics}")
                        })
                };
                let analysed = sample("edge_camera_frames_analysed_total{camera=\"cam-1\"}")?;
                let delivered = sample("edge_events_delivered_total")?;
                Ok((analysed > 0.0 && delivered >= 1.0).then_some(()))
            },
        )
        .await?;
        anyhow::ensure!(
            jpeg.starts_with(&[0xFF, 0xD8, 0xFF]) && jpeg.len() > 10_000,
            "not a snapshot: {} bytes",
            jpeg.len()
        );
        // The crowd's first event carries the seconds of stream before it, as an MP4.
        let clip = event["evidence"]
            .as_array()
            .and_then(|all| all.iter().find(|e| e["kind"] == "clip"))
            .with_context(|| format!("no clip in the crowd's first event: {event}"))?;
        let resp = system
            .client
            .get(format!(
                "{}/api/v1/blobs/{}",
                system.hub.url,
                clip["sha256"].as_str().unwrap_or_default()
            ))
            .bearer_auth(&system.hub.operator_token)
            .send()
            .await?
            .error_for_status()?;
        anyhow::ensure!(
            resp.headers()["content-type"] == "video/mp4",
            "{:?}",
            resp.headers()
        );
        let mp4 = resp.bytes().await?;
        anyhow::ensure!(
            mp4.get(4..8) == Some(b"ftyp".as_slice()) && mp4.len() as u64 == clip["bytes"],
            "not the clip: {} bytes",
            mp4.len()
        );
        // The gateway's reports carry the camera's health to the hub.
        let camera = wait_for(
            "the camera's health at the hub",
            Duration::from_secs(30),
            || async {
                let cameras = system.hub.get("/api/v1/cameras").await?;
                Ok(cameras
                    .as_array()
                    .and_then(|c| c.first())
                    .filter(|c| {
                        c["state"] == "streaming"
                            && c["fps"].as_f64() > Some(0.0)
                            && c["last_event_at"].is_string()
                    })
                    .cloned())
            },
        )
        .await?;
        anyhow::ensure!(camera["camera_id"] == "cam-1", "{camera}");
        Ok::<_, anyhow::Error>(())
    }
    .await;
    if let Err(e) = result {
        panic!("{e:#}\n{}", system.logs());
    }
}

#[tokio::test]
async fn crowd_case_reaches_the_hub_on_sqlite() {
    let db = tempfile::tempdir().unwrap();
    crowd_case_reaches_the_hub(format!("sqlite:{}", db.path().join("hub.db").display())).await;
}

#[tokio::test]
async fn crowd_case_reaches_the_hub_on_postgres() {
    if let Some(url) = fresh_postgres("system").await {
        crowd_case_reaches_the_hub(url).await;
    }
}

/// The hub is killed (SIGKILL) while the gateway keeps detecting; the events made while it
/// was down wait in the outbox and all arrive, once each, when it is back.
#[tokio::test]
async fn killing_the_hub_loses_nothing() {
    let db = tempfile::tempdir().unwrap();
    let mut system = System::start(
        format!("sqlite:{}", db.path().join("hub.db").display()),
        Scenario::crowd(),
    )
    .await
    .unwrap();
    let result = async {
        wait_for(
            "a first delivered event",
            Duration::from_secs(120),
            || async {
                let status = system.gateway_status().await?;
                Ok((status["events_delivered"].as_u64() > Some(0)).then_some(()))
            },
        )
        .await?;
        system.hub.kill();
        let backlog = wait_for(
            "events waiting in the outbox",
            Duration::from_secs(60),
            || async {
                let status = system.gateway_status().await?;
                let waiting = status["outbox_pending"].as_u64() >= Some(2)
                    && status["outbox_oldest_age_s"].as_f64() > Some(0.0);
                Ok(waiting.then_some(status["outbox_pending"].as_u64()))
            },
        )
        .await?;
        system.hub.start().await?;
        // Stop the camera so the set of events is final, then let the outbox drain.
        system.rtsp.take();
        let status = wait_for("the outbox to drain", Duration::from_secs(90), || async {
            let s = system.gateway_status().await?;
            let drained = s["outbox_pending"] == 0 && s["cameras"][0]["state"] != "streaming";
            Ok(drained.then_some(s))
        })
        .await?;
        let created = status["events_created"]
            .as_i64()
            .context("events_created")?;
        let events = system.hub.get("/api/v1/events?limit=500").await?;
        anyhow::ensure!(
            events["total"].as_i64() == Some(created),
            "the gateway made {created} events, the hub holds {} (backlog while down: {backlog:?})",
            events["total"]
        );
        // One camera, one place: every event joined the first case.
        let cases = system.hub.get("/api/v1/cases").await?;
        anyhow::ensure!(cases["total"] == 1, "one case expected: {}", cases["total"]);
        let id = cases["items"][0]["id"].as_str().context("case id")?;
        let case = system.hub.get(&format!("/api/v1/cases/{id}")).await?;
        let in_case = case["events"].as_array().map(Vec::len);
        anyhow::ensure!(
            in_case == Some(created as usize),
            "the case holds {in_case:?} of {created} events"
        );
        anyhow::ensure!(status["dead_letters"] == 0, "{status}");
        // The failed attempts while the hub was down are counted; nothing waits any more.
        anyhow::ensure!(
            status["uplink"]["retries"].as_u64() > Some(0) && status["outbox_oldest_age_s"] == 0.0,
            "{status}"
        );
        Ok::<_, anyhow::Error>(())
    }
    .await;
    if let Err(e) = result {
        panic!("{e:#}\n{}", system.logs());
    }
}
