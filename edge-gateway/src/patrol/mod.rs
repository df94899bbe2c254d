//! Patrol terminals over MQTT: reports and SOS calls become events in the outbox; presence
//! and tracks are kept for the local API. See `docs/mqtt.md` for the protocol.
//!
//! Flow: terminal → (front door → ) intake writer → outbox, then the terminal's PUBACK (with
//! the embedded broker) or the broker ack (with an external broker), then a reply.
//! - `intake`: one message in, an event or a refusal out (pure);
//! - `writer`: batches messages into outbox transactions, acknowledges, replies;
//! - `front`: the terminals' door to the embedded broker (auth, topic rules, PUBACK after
//!   storing);
//! - `broker`: the embedded `rumqttd`;
//! - `client`: the gateway's own `rumqttc` client;
//! - `downlink`: tasks from the hub, published until acknowledged;
//! - `terminals`: credentials and what each terminal last said.

pub mod broker;
pub mod client;
pub mod downlink;
pub mod front;
pub mod intake;
pub mod terminals;
pub mod writer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::health::GatewayStats;
use crate::outbox::Outbox;
pub use intake::Limits;
pub use terminals::{Admission, Board, Credentials};

/// The `rule` of events made from patrol reports.
pub const REPORT_RULE: &str = "patrol_report";
/// The `rule` of SOS events; they travel in the uplink's first lane.
pub const SOS_RULE: &str = "sos";

/// Checked patrol settings.
#[derive(Debug)]
pub struct PatrolConfig {
    pub broker: BrokerChoice,
    pub limits: Limits,
}

#[derive(Debug)]
pub enum BrokerChoice {
    /// The embedded broker behind the front door, terminals connecting on `listen`.
    Embedded {
        listen: SocketAddr,
        credentials: Credentials,
        max_terminals: usize,
    },
    /// An external broker (Mosquitto, EMQX) that authenticates the terminals itself.
    External(client::Login),
}

/// The running patrol intake.
pub struct Patrol {
    pub board: Arc<Board>,
    /// Tasks for terminals and their answers.
    pub downlink: downlink::Downlink,
    /// Where terminals connect, with the embedded broker.
    pub listening: Option<SocketAddr>,
    /// Who may connect, with the embedded broker.
    pub admission: Option<Arc<Admission>>,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Patrol {
    pub async fn start(
        config: PatrolConfig,
        gateway_id: &str,
        outbox: Outbox,
        stats: Arc<GatewayStats>,
        wake: Arc<Notify>,
    ) -> anyhow::Result<Self> {
        let stop = CancellationToken::new();
        let board = Arc::new(Board::default());
        let max_packet = config.limits.max_message_bytes + 1024;
        let (intake_tx, intake_rx) = mpsc::channel(1024);
        let mut tasks = Vec::new();

        let (login, filters, listening, admission) = match config.broker {
            BrokerChoice::Embedded {
                listen,
                credentials,
                max_terminals,
            } => {
                let embedded = broker::start(max_terminals + 16, 1024 * 1024)?;
                wait_until_listening(embedded.addr, &embedded.secret).await?;
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("patrol: listening for terminals on {listen}"))?;
                let listening = listener.local_addr()?;
                tracing::info!(addr = %listening, terminals = credentials.len(), "patrol: embedded MQTT broker ready");
                let admission = Arc::new(Admission::new(credentials));
                let front = front::Front::new(
                    admission.clone(),
                    &embedded,
                    max_packet,
                    intake_tx.clone(),
                    outbox.clone(),
                );
                tasks.push(tokio::spawn(front.run(listener, stop.clone())));
                let login = client::Login {
                    host: embedded.addr.ip().to_string(),
                    port: embedded.addr.port(),
                    // Not a valid terminal id, so no terminal can take over this session.
                    client_id: format!("gateway:{gateway_id}"),
                    username: Some("gateway".into()),
                    password: Some(embedded.secret),
                };
                (login, Vec::new(), Some(listening), Some(admission))
            }
            BrokerChoice::External(login) => (login, client::uplink_filters(), None, None),
        };

        let (client, eventloop) = client::connect(&login, max_packet);
        let (polled_tx, mut polled_rx) = mpsc::unbounded_channel();
        tasks.push(tokio::spawn(client::poll(
            eventloop,
            client.clone(),
            filters,
            polled_tx,
            stop.clone(),
        )));
        // Relay from the poller's unbounded channel into the writer's bounded one.
        tasks.push(tokio::spawn(async move {
            while let Some(m) = polled_rx.recv().await {
                if intake_tx.send(m).await.is_err() {
                    break;
                }
            }
        }));
        let downlink = downlink::Downlink::new(outbox.clone());
        tasks.push(tokio::spawn(
            downlink.clone().run(client.clone(), stop.clone()),
        ));
        let writer = writer::Writer {
            gateway_id: gateway_id.to_owned(),
            limits: config.limits,
            outbox,
            downlink: downlink.clone(),
            board: board.clone(),
            client,
            stats,
            wake,
        };
        tasks.push(tokio::spawn(writer.run(intake_rx)));
        Ok(Self {
            board,
            downlink,
            listening,
            admission,
            stop,
            tasks,
        })
    }

    /// Stops taking messages, stores those already taken, and returns.
    pub async fn stop(self) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Waits until the broker answers a CONNECT (a bare TCP probe would log an error there).
async fn wait_until_listening(addr: SocketAddr, secret: &str) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut connect = rumqttc::Connect::new("gateway:probe");
    connect.set_login("gateway", secret);
    let mut packet = bytes::BytesMut::new();
    connect.write(&mut packet)?;
    rumqttc::Disconnect.write(&mut packet)?;
    for _ in 0..100 {
        if let Ok(mut s) = tokio::net::TcpStream::connect(addr).await
            && s.write_all(&packet).await.is_ok()
        {
            let mut connack = [0u8; 4];
            if s.read_exact(&mut connack).await.is_ok() && connack[3] == 0 {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the embedded MQTT broker did not start on {addr}")
}
