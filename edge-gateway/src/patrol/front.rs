//! The gateway's MQTT front door for terminals, in front of the embedded broker.
//!
//! The embedded broker (`rumqttd`) has no per-client topic rules and keeps its queues in
//! memory, so terminals do not talk to it directly. For each terminal connection the front:
//! - checks the CONNECT: MQTT 3.1.1, client id = user name = a known terminal id, the
//!   terminal's secret, a last will (if any) only on its own status topic;
//! - takes the terminal's uplink messages (reports, SOS, locations, status) itself and hands
//!   them to the intake writer, sending the PUBACK only after the event is in the outbox, so
//!   an acknowledged message survives even a `kill -9` of the gateway;
//! - lets the terminal subscribe only to its own downlink topics (task, reply), which the
//!   broker serves; anything else closes the connection;
//! - reports the terminal online when it connects, and when it goes its last will (if it
//!   vanished without DISCONNECT) or offline, unless a newer connection took over.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use protocol::PROTOCOL_VERSION;
use protocol::patrol::{Channel, Presence, TerminalStatus, parse_topic};
use rumqttc::mqttbytes::{self, FixedHeader, PacketType, QoS};
use rumqttc::{
    ConnAck, Connect, ConnectReturnCode, LastWill, Login, PubAck, Publish, SubAck, Subscribe,
    SubscribeFilter, SubscribeReasonCode,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::broker::Embedded;
use super::terminals::Admission;
use super::writer::{Done, Message};
use crate::outbox::{Outbox, OutboxError};

/// Time a new connection has to send its CONNECT.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Front {
    admission: Arc<Admission>,
    /// The embedded broker's internal listener, and the secret it accepts.
    broker: SocketAddr,
    broker_secret: String,
    max_packet: usize,
    intake: mpsc::Sender<Message>,
    /// Where persistent sessions are remembered.
    sessions: Outbox,
    /// The latest connection of each connected terminal, so a connection taken over by a
    /// newer one does not report the terminal offline.
    latest: Mutex<HashMap<String, u64>>,
    generation: AtomicU64,
}

/// A terminal past the handshake, connected to the broker.
struct Admitted {
    terminal: String,
    /// The hash of the secret it connected with, checked again when who may connect
    /// changes.
    secret_sha256: [u8; 32],
    will: Option<LastWill>,
    broker: TcpStream,
    /// What was read from the broker past the handshake.
    broker_buf: BytesMut,
}

fn status(state: Presence) -> Bytes {
    serde_json::to_vec(&TerminalStatus {
        v: PROTOCOL_VERSION,
        state,
    })
    .expect("a status always serialises")
    .into()
}

#[derive(Debug, thiserror::Error)]
enum FrontError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("MQTT: {0:?}")]
    Mqtt(mqttbytes::Error),
    #[error("{0}")]
    Refused(String),
}

fn store_error(e: OutboxError) -> FrontError {
    FrontError::Refused(format!("cannot record the session: {e}"))
}

impl From<mqttbytes::Error> for FrontError {
    fn from(e: mqttbytes::Error) -> Self {
        FrontError::Mqtt(e)
    }
}

impl Front {
    pub fn new(
        admission: Arc<Admission>,
        broker: &Embedded,
        max_packet: usize,
        intake: mpsc::Sender<Message>,
        sessions: Outbox,
    ) -> Self {
        Self {
            admission,
            broker: broker.addr,
            broker_secret: broker.secret.clone(),
            max_packet,
            intake,
            sessions,
            latest: Mutex::default(),
            generation: AtomicU64::new(0),
        }
    }

    pub async fn run(self, listener: TcpListener, shutdown: CancellationToken) {
        let front = Arc::new(self);
        let connections = tokio_util::task::TaskTracker::new();
        loop {
            let (stream, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "patrol: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let (front, stop) = (front.clone(), shutdown.clone());
            connections.spawn(async move {
                let _ = stream.set_nodelay(true);
                tokio::select! {
                    _ = stop.cancelled() => {}
                    result = front.serve(stream) => match result {
                        Ok(()) => {}
                        Err(FrontError::Refused(why)) => tracing::warn!(%peer, %why, "patrol: terminal connection refused or closed"),
                        Err(e) => tracing::debug!(%peer, error = %e, "patrol: terminal connection ended"),
                    },
                }
            });
        }
        connections.close();
        connections.wait().await;
    }

    async fn serve(&self, stream: TcpStream) -> Result<(), FrontError> {
        let (mut rx, mut tx) = stream.into_split();
        let mut buf = BytesMut::with_capacity(4096);
        let Some(admitted) = self.handshake(&mut rx, &mut tx, &mut buf).await? else {
            return Ok(());
        };
        let (terminal, will) = (admitted.terminal.clone(), admitted.will.clone());
        let withdrawn = self.withdrawn(terminal.clone(), admitted.secret_sha256);
        let generation = self.connected(&terminal);
        self.to_intake(Channel::Status.topic(&terminal), status(Presence::Online))
            .await;
        let (clean_exit, result) = tokio::select! {
            ended = self.relay(admitted, rx, tx, buf) => ended,
            () = withdrawn => (false, Err(FrontError::Refused(format!(
                "{terminal}: no longer admitted (removed, or given a new secret); connection closed"
            )))),
        };
        // Gone, unless a newer connection of the same terminal took over: its will when it
        // vanished without DISCONNECT, else "offline".
        if self.disconnected(&terminal, generation) {
            let (topic, payload) = match will.filter(|_| !clean_exit) {
                Some(w) => (w.topic, w.message),
                None => (Channel::Status.topic(&terminal), status(Presence::Offline)),
            };
            self.to_intake(topic, payload).await;
        }
        result
    }

    /// Reads and checks the CONNECT, records the session, connects the terminal to the
    /// broker and answers its CONNACK. `None` when the client left before connecting.
    async fn handshake(
        &self,
        rx: &mut OwnedReadHalf,
        tx: &mut OwnedWriteHalf,
        buf: &mut BytesMut,
    ) -> Result<Option<Admitted>, FrontError> {
        let first = tokio::time::timeout(CONNECT_TIMEOUT, read_frame(rx, buf, self.max_packet))
            .await
            .map_err(|_| FrontError::Refused("no CONNECT in time".into()))??;
        let Some((header, frame)) = first else {
            return Ok(None);
        };
        let connect = match parse_connect(header, frame) {
            Ok(c) => c,
            Err(code) => {
                write_connack(tx, code).await?;
                return Err(FrontError::Refused(format!("bad CONNECT: {code:?}")));
            }
        };
        let (terminal, secret_sha256) = match self.admit(&connect) {
            Ok(admitted) => admitted,
            Err((code, why)) => {
                write_connack(tx, code).await?;
                return Err(FrontError::Refused(why));
            }
        };
        let will = connect.last_will.clone();
        // A persistent session outlives the gateway's restarts: the front remembers it, so
        // the terminal keeps (and resends) what was not yet acknowledged.
        let session_present = if connect.clean_session {
            self.sessions
                .forget_session(&terminal)
                .await
                .map_err(store_error)?;
            false
        } else {
            self.sessions
                .remember_session(&terminal)
                .await
                .map_err(store_error)?
        };
        let (upstream, mut connack, early) = self.open_upstream(connect, &terminal).await?;
        connack.session_present = session_present && connack.code == ConnectReturnCode::Success;
        let mut out = BytesMut::new();
        connack.write(&mut out)?;
        tx.write_all(&out).await?;
        if connack.code != ConnectReturnCode::Success {
            return Err(FrontError::Refused(format!(
                "the broker refused {terminal}: {:?}",
                connack.code
            )));
        }
        for frame in early {
            tx.write_all(&frame).await?;
        }
        Ok(Some(Admitted {
            terminal,
            secret_sha256,
            will,
            broker: upstream.0,
            broker_buf: upstream.1,
        }))
    }

    /// Carries an admitted terminal's traffic until either side ends; returns whether the
    /// terminal said DISCONNECT, and how it ended.
    async fn relay(
        &self,
        admitted: Admitted,
        mut rx: OwnedReadHalf,
        mut tx: OwnedWriteHalf,
        mut buf: BytesMut,
    ) -> (bool, Result<(), FrontError>) {
        let Admitted {
            terminal,
            broker,
            mut broker_buf,
            ..
        } = admitted;
        let (mut broker_rx, mut broker_tx) = broker.into_split();
        // One writer to the terminal, fed by the broker's frames and by our PUBACKs.
        let (to_terminal, mut outgoing) = mpsc::channel::<Bytes>(256);
        let writer = tokio::spawn(async move {
            while let Some(frame) = outgoing.recv().await {
                if tx.write_all(&frame).await.is_err() {
                    break;
                }
            }
        });
        let from_broker = {
            let to_terminal = to_terminal.clone();
            let max = self.max_packet;
            async move {
                while let Some((_, frame)) =
                    read_frame(&mut broker_rx, &mut broker_buf, max).await?
                {
                    if to_terminal.send(frame).await.is_err() {
                        break;
                    }
                }
                Ok::<_, FrontError>(())
            }
        };
        // PUBACKs go out in the order the PUBLISHes came in, each when its event is stored.
        let (pending_tx, mut pending) = mpsc::unbounded_channel::<(u16, oneshot::Receiver<()>)>();
        let acks = async move {
            while let Some((pkid, stored)) = pending.recv().await {
                if stored.await.is_err() {
                    break; // the intake is shutting down: no PUBACK, the terminal resends
                }
                let mut out = BytesMut::new();
                PubAck::new(pkid).write(&mut out)?;
                if to_terminal.send(out.freeze()).await.is_err() {
                    break;
                }
            }
            Ok::<_, FrontError>(())
        };
        let from_terminal = async {
            let mut clean_exit = false;
            let result = async {
                while let Some((header, frame)) =
                    read_frame(&mut rx, &mut buf, self.max_packet).await?
                {
                    match header.packet_type()? {
                        PacketType::Publish => {
                            let publish = Publish::read(header, frame)?;
                            self.uplink(&terminal, publish, &pending_tx).await?;
                        }
                        PacketType::Subscribe => {
                            let sub = Subscribe::read(header, frame.clone())?;
                            check_subscribe(&terminal, &sub)?;
                            broker_tx.write_all(&frame).await?;
                        }
                        PacketType::Disconnect => {
                            clean_exit = true;
                            broker_tx.write_all(&frame).await?;
                            break;
                        }
                        PacketType::Connect => {
                            return Err(FrontError::Refused("a second CONNECT".into()));
                        }
                        PacketType::PubRec | PacketType::PubRel | PacketType::PubComp => {
                            return Err(FrontError::Refused("QoS 2 is not supported".into()));
                        }
                        // PUBACKs of downlink messages, UNSUBSCRIBE, PINGREQ: the broker's.
                        _ => broker_tx.write_all(&frame).await?,
                    }
                }
                Ok(())
            }
            .await;
            (clean_exit, result)
        };
        let ended = tokio::select! {
            r = from_terminal => r,
            r = from_broker => (false, r.and(Err(FrontError::Refused("the broker closed the connection".into())))),
            r = acks => (false, r),
        };
        writer.abort();
        ended
    }

    /// Records a new connection of `terminal` and returns its generation.
    fn connected(&self, terminal: &str) -> u64 {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        self.latest
            .lock()
            .expect("front lock")
            .insert(terminal.to_owned(), generation);
        generation
    }

    /// Forgets connection `generation` of `terminal`; whether it was still the latest.
    fn disconnected(&self, terminal: &str, generation: u64) -> bool {
        let mut latest = self.latest.lock().expect("front lock");
        if latest.get(terminal) == Some(&generation) {
            latest.remove(terminal);
            true
        } else {
            false
        }
    }

    /// A message the front itself hands to the intake (presence, a will).
    async fn to_intake(&self, topic: String, payload: Bytes) {
        let _ = self
            .intake
            .send(Message {
                topic,
                payload,
                done: Done::Nothing,
            })
            .await;
    }

    /// Connects terminal `terminal` to the broker: its CONNECT with the broker's secret and
    /// without the will (the front publishes that), then the subscriptions to its own
    /// downlink topics, made on its behalf at every connect so they survive restarts.
    /// Returns the connection with what was read past the handshake, the broker's CONNACK,
    /// and any frames the broker sent before the subscriptions were confirmed.
    async fn open_upstream(
        &self,
        mut connect: Connect,
        terminal: &str,
    ) -> Result<((TcpStream, BytesMut), ConnAck, Vec<Bytes>), FrontError> {
        let mut upstream = TcpStream::connect(self.broker).await?;
        upstream.set_nodelay(true)?;
        connect.login = Some(Login::new(terminal, self.broker_secret.clone()));
        connect.last_will = None;
        let mut out = BytesMut::new();
        connect.write(&mut out)?;
        upstream.write_all(&out).await?;
        let mut buf = BytesMut::with_capacity(4096);
        let broker_closed = || FrontError::Refused("the broker closed the connection".into());
        let (header, frame) = read_frame(&mut upstream, &mut buf, self.max_packet)
            .await?
            .ok_or_else(broker_closed)?;
        if !matches!(header.packet_type(), Ok(PacketType::ConnAck)) {
            return Err(FrontError::Refused(
                "the broker did not answer with CONNACK".into(),
            ));
        }
        let connack = ConnAck::read(header, frame)?;
        if connack.code != ConnectReturnCode::Success {
            return Ok(((upstream, buf), connack, Vec::new()));
        }
        let mut subscribe = Subscribe::new_many(
            [Channel::Task, Channel::Reply]
                .map(|c| SubscribeFilter::new(c.topic(terminal), QoS::AtLeastOnce)),
        );
        subscribe.pkid = 1;
        let mut out = BytesMut::new();
        subscribe.write(&mut out)?;
        upstream.write_all(&out).await?;
        let mut early = Vec::new();
        loop {
            let (header, frame) = read_frame(&mut upstream, &mut buf, self.max_packet)
                .await?
                .ok_or_else(broker_closed)?;
            if matches!(header.packet_type(), Ok(PacketType::SubAck)) {
                let ack = SubAck::read(header, frame)?;
                if ack.pkid == 1
                    && ack
                        .return_codes
                        .iter()
                        .all(|c| matches!(c, SubscribeReasonCode::Success(_)))
                {
                    return Ok(((upstream, buf), connack, early));
                }
                return Err(FrontError::Refused(format!(
                    "the broker refused the downlink subscriptions of {terminal}"
                )));
            }
            // Queued downlink from the session, sent before the SUBACK: pass it on.
            early.push(frame);
        }
    }

    /// Checks a CONNECT and returns the terminal id, or the CONNACK refusal and the reason.
    /// The terminal's id and the hash of its secret, or why it may not connect.
    fn admit(&self, c: &Connect) -> Result<(String, [u8; 32]), (ConnectReturnCode, String)> {
        let Some(login) = &c.login else {
            return Err((
                ConnectReturnCode::NotAuthorized,
                format!("{:?}: no credentials", c.client_id),
            ));
        };
        if login.username != c.client_id {
            return Err((
                ConnectReturnCode::BadClientId,
                format!("client id {:?} is not the user name", c.client_id),
            ));
        }
        let secret_sha256: [u8; 32] = Sha256::digest(login.password.as_bytes()).into();
        if !self
            .admission
            .current()
            .holds(&login.username, &secret_sha256)
        {
            return Err((
                ConnectReturnCode::BadUserNamePassword,
                format!("{:?}: unknown terminal or wrong secret", login.username),
            ));
        }
        let id = login.username.clone();
        if let Some(will) = &c.last_will
            && will.topic != Channel::Status.topic(&id)
        {
            return Err((
                ConnectReturnCode::NotAuthorized,
                format!(
                    "{id}: last will on {:?}, not on its status topic",
                    will.topic
                ),
            ));
        }
        Ok((id, secret_sha256))
    }

    /// Resolves when who may connect changes so that `terminal` with this secret may not.
    async fn withdrawn(&self, terminal: String, secret_sha256: [u8; 32]) {
        let mut admitted = self.admission.subscribe();
        // Looked at once before waiting: a change between the CONNECT and here counts.
        loop {
            if !admitted
                .borrow_and_update()
                .holds(&terminal, &secret_sha256)
            {
                return;
            }
            if admitted.changed().await.is_err() {
                break;
            }
        }
        // The admission is gone with the front: nothing more to watch.
        std::future::pending().await
    }

    /// A terminal's PUBLISH: only on its own uplink topics; goes to the intake.
    async fn uplink(
        &self,
        terminal: &str,
        publish: Publish,
        pending: &mpsc::UnboundedSender<(u16, oneshot::Receiver<()>)>,
    ) -> Result<(), FrontError> {
        match parse_topic(&publish.topic) {
            Ok((id, channel)) if id == terminal && channel.is_uplink() => {}
            _ => {
                return Err(FrontError::Refused(format!(
                    "{terminal} may not publish on {:?}",
                    publish.topic
                )));
            }
        }
        let done = match publish.qos {
            QoS::AtMostOnce => Done::Nothing,
            QoS::AtLeastOnce => {
                let (tx, rx) = oneshot::channel();
                let _ = pending.send((publish.pkid, rx));
                Done::Front(tx)
            }
            QoS::ExactlyOnce => return Err(FrontError::Refused("QoS 2 is not supported".into())),
        };
        self.intake
            .send(Message {
                topic: publish.topic,
                payload: publish.payload,
                done,
            })
            .await
            .map_err(|_| FrontError::Refused("the gateway is shutting down".into()))
    }
}

fn check_subscribe(terminal: &str, sub: &Subscribe) -> Result<(), FrontError> {
    let allowed = [
        Channel::Task.topic(terminal),
        Channel::Reply.topic(terminal),
    ];
    for f in &sub.filters {
        if !allowed.contains(&f.path) {
            return Err(FrontError::Refused(format!(
                "{terminal} may not subscribe to {:?}",
                f.path
            )));
        }
    }
    Ok(())
}

fn parse_connect(header: FixedHeader, frame: Bytes) -> Result<Connect, ConnectReturnCode> {
    if !matches!(header.packet_type(), Ok(PacketType::Connect)) {
        return Err(ConnectReturnCode::NotAuthorized);
    }
    Connect::read(header, frame).map_err(|e| match e {
        mqttbytes::Error::InvalidProtocolLevel(_) | mqttbytes::Error::InvalidProtocol => {
            ConnectReturnCode::RefusedProtocolVersion
        }
        _ => ConnectReturnCode::BadClientId,
    })
}

async fn write_connack(tx: &mut OwnedWriteHalf, code: ConnectReturnCode) -> Result<(), FrontError> {
    let mut out = BytesMut::new();
    ConnAck::new(code, false).write(&mut out)?;
    tx.write_all(&out).await?;
    Ok(())
}

/// Reads one whole MQTT packet; `None` at a clean end of stream.
async fn read_frame(
    rx: &mut (impl AsyncRead + Unpin),
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<(FixedHeader, Bytes)>, FrontError> {
    loop {
        match mqttbytes::check(buf.iter(), max) {
            Ok(header) => return Ok(Some((header, buf.split_to(header.frame_length()).freeze()))),
            Err(mqttbytes::Error::InsufficientBytes(_)) => {}
            Err(e) => return Err(e.into()),
        }
        if rx.read_buf(buf).await? == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(FrontError::Refused("connection closed mid-packet".into()))
            };
        }
    }
}
