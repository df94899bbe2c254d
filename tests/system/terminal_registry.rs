//! Patrol terminals from the hub's device registry: a technician enters a terminal at the
//! hub and the running gateway (`camera_registry = true`, no terminals file) admits it to
//! its embedded broker without a restart; a new secret closes the open connection and
//! refuses the old secret; a terminal removed is refused. The secrets appear in no log.

use std::time::Duration;

use anyhow::Context;
use rumqttc::{ConnectReturnCode, ConnectionError, Event, EventLoop, MqttOptions, Packet};
use serde_json::{Value, json};

use system_tests::{
    Hub, Process, binary, free_port, hub_command, log_tail, repo, shared, wait_for,
};

/// What a terminal's connection attempt came to.
#[derive(Debug, PartialEq)]
enum Door {
    Open,
    Refused(ConnectReturnCode),
    /// No answer: the gateway is not listening (yet), or another failure.
    Failed(String),
}

/// One connection attempt; while it is kept, the connection stays (the client handle
/// must live for its event loop to run).
struct Attempt {
    door: Door,
    _client: rumqttc::AsyncClient,
    eventloop: EventLoop,
}

/// Connects as terminal `id` with `secret`.
async fn knock(port: u16, id: &str, secret: &str) -> Attempt {
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    options
        .set_credentials(id, secret)
        .set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 8);
    let door = match tokio::time::timeout(Duration::from_secs(5), eventloop.poll()).await {
        Ok(Ok(Event::Incoming(Packet::ConnAck(ack)))) if ack.code == ConnectReturnCode::Success => {
            Door::Open
        }
        Ok(Ok(other)) => Door::Failed(format!("{other:?}")),
        Ok(Err(ConnectionError::ConnectionRefused(code))) => Door::Refused(code),
        Ok(Err(e)) => Door::Failed(e.to_string()),
        Err(_) => Door::Failed("no CONNACK in 5 s".into()),
    };
    Attempt {
        door,
        _client: client,
        eventloop,
    }
}

/// Waits until `id` with `secret` meets `want` at the door; that attempt.
async fn wait_door(port: u16, id: &str, secret: &str, want: Door) -> anyhow::Result<Attempt> {
    let what = format!("terminal {id}: {want:?}");
    let want = &want;
    wait_for(&what, Duration::from_secs(20), || async move {
        let attempt = knock(port, id, secret).await;
        Ok((attempt.door == *want).then_some(attempt))
    })
    .await
}

const REFUSED: Door = Door::Refused(ConnectReturnCode::BadUserNamePassword);

/// Whether the gateway closes the connection within `limit`.
async fn closed_within(attempt: &mut Attempt, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, attempt.eventloop.poll()).await {
            Err(_) => return false,
            Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// Sends a technician's request, expecting success; the body as JSON (null when none).
async fn call(request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
    let resp = request.send().await?;
    let status = resp.status();
    let body = resp.text().await?;
    anyhow::ensure!(status.is_success(), "{status}: {body}");
    Ok(serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn terminals_issued_at_the_hub_are_admitted_and_withdrawn_without_a_restart() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("hub.db").display());
    let mut hub = Hub::prepare(dir.path(), db, None).unwrap();
    let technician =
        hub_command(&hub.env, &["user", "add", "tech", "--role", "technician"]).unwrap();
    let gateway_token = hub.add_gateway("gw-pt").unwrap();
    let mqtt_port = free_port();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[gateway]
id = "gw-pt"
data_dir = "gateway-data"

[hub]
url = "{hub_url}"
token = "set in the environment"
report_interval_s = 1
camera_registry = true

[api]
listen = "127.0.0.1:{api_port}"

[patrol]
listen = "127.0.0.1:{mqtt_port}"

[model]
manifest = "{manifest}"
"#,
            hub_url = hub.url,
            api_port = free_port(),
            manifest = repo().join("models/yolox-nano.toml").display(),
        ),
    )
    .unwrap();
    hub.start().await.unwrap();
    let mut gw = std::process::Command::new(binary("edge-gateway"));
    gw.arg("--config")
        .arg(&config)
        .env("EDGE_HUB__TOKEN", &gateway_token)
        .env("MODEL_CACHE", shared().join("models"));
    let gateway_log = dir.path().join("gateway.log");
    let gateway = Process::spawn("edge-gateway", &mut gw, &gateway_log).unwrap();

    let client = reqwest::Client::new();
    let terminal_url = |tail: &str| format!("{}/api/v1/registry/terminals/pt-zhang{tail}", hub.url);
    let mut secrets = Vec::new();
    let result = async {
        let entered = call(
            client
                .put(terminal_url(""))
                .bearer_auth(&technician)
                .json(&json!({ "gateway_id": "gw-pt", "holder": "张三", "grid": "G-001" })),
        )
        .await?;
        let first = entered["secret"].as_str().context("secret")?.to_owned();
        secrets.push(first.clone());
        // Admitted once the gateway has its new document (a long poll: about at once).
        let mut open = wait_door(mqtt_port, "pt-zhang", &first, Door::Open).await?;
        let wrong = knock(mqtt_port, "pt-zhang", "not-the-secret").await.door;
        anyhow::ensure!(wrong == REFUSED, "a wrong secret: {wrong:?}");

        // A new secret: the open connection is closed, the old secret refused.
        let renewed = call(
            client
                .post(terminal_url("/secret"))
                .bearer_auth(&technician),
        )
        .await?;
        let second = renewed["secret"].as_str().context("secret")?.to_owned();
        secrets.push(second.clone());
        anyhow::ensure!(
            closed_within(&mut open, Duration::from_secs(20)).await,
            "the connection with the old secret stayed open"
        );
        let old = knock(mqtt_port, "pt-zhang", &first).await.door;
        anyhow::ensure!(old == REFUSED, "the old secret: {old:?}");
        let mut open = wait_door(mqtt_port, "pt-zhang", &second, Door::Open).await?;

        // Removed: disconnected and refused.
        call(client.delete(terminal_url("")).bearer_auth(&technician)).await?;
        anyhow::ensure!(
            closed_within(&mut open, Duration::from_secs(20)).await,
            "the removed terminal's connection stayed open"
        );
        let gone = knock(mqtt_port, "pt-zhang", &second).await.door;
        anyhow::ensure!(gone == REFUSED, "a removed terminal: {gone:?}");

        // The gateway reports the revision it runs, with no error.
        wait_for("the gateway in sync", Duration::from_secs(20), || async {
            let gateways = hub.get("/api/v1/gateways").await?;
            let gw = gateways
                .as_array()
                .and_then(|g| g.iter().find(|g| g["id"] == "gw-pt"))
                .cloned()
                .unwrap_or_default();
            Ok(
                (gw["config_applied"] == gw["config_revision"] && gw["config_error"].is_null())
                    .then_some(()),
            )
        })
        .await?;
        anyhow::Ok(())
    }
    .await;
    drop(gateway);
    hub.kill();
    if let Err(e) = result {
        panic!(
            "{e:#}\n{}\n{}",
            log_tail("gateway", &gateway_log, 40),
            log_tail("hub", &hub.log, 20)
        );
    }
    let logs = std::fs::read_to_string(&gateway_log).unwrap()
        + &std::fs::read_to_string(&hub.log).unwrap();
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a terminal secret is in a log"
        );
    }
}
