//! Cameras from the hub's device registry: a technician enters cameras at the hub and the
//! running gateway (`camera_registry = true`) starts, replaces and stops them without a
//! restart, while the cameras already running keep streaming; a camera with a sub-stream
//! is analysed on it. A camera with a broken URL is
//! faulty on its own; a document the gateway cannot run is refused with the reason shown at
//! the hub, and the cameras running stay; a camera whose server goes away is reported
//! offline, then online when it is back, once each; with the hub down, a restarted gateway
//! runs its last good list. The camera password (digest auth at the RTSP server) appears in
//! no log.

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use super::{gateway_status, port_of};
use system_tests::{
    Hub, Process, binary, free_port, hub_command, log_tail, repo, rtsp_server_on, rtsp_server_with,
    shared, wait_for,
};

const PASSWORD: &str = "Reg1stry-Cam-Pw";

fn test_pattern(auth: bool) -> anyhow::Result<(Process, String)> {
    let mut args = vec![OsStr::new("--test-pattern")];
    if auth {
        args.extend(["--user", "installer", "--password", PASSWORD].map(OsStr::new));
    }
    rtsp_server_with(&args)
}

fn camera(id: &str, url: &str) -> Value {
    json!({
        "id": id,
        "url": url,
        "detect_fps": 0.5,
        "location": { "lat": 30.27, "lon": 120.15, "area_code": "330106001001" }
    })
}

struct Setup {
    dir: tempfile::TempDir,
    hub: Hub,
    technician: String,
    gateway_token: String,
    config: std::path::PathBuf,
    api: String,
    client: reqwest::Client,
}

impl Setup {
    fn start_gateway(&self, log: &str) -> anyhow::Result<Process> {
        let mut gw = std::process::Command::new(binary("edge-gateway"));
        gw.arg("--config")
            .arg(&self.config)
            .env("EDGE_HUB__TOKEN", &self.gateway_token)
            .env("MODEL_CACHE", shared().join("models"));
        Process::spawn("edge-gateway", &mut gw, &self.dir.path().join(log))
    }

    async fn put(&self, id: &str, camera: Value) -> anyhow::Result<()> {
        let resp = self
            .client
            .put(format!("{}/api/v1/registry/cameras/{id}", self.hub.url))
            .bearer_auth(&self.technician)
            .json(&json!({ "gateway_id": "gw-reg", "camera": camera }))
            .send()
            .await?;
        anyhow::ensure!(
            resp.status().is_success(),
            "PUT {id}: {}",
            resp.text().await?
        );
        Ok(())
    }

    async fn delete(&self, id: &str) -> anyhow::Result<()> {
        let resp = self
            .client
            .delete(format!("{}/api/v1/registry/cameras/{id}", self.hub.url))
            .bearer_auth(&self.technician)
            .send()
            .await?;
        anyhow::ensure!(resp.status().is_success(), "DELETE {id}");
        Ok(())
    }

    /// The gateway's cameras by id: (state, frames received, last error).
    async fn cameras(&self) -> anyhow::Result<Vec<(String, String, u64, Value)>> {
        let status = gateway_status(&self.client, &self.api).await?;
        Ok(status["cameras"]
            .as_array()
            .context("cameras")?
            .iter()
            .map(|c| {
                (
                    c["id"].as_str().unwrap_or_default().to_owned(),
                    c["state"].as_str().unwrap_or_default().to_owned(),
                    c["frames_received"].as_u64().unwrap_or(0),
                    c["last_error"].clone(),
                )
            })
            .collect())
    }

    async fn frames(&self, id: &str) -> anyhow::Result<Option<u64>> {
        Ok(self
            .cameras()
            .await?
            .into_iter()
            .find(|c| c.0 == id)
            .map(|c| c.2))
    }

    async fn wait_streaming(&self, id: &str) -> anyhow::Result<Duration> {
        let started = Instant::now();
        wait_for(
            &format!("camera {id} streaming"),
            Duration::from_secs(60),
            || async {
                let cams = self.cameras().await?;
                Ok(cams
                    .iter()
                    .any(|c| c.0 == id && c.1 == "streaming" && c.2 > 0)
                    .then_some(()))
            },
        )
        .await?;
        Ok(started.elapsed())
    }

    /// The gateway as the hub lists it.
    async fn gateway_at_hub(&self) -> anyhow::Result<Value> {
        let gateways = self.hub.get("/api/v1/gateways").await?;
        gateways
            .as_array()
            .and_then(|g| g.iter().find(|g| g["id"] == "gw-reg"))
            .cloned()
            .context("gw-reg at the hub")
    }
}

/// The events at the hub from `camera`, newest first: (rule, description).
async fn camera_events(setup: &Setup, camera: &str) -> anyhow::Result<Vec<(String, String)>> {
    let events = setup.hub.get("/api/v1/events?limit=200").await?;
    Ok(events["items"]
        .as_array()
        .context("events")?
        .iter()
        .filter(|e| e["source_id"] == camera)
        .map(|e| {
            (
                e["rule"].as_str().unwrap_or_default().to_owned(),
                e["description"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect())
}

#[tokio::test]
async fn the_gateway_follows_the_registry_without_restarting() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("hub.db").display());
    let mut hub = Hub::prepare(dir.path(), db, None).unwrap();
    hub.env.push(("HUB_REGISTRY_KEY", "ab".repeat(32)));
    let technician =
        hub_command(&hub.env, &["user", "add", "tech", "--role", "technician"]).unwrap();
    let gateway_token = hub.add_gateway("gw-reg").unwrap();
    let api_port = free_port();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[gateway]
id = "gw-reg"
data_dir = "gateway-data"
camera_offline_after_s = 2

[hub]
url = "{hub_url}"
token = "set in the environment"
report_interval_s = 1
camera_registry = true

[api]
listen = "127.0.0.1:{api_port}"

[model]
manifest = "{manifest}"
"#,
            hub_url = hub.url,
            manifest = repo().join("models/yolox-nano.toml").display(),
        ),
    )
    .unwrap();
    let (_secured, secured_url) = test_pattern(true).unwrap();
    let (open, open_url) = test_pattern(false).unwrap();
    let mut open = Some(open);
    let mut setup = Setup {
        hub,
        technician,
        gateway_token,
        config,
        api: format!("http://127.0.0.1:{api_port}"),
        client: reqwest::Client::new(),
        dir,
    };
    setup.hub.start().await.unwrap();
    let mut gateway = Some(setup.start_gateway("gateway.log").unwrap());

    let result = async {
        // A camera behind digest auth: its password goes through the registry.
        let mut a = camera("cam-a", &secured_url);
        a["username"] = json!("installer");
        a["password"] = json!(PASSWORD);
        setup.put("cam-a", a).await?;
        let took = setup.wait_streaming("cam-a").await?;
        println!(
            "cam-a streaming {} ms after it was entered",
            took.as_millis()
        );

        // A second camera starts while the first keeps streaming: its frame count grows
        // between every two looks a second apart.
        // Its main stream is out of reach: the gateway analyses the sub-stream.
        let mut b = camera("cam-b", &format!("rtsp://127.0.0.1:{}/main", free_port()));
        b["sub_url"] = json!(open_url);
        setup.put("cam-b", b).await?;
        let mut last = setup.frames("cam-a").await?.context("cam-a")?;
        let started = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = setup.frames("cam-a").await?.context("cam-a kept")?;
            anyhow::ensure!(
                now > last,
                "cam-a stalled at {now} frames while cam-b started"
            );
            last = now;
            let b_streaming = setup
                .cameras()
                .await?
                .iter()
                .any(|c| c.0 == "cam-b" && c.1 == "streaming" && c.2 > 0);
            if b_streaming {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(60),
                "cam-b never streamed"
            );
        }

        // A broken URL: that camera is faulty and says why; the others stream on.
        let closed = format!("rtsp://127.0.0.1:{}/cam", free_port());
        setup.put("cam-c", camera("cam-c", &closed)).await?;
        let faulty = wait_for("cam-c faulty", Duration::from_secs(60), || async {
            let cams = setup.cameras().await?;
            Ok(cams
                .into_iter()
                .find(|c| c.0 == "cam-c" && c.1 == "retrying" && c.3.is_string()))
        })
        .await?;
        anyhow::ensure!(
            faulty.3.as_str().is_some_and(|e| e.contains("connect")),
            "{faulty:?}"
        );
        let (a0, b0) = (setup.frames("cam-a").await?, setup.frames("cam-b").await?);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (a1, b1) = (setup.frames("cam-a").await?, setup.frames("cam-b").await?);
        anyhow::ensure!(a1 > a0 && b1 > b0, "a {a0:?}→{a1:?}, b {b0:?}→{b1:?}");

        // A document the gateway cannot run (a model it lacks) is refused whole: the
        // reason reaches the hub and the cameras running stay.
        let applied = wait_for(
            "the applied revision at the hub",
            Duration::from_secs(30),
            || async {
                let g = setup.gateway_at_hub().await?;
                Ok((g["config_applied"] == g["config_revision"])
                    .then_some(g["config_applied"].clone()))
            },
        )
        .await?;
        let mut d = camera("cam-d", &open_url);
        d["model"] = json!("thermal");
        setup.put("cam-d", d).await?;
        let refused = wait_for(
            "the refusal at the hub",
            Duration::from_secs(60),
            || async {
                let g = setup.gateway_at_hub().await?;
                Ok(g["config_error"].is_string().then_some(g))
            },
        )
        .await?;
        anyhow::ensure!(
            refused["config_error"]
                .as_str()
                .is_some_and(|e| e.contains("thermal"))
                && refused["config_applied"] == applied,
            "{refused}"
        );
        let ids: Vec<String> = setup.cameras().await?.into_iter().map(|c| c.0).collect();
        anyhow::ensure!(ids == ["cam-a", "cam-b", "cam-c"], "{ids:?}");
        setup.delete("cam-d").await?;
        setup.delete("cam-c").await?;
        wait_for("cam-c stopped", Duration::from_secs(60), || async {
            let ids: Vec<String> = setup.cameras().await?.into_iter().map(|c| c.0).collect();
            Ok((ids == ["cam-a", "cam-b"]).then_some(()))
        })
        .await?;
        wait_for(
            "the error cleared at the hub",
            Duration::from_secs(30),
            || async {
                let g = setup.gateway_at_hub().await?;
                Ok(
                    (g["config_error"].is_null() && g["config_applied"] == g["config_revision"])
                        .then_some(()),
                )
            },
        )
        .await?;

        // cam-b's server goes away: offline once it stays down, online once it is back.
        open.take();
        let offline = wait_for(
            "cam-b offline at the hub",
            Duration::from_secs(60),
            || async {
                Ok(camera_events(&setup, "cam-b")
                    .await?
                    .into_iter()
                    .find(|e| e.0 == "camera_offline"))
            },
        )
        .await?;
        anyhow::ensure!(offline.1.contains("offline"), "{offline:?}");
        let port = port_of(&open_url)?;
        open = Some(rtsp_server_on(port, &[OsStr::new("--test-pattern")])?.0);
        wait_for(
            "cam-b online at the hub",
            Duration::from_secs(60),
            || async {
                let rules: Vec<String> = camera_events(&setup, "cam-b")
                    .await?
                    .into_iter()
                    .map(|e| e.0)
                    .collect();
                Ok(rules.iter().any(|r| r == "camera_online").then_some(()))
            },
        )
        .await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let rules: Vec<String> = camera_events(&setup, "cam-b")
            .await?
            .into_iter()
            .map(|e| e.0)
            .collect();
        anyhow::ensure!(
            rules == ["camera_online", "camera_offline"],
            "once each: {rules:?}"
        );

        // The hub goes away; a restarted gateway runs its last good list on its own.
        setup.hub.kill();
        gateway.take();
        gateway = Some(setup.start_gateway("gateway-restarted.log")?);
        setup.wait_streaming("cam-a").await?;
        setup.wait_streaming("cam-b").await?;

        // No log holds the camera password.
        gateway.take();
        let logs = ["gateway.log", "gateway-restarted.log"].map(|l| setup.dir.path().join(l));
        for log in logs.iter().chain([&setup.hub.log]) {
            let text = std::fs::read_to_string(log)?;
            anyhow::ensure!(
                !text.contains(PASSWORD),
                "{} shows the password",
                log.display()
            );
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    if let Err(e) = result {
        panic!(
            "{e:#}\n{}\n{}\n{}",
            log_tail("hub", &setup.hub.log, 30),
            log_tail("gateway", &setup.dir.path().join("gateway.log"), 40),
            log_tail(
                "gateway",
                &setup.dir.path().join("gateway-restarted.log"),
                20
            )
        );
    }
}
