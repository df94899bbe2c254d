//! The intake writer: reads terminal messages in batches, stores the events of a batch in
//! the outbox in one transaction, and only then acknowledges the messages and replies.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use protocol::PROTOCOL_VERSION;
use protocol::patrol::{Channel, ErrorCode, Reply, ReplyError, TaskAck};
use rumqttc::{AsyncClient, QoS};
use tokio::sync::{Notify, mpsc, oneshot};

use super::SOS_RULE;
use super::downlink::{AckOutcome, Downlink};
use super::intake::{self, Intake, Limits};
use super::terminals::Board;
use crate::event::NewEvent;
use crate::health::GatewayStats;
use crate::outbox::Outbox;

/// Largest number of messages stored in one transaction.
const BATCH: usize = 512;

/// One message from a terminal and how to acknowledge it once handled.
#[derive(Debug)]
pub struct Message {
    pub topic: String,
    pub payload: Bytes,
    pub done: Done,
}

/// How a handled message is acknowledged to whoever holds it.
#[derive(Debug)]
pub enum Done {
    /// Nothing to acknowledge (QoS 0, a last will).
    Nothing,
    /// Held by an external broker: acknowledge it there (manual ack).
    Broker(rumqttc::Publish),
    /// Held by the gateway's front door: it sends the terminal's PUBACK.
    Front(oneshot::Sender<()>),
}

pub struct Writer {
    pub gateway_id: String,
    pub limits: Limits,
    pub outbox: Outbox,
    pub downlink: Downlink,
    pub board: Arc<Board>,
    /// Acknowledges broker messages and publishes replies.
    pub client: AsyncClient,
    /// Counts the events stored.
    pub stats: Arc<GatewayStats>,
    /// Wakes the uplink after a batch is stored.
    pub wake: Arc<Notify>,
}

impl Writer {
    /// Runs until every sender of `messages` is gone.
    pub async fn run(self, mut messages: mpsc::Receiver<Message>) {
        let mut batch = Vec::with_capacity(BATCH);
        while messages.recv_many(&mut batch, BATCH).await > 0 {
            self.handle(std::mem::take(&mut batch)).await;
        }
    }

    async fn handle(&self, batch: Vec<Message>) {
        let now = Utc::now();
        self.board.received(batch.len() as u64);
        let mut events: Vec<NewEvent> = Vec::new();
        let mut replies: Vec<(String, Reply)> = Vec::new();
        let mut sos = false;
        for m in &batch {
            match intake::read(&self.gateway_id, &m.topic, &m.payload, &self.limits) {
                Ok(Intake::Event(accepted)) => {
                    let intake::Accepted { event, reply } = *accepted;
                    let (terminal, is_sos) = (
                        event.envelope.source.id().to_owned(),
                        event.envelope.rule == SOS_RULE,
                    );
                    sos |= is_sos;
                    self.board.stored(&terminal, is_sos, now);
                    replies.push((terminal, reply));
                    events.push(event);
                }
                Ok(Intake::Presence {
                    terminal_id,
                    presence,
                }) => self.board.presence(&terminal_id, presence, now),
                Ok(Intake::Track {
                    terminal_id,
                    mut points,
                }) => {
                    let last = points.pop().expect("a track has at least one point");
                    self.board.track(&terminal_id, last, now);
                }
                Ok(Intake::TaskAck { terminal_id, ack }) => {
                    let reply = self.task_ack(&terminal_id, &ack).await;
                    if !reply.ok {
                        self.board
                            .refused(Some(&terminal_id), ErrorCode::InvalidField, now);
                    }
                    replies.push((terminal_id, reply));
                }
                Err(refusal) => {
                    tracing::warn!(topic = %m.topic, reason = %refusal.reply.error.as_ref().map(|e| e.message.as_str()).unwrap_or(""), "refused a terminal message");
                    self.board
                        .refused(refusal.terminal_id.as_deref(), refusal.code(), now);
                    if let Some(t) = refusal.terminal_id {
                        replies.push((t, refusal.reply));
                    }
                }
            }
        }
        if !events.is_empty() {
            self.outbox.push_all_retrying(&events).await;
            GatewayStats::add(&self.stats.events_created, events.len() as u64);
            if sos {
                tracing::warn!("SOS received; sending it to the hub first");
            }
            self.wake.notify_one();
        }
        // Stored: now the terminals (or the broker holding their messages) may let go.
        for m in batch {
            match m.done {
                Done::Nothing => {}
                Done::Front(tx) => {
                    let _ = tx.send(());
                }
                Done::Broker(publish) => {
                    if let Err(e) = self.client.ack(&publish).await {
                        tracing::warn!(error = %e, "cannot acknowledge a message; the broker will send it again");
                    }
                }
            }
        }
        // Replies are a courtesy (the PUBACK is the guarantee): never wait for room to send
        // one, so a slow downlink can never hold up the intake.
        let mut dropped = 0u64;
        for (terminal, reply) in replies {
            let body = serde_json::to_vec(&reply).expect("a reply always serialises");
            let topic = Channel::Reply.topic(&terminal);
            if self
                .client
                .try_publish(topic, QoS::AtLeastOnce, false, body)
                .is_err()
            {
                dropped += 1;
            }
        }
        if dropped > 0 {
            self.board.replies_dropped(dropped);
            tracing::warn!(dropped, "the downlink is full: replies dropped");
        }
    }

    /// Records a task acknowledgement (retrying until stored) and says how it went.
    async fn task_ack(&self, terminal: &str, ack: &TaskAck) -> Reply {
        let mut delay = Duration::from_millis(100);
        let outcome = loop {
            match self.downlink.acknowledge(terminal, ack).await {
                Ok(o) => break o,
                Err(e) => {
                    tracing::error!(error = %e, "cannot store a task acknowledgement; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        };
        let error = (outcome == AckOutcome::UnknownTask).then(|| ReplyError {
            code: ErrorCode::InvalidField,
            message: format!("task_id: {} is not a task of {terminal}", ack.task_id),
        });
        Reply {
            v: PROTOCOL_VERSION,
            msg_id: None,
            channel: Channel::Ack.as_str().to_owned(),
            ok: error.is_none(),
            event_id: None,
            error,
        }
    }
}
