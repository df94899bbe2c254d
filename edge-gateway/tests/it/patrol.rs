//! Patrol terminals against real brokers: the embedded broker behind the gateway's front
//! door (credentials, per-terminal topics, PUBACK after storing, error replies), and an
//! external Mosquitto (at 127.0.0.1:1883 on development and CI machines; CI fails without it).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use edge_gateway::outbox::Outbox;
use edge_gateway::patrol::client::Login;
use edge_gateway::patrol::terminals::new_terminal;
use edge_gateway::patrol::{BrokerChoice, Credentials, Limits, Patrol, PatrolConfig};
use protocol::patrol::{Channel, ErrorCode, Reply};
use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions, Packet, QoS};
use serde_json::json;
use tokio::sync::mpsc;

fn limits() -> Limits {
    Limits {
        max_photos: 2,
        max_photo_bytes: 64 * 1024,
        max_message_bytes: Limits::message_bytes_for(2, 64 * 1024),
        sos_category: "event:0499".parse().unwrap(),
    }
}

struct Gateway {
    _dir: tempfile::TempDir,
    outbox: Outbox,
    patrol: Patrol,
}

async fn start(broker: BrokerChoice, gateway_id: &str) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(&dir.path().join("outbox.db")).await.unwrap();
    let config = PatrolConfig {
        broker,
        limits: limits(),
    };
    let patrol = Patrol::start(
        config,
        gateway_id,
        outbox.clone(),
        Arc::default(),
        Arc::default(),
    )
    .await
    .unwrap();
    Gateway {
        _dir: dir,
        outbox,
        patrol,
    }
}

/// An embedded-broker gateway serving terminals `ids`; returns their secrets too.
async fn embedded(ids: &[&str]) -> (Gateway, Vec<String>) {
    let (secrets, entries): (Vec<_>, Vec<_>) =
        ids.iter().map(|id| new_terminal(id, None).unwrap()).unzip();
    let broker = BrokerChoice::Embedded {
        listen: "127.0.0.1:0".parse().unwrap(),
        credentials: Credentials::from_entries(&entries).unwrap(),
        max_terminals: 100,
    };
    (start(broker, "gw-test").await, secrets)
}

/// A terminal connection whose events arrive on a channel; the channel ends with the
/// connection (the first error).
struct Terminal {
    client: AsyncClient,
    events: mpsc::UnboundedReceiver<Result<Packet, ConnectionError>>,
}

fn connect(port: u16, id: &str, secret: Option<&str>) -> Terminal {
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    options
        .set_clean_session(false)
        .set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(1 << 20, 1 << 20);
    if let Some(s) = secret {
        options.set_credentials(id, s);
    }
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    let (tx, events) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(p)) => {
                    if tx.send(Ok(p)).is_err() {
                        return;
                    }
                }
                Ok(Event::Outgoing(_)) => {}
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
    });
    Terminal { client, events }
}

impl Terminal {
    /// The next incoming packet matching `want`, skipping others.
    async fn next<T>(&mut self, mut want: impl FnMut(&Packet) -> Option<T>) -> Result<T, String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Err(_) => return Err("timed out".into()),
                Ok(None) => return Err("connection task ended".into()),
                Ok(Some(Err(e))) => return Err(format!("connection error: {e}")),
                Ok(Some(Ok(p))) => {
                    if let Some(t) = want(&p) {
                        return Ok(t);
                    }
                }
            }
        }
    }

    /// Waits for the CONNACK and returns its session-present flag.
    async fn session_present(&mut self) -> bool {
        self.next(|p| match p {
            Packet::ConnAck(ack) => Some(ack.session_present),
            _ => None,
        })
        .await
        .unwrap()
    }

    async fn connected(&mut self) {
        self.session_present().await;
    }

    async fn reply(&mut self) -> Reply {
        self.next(|p| match p {
            Packet::Publish(p) => Some(serde_json::from_slice::<Reply>(&p.payload).unwrap()),
            _ => None,
        })
        .await
        .unwrap()
    }

    async fn publish(&self, topic: &str, body: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, body)
            .await
            .unwrap();
    }
}

fn jpeg() -> String {
    let img = image::RgbImage::from_pixel(16, 12, image::Rgb([90, 90, 90]));
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new(&mut out)
        .encode_image(&img)
        .unwrap();
    base64::engine::general_purpose::STANDARD.encode(out)
}

fn report(msg_id: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "v": 1, "msg_id": msg_id, "category": "component:0114",
        "description": "井盖缺失 missing manhole cover", "lat": 30.27, "lon": 120.15,
        "occurred_at": "2026-11-20T08:30:00Z", "photos": [jpeg()],
    }))
    .unwrap()
}

async fn wait_pending(outbox: &Outbox, n: i64) {
    for _ in 0..100 {
        if outbox.pending().await.unwrap() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "expected {n} events in the outbox, found {}",
        outbox.pending().await.unwrap()
    );
}

#[tokio::test]
async fn a_report_is_stored_before_its_puback_and_confirmed_by_a_reply() {
    // No SUBSCRIBE of its own: the front door subscribes a terminal to its downlink.
    let (gw, secrets) = embedded(&["t-a"]).await;
    let port = gw.patrol.listening.unwrap().port();
    let mut a = connect(port, "t-a", Some(&secrets[0]));
    a.connected().await;
    a.publish("patrol/t-a/report", report("m-1")).await;
    a.next(|p| matches!(p, Packet::PubAck(_)).then_some(()))
        .await
        .unwrap();
    // The PUBACK comes only after the event is durably stored.
    assert_eq!(gw.outbox.pending().await.unwrap(), 1);
    let reply = a.reply().await;
    assert!(reply.ok, "{reply:?}");
    let stored = gw.outbox.peek(10).await.unwrap();
    assert_eq!(Some(stored[0].id), reply.event_id);
    assert_eq!(
        stored[0].evidence.len(),
        1,
        "the photo travels with the event"
    );

    // Sent again (as after a lost PUBACK): the same event, stored once.
    a.publish("patrol/t-a/report", report("m-1")).await;
    assert_eq!(a.reply().await.event_id, reply.event_id);
    assert_eq!(gw.outbox.pending().await.unwrap(), 1);
    gw.patrol.stop().await;
}

#[tokio::test]
async fn wrong_or_missing_credentials_are_refused() {
    let (gw, secrets) = embedded(&["t-a", "t-b"]).await;
    let port = gw.patrol.listening.unwrap().port();
    for (id, secret, code) in [
        (
            "t-a",
            Some(secrets[1].as_str()),
            ConnectReturnCode::BadUserNamePassword,
        ),
        (
            "t-x",
            Some(secrets[0].as_str()),
            ConnectReturnCode::BadUserNamePassword,
        ),
        ("t-a", None, ConnectReturnCode::NotAuthorized),
    ] {
        let mut t = connect(port, id, secret);
        let err = t.next(|_| Some(())).await.unwrap_err();
        assert!(
            err.contains(&format!("{code:?}")),
            "{id} with {secret:?}: {err}"
        );
    }
    gw.patrol.stop().await;
}

#[tokio::test]
async fn a_terminal_can_neither_publish_as_another_nor_read_its_topics() {
    let (gw, secrets) = embedded(&["t-a", "t-b"]).await;
    let port = gw.patrol.listening.unwrap().port();

    // A publishes a report as B: the connection is closed and nothing is stored.
    let mut a = connect(port, "t-a", Some(&secrets[0]));
    a.connected().await;
    a.publish("patrol/t-b/report", report("forged")).await;
    let err = a
        .next(|p| matches!(p, Packet::PubAck(_)).then_some(()))
        .await
        .unwrap_err();
    assert!(err.contains("connection error"), "{err}");

    // A subscribes to B's tasks: closed too.
    let mut a = connect(port, "t-a", Some(&secrets[0]));
    a.connected().await;
    a.client
        .subscribe(Channel::Task.topic("t-b"), QoS::AtLeastOnce)
        .await
        .unwrap();
    let err = a
        .next(|p| matches!(p, Packet::SubAck(_)).then_some(()))
        .await
        .unwrap_err();
    assert!(err.contains("connection error"), "{err}");
    // …and to everything.
    let mut a = connect(port, "t-a", Some(&secrets[0]));
    a.connected().await;
    a.client
        .subscribe("patrol/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    assert!(
        a.next(|p| matches!(p, Packet::SubAck(_)).then_some(()))
            .await
            .is_err()
    );

    // B's own report goes through; A, subscribed to its own replies, hears nothing of it.
    let mut a = connect(port, "t-a", Some(&secrets[0]));
    a.connected().await;
    a.client
        .subscribe(Channel::Reply.topic("t-a"), QoS::AtLeastOnce)
        .await
        .unwrap();
    let mut b = connect(port, "t-b", Some(&secrets[1]));
    b.connected().await;
    b.client
        .subscribe(Channel::Reply.topic("t-b"), QoS::AtLeastOnce)
        .await
        .unwrap();
    b.publish("patrol/t-b/report", report("real")).await;
    assert!(b.reply().await.ok);
    let stored = gw.outbox.peek(10).await.unwrap();
    assert_eq!(stored.len(), 1, "only B's own report is stored");
    assert_eq!(stored[0].source.id(), "t-b");
    let heard = tokio::time::timeout(
        Duration::from_millis(500),
        a.next(|p| matches!(p, Packet::Publish(_)).then_some(())),
    )
    .await;
    assert!(heard.is_err(), "A must not receive B's reply");
    gw.patrol.stop().await;
}

#[tokio::test]
async fn bad_messages_get_error_replies_and_the_good_ones_around_them_are_stored() {
    let (gw, secrets) = embedded(&["t-a"]).await;
    let port = gw.patrol.listening.unwrap().port();
    let mut a = connect(port, "t-a", Some(&secrets[0]));
    a.connected().await;
    let sos = serde_json::to_vec(&json!({"v": 1, "msg_id": "s-1", "lat": 30.0, "lon": 120.0,
        "occurred_at": "2026-11-20T08:31:00Z"}))
    .unwrap();
    let mut bad_version: serde_json::Value = serde_json::from_slice(&report("m-2")).unwrap();
    bad_version["v"] = json!(9);
    let mut bad_lat: serde_json::Value = serde_json::from_slice(&report("m-3")).unwrap();
    bad_lat["lat"] = json!(123.0);
    let mut not_jpeg: serde_json::Value = serde_json::from_slice(&report("m-4")).unwrap();
    not_jpeg["photos"] = json!([base64::engine::general_purpose::STANDARD.encode(b"<html>")]);
    let messages: Vec<(&str, Vec<u8>)> = vec![
        ("report", b"{{{ not json".to_vec()),
        ("report", report("m-1")),
        ("report", serde_json::to_vec(&bad_version).unwrap()),
        ("report", serde_json::to_vec(&bad_lat).unwrap()),
        ("sos", sos),
        ("report", serde_json::to_vec(&not_jpeg).unwrap()),
    ];
    for (channel, body) in &messages {
        a.publish(&format!("patrol/t-a/{channel}"), body.clone())
            .await;
    }
    let mut replies = Vec::new();
    for _ in 0..messages.len() {
        replies.push(a.reply().await);
    }
    let codes: Vec<Option<ErrorCode>> = replies
        .iter()
        .map(|r| r.error.as_ref().map(|e| e.code))
        .collect();
    assert_eq!(
        codes,
        vec![
            Some(ErrorCode::NotJson),
            None,
            Some(ErrorCode::UnsupportedVersion),
            Some(ErrorCode::InvalidField),
            None,
            Some(ErrorCode::PhotoNotJpeg),
        ]
    );
    let lat_error = &replies[3].error.as_ref().unwrap().message;
    assert!(lat_error.contains("lat"), "{lat_error}");
    assert_eq!(replies[3].msg_id.as_deref(), Some("m-3"));
    wait_pending(&gw.outbox, 2).await;
    let stored = gw.outbox.peek(10).await.unwrap();
    assert_eq!(stored[0].rule, "sos", "the SOS is first in the uplink");
    let counters = gw.patrol.board.counters();
    assert_eq!(counters.refused.values().sum::<u64>(), 4);
    gw.patrol.stop().await;
}

#[tokio::test]
async fn presence_follows_status_messages_and_the_last_will() {
    let (gw, secrets) = embedded(&["t-a"]).await;
    let port = gw.patrol.listening.unwrap().port();
    let mut options = MqttOptions::new("t-a", "127.0.0.1", port);
    options
        .set_credentials("t-a", &secrets[0])
        .set_last_will(rumqttc::LastWill::new(
            Channel::Status.topic("t-a"),
            r#"{"v":1,"state":"offline"}"#,
            QoS::AtLeastOnce,
            true,
        ));
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    client
        .publish(
            Channel::Status.topic("t-a"),
            QoS::AtLeastOnce,
            true,
            r#"{"v":1,"state":"online"}"#,
        )
        .await
        .unwrap();
    let presence = |gw: &Gateway| gw.patrol.board.terminals().first().and_then(|t| t.presence);
    // Poll until the status is acknowledged.
    loop {
        if let Event::Incoming(Packet::PubAck(_)) = eventloop.poll().await.unwrap() {
            break;
        }
    }
    assert_eq!(presence(&gw), Some(protocol::patrol::Presence::Online));
    // The connection drops without DISCONNECT: the front publishes the will.
    drop(eventloop);
    drop(client);
    for _ in 0..100 {
        if presence(&gw) == Some(protocol::patrol::Presence::Offline) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(presence(&gw), Some(protocol::patrol::Presence::Offline));
    gw.patrol.stop().await;
}

/// Mosquitto as the external broker: the gateway subscribes with a persistent session and
/// manual acks, stores, acknowledges and replies through it.
#[tokio::test]
async fn reports_through_an_external_mosquitto() {
    let (host, port) = ("127.0.0.1", 1883);
    if tokio::net::TcpStream::connect((host, port)).await.is_err() {
        if std::env::var_os("CI").is_some() {
            panic!("Mosquitto at {host}:{port} is required in CI");
        }
        eprintln!("SKIPPED: Mosquitto at {host}:{port} is not reachable; CI runs this test");
        return;
    }
    let run = uuid::Uuid::new_v4().simple().to_string();
    let gateway_id = format!("gw-{}", &run[..12]);
    let terminal = format!("t-{}", &run[..12]);
    let login = Login {
        host: host.into(),
        port,
        client_id: format!("edge-{gateway_id}"),
        username: None,
        password: None,
    };
    let gw = start(BrokerChoice::External(login.clone()), &gateway_id).await;
    let mut t = connect(port, &terminal, None);
    t.connected().await;
    t.client
        .subscribe(Channel::Reply.topic(&terminal), QoS::AtLeastOnce)
        .await
        .unwrap();
    t.next(|p| matches!(p, Packet::SubAck(_)).then_some(()))
        .await
        .unwrap();
    // The gateway subscribes after connecting: resend until it hears us.
    let mut reply = None;
    for _ in 0..20 {
        t.publish(&Channel::Report.topic(&terminal), report("m-1"))
            .await;
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(500), t.reply()).await {
            reply = Some(r);
            break;
        }
    }
    let reply = reply.expect("a reply from the gateway through Mosquitto");
    assert!(reply.ok, "{reply:?}");
    wait_pending(&gw.outbox, 1).await;
    assert_eq!(gw.outbox.peek(1).await.unwrap()[0].source.id(), terminal);
    gw.patrol.stop().await;

    // Leave no persistent sessions behind on the shared broker.
    for id in [login.client_id.as_str(), terminal.as_str()] {
        let mut options = MqttOptions::new(id, host, port);
        options.set_clean_session(true);
        let (client, mut eventloop) = AsyncClient::new(options, 4);
        let _ = eventloop.poll().await;
        let _ = client.disconnect().await;
        let _ = eventloop.poll().await;
    }
}

/// Replies reach a terminal that never subscribed (the front subscribes its downlink for it),
/// and a persistent session is still "present" after the gateway restarts, so the terminal
/// keeps and resends what was not acknowledged.
#[tokio::test]
async fn downlink_is_subscribed_for_the_terminal_and_sessions_survive_a_restart() {
    let (secret, entry) = new_terminal("t-a", None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let start_at = |port: u16| {
        let entry = entry.clone();
        let path = dir.path().join("outbox.db");
        async move {
            let outbox = Outbox::open(&path).await.unwrap();
            let broker = BrokerChoice::Embedded {
                listen: format!("127.0.0.1:{port}").parse().unwrap(),
                credentials: Credentials::from_entries(&[entry]).unwrap(),
                max_terminals: 10,
            };
            let config = PatrolConfig {
                broker,
                limits: limits(),
            };
            Patrol::start(config, "gw-test", outbox, Arc::default(), Arc::default())
                .await
                .unwrap()
        }
    };

    let patrol = start_at(port).await;
    let mut a = connect(port, "t-a", Some(&secret));
    assert!(!a.session_present().await, "a first connect has no session");
    a.publish("patrol/t-a/report", report("m-1")).await;
    assert!(
        a.reply().await.ok,
        "the reply arrives without a SUBSCRIBE of its own"
    );
    drop(a);
    patrol.stop().await;

    let patrol = start_at(port).await;
    let mut a = connect(port, "t-a", Some(&secret));
    assert!(
        a.session_present().await,
        "the session outlives the gateway"
    );
    a.publish("patrol/t-a/report", report("m-2")).await;
    assert!(a.reply().await.ok);
    patrol.stop().await;
}

/// A task from the hub is published to its terminal until acknowledged; the terminal's
/// answers are kept for the hub, and an answer to another terminal's task is refused.
#[tokio::test]
async fn tasks_are_published_to_their_terminal_and_answers_kept_for_the_hub() {
    use protocol::gateway::AssignedTask;
    use protocol::patrol::{Task, TaskKind, TaskState};

    let (gw, secrets) = embedded(&["t-a", "t-b"]).await;
    let port = gw.patrol.listening.unwrap().port();
    let mut a = connect(port, "t-a", Some(&secrets[0]));
    a.connected().await;
    let mut b = connect(port, "t-b", Some(&secrets[1]));
    b.connected().await;
    let task = Task {
        v: 1,
        task_id: uuid::Uuid::now_v7(),
        case_id: uuid::Uuid::now_v7(),
        kind: TaskKind::Verify,
        title: "核实井盖 check the cover".into(),
        note: None,
        lat: 30.27,
        lon: 120.15,
        issued_at: chrono::Utc::now(),
    };
    let assigned = AssignedTask {
        terminal_id: "t-a".into(),
        task: task.clone(),
    };
    gw.patrol
        .downlink
        .add(std::slice::from_ref(&assigned))
        .await
        .unwrap();
    gw.patrol.downlink.add(&[assigned]).await.unwrap(); // handed over twice: kept once
    let got = a
        .next(|p| match p {
            Packet::Publish(p) if p.topic == "patrol/t-a/task" => {
                Some(serde_json::from_slice::<Task>(&p.payload).unwrap())
            }
            _ => None,
        })
        .await
        .unwrap();
    assert_eq!(got, task);

    let ack = |state: TaskState| {
        serde_json::to_vec(&json!({"v": 1, "task_id": task.task_id, "state": state,
                                   "at": "2026-11-23T08:00:00Z", "note": "已到现场 on site"}))
        .unwrap()
    };
    // B answers A's task: refused.
    b.publish("patrol/t-b/ack", ack(TaskState::Done)).await;
    let refused = b.reply().await;
    assert!(!refused.ok && refused.error.unwrap().message.contains("not a task of t-b"));
    a.publish("patrol/t-a/ack", ack(TaskState::Received)).await;
    assert!(a.reply().await.ok);
    a.publish("patrol/t-a/ack", ack(TaskState::Done)).await;
    assert!(a.reply().await.ok);

    let (acks, last) = gw.patrol.downlink.unreported_acks().await.unwrap();
    let states: Vec<_> = acks
        .iter()
        .map(|a| (a.terminal_id.as_str(), a.state))
        .collect();
    assert_eq!(
        states,
        [("t-a", TaskState::Received), ("t-a", TaskState::Done)]
    );
    gw.patrol.downlink.reported(last).await.unwrap();
    assert!(
        gw.patrol
            .downlink
            .unreported_acks()
            .await
            .unwrap()
            .0
            .is_empty()
    );
    gw.patrol.stop().await;
}

/// Hostile connections (garbage, absurd lengths, half packets, a PUBLISH before CONNECT,
/// random bytes after a valid CONNECT) are dropped one by one; the door stays open and a
/// well-behaved terminal is served throughout.
#[tokio::test]
async fn hostile_connections_never_stop_the_front_door() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (gw, secrets) = embedded(&["t-a", "t-b"]).await;
    let port = gw.patrol.listening.unwrap().port();
    let mut good = connect(port, "t-a", Some(&secrets[0]));
    good.connected().await;

    let mut connect_b = bytes::BytesMut::new();
    let mut c = rumqttc::Connect::new("t-b");
    c.set_login("t-b", &secrets[1]);
    c.write(&mut connect_b).unwrap();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut random = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    };
    let mut attacks: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        vec![0x10, 0xFF, 0xFF, 0xFF, 0x7F], // CONNECT claiming 256 MiB
        vec![0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], // malformed remaining length
        vec![0x30, 0x05, 0x00, 0x01, b'x', b'y'], // PUBLISH before CONNECT
        connect_b[..connect_b.len() / 2].to_vec(), // half a CONNECT, then close
        vec![],                             // connect and say nothing
    ];
    for n in [1, 7, 64, 700] {
        attacks.push(random(n));
    }
    for _ in 0..8 {
        let mut a = connect_b.to_vec();
        a.extend(random(40));
        attacks.push(a); // a valid CONNECT, then junk
    }
    for attack in attacks {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let _ = s.write_all(&attack).await;
        let _ = s.shutdown().await;
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut sink)).await;
    }

    good.publish("patrol/t-a/report", report("after-the-storm"))
        .await;
    good.next(|p| matches!(p, Packet::PubAck(_)).then_some(()))
        .await
        .unwrap();
    let mut b = connect(port, "t-b", Some(&secrets[1]));
    b.connected().await;
    b.publish("patrol/t-b/report", report("b-1")).await;
    b.next(|p| matches!(p, Packet::PubAck(_)).then_some(()))
        .await
        .unwrap();
    wait_pending(&gw.outbox, 2).await;
    gw.patrol.stop().await;
}

/// The front door reports presence itself: online on connect (no status message needed),
/// offline on a clean DISCONNECT, and not offline when a newer connection of the same
/// terminal takes over the old one.
#[tokio::test]
async fn presence_comes_from_the_connection_itself() {
    use protocol::patrol::Presence;

    let (gw, secrets) = embedded(&["t-a"]).await;
    let port = gw.patrol.listening.unwrap().port();
    let presence = || gw.patrol.board.terminals().first().and_then(|t| t.presence);
    let becomes = |want: Presence| async move {
        for _ in 0..100 {
            if presence() == Some(want) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("presence {:?}, expected {want:?}", presence());
    };

    let mut first = connect(port, "t-a", Some(&secrets[0]));
    first.connected().await;
    becomes(Presence::Online).await;

    // The same terminal again (a phone that reconnected before the old link timed out).
    let mut second = connect(port, "t-a", Some(&secrets[0]));
    second.connected().await;
    assert!(
        first.next(|_| None::<()>).await.is_err(),
        "the broker ends the older connection"
    );
    // Give a wrong "offline" from the old connection time to arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(presence(), Some(Presence::Online), "taken over, not gone");

    second.client.disconnect().await.unwrap();
    becomes(Presence::Offline).await;
    gw.patrol.stop().await;
}
