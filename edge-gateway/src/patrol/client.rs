//! The gateway's own MQTT client (`rumqttc`): publishes replies (and later tasks) to
//! terminals and, with an external broker, receives the terminals' messages.
//!
//! Persistent session (clean session off) and manual acks: the broker keeps a message until
//! the intake writer has stored its event and acknowledged it. The task that polls the event
//! loop never waits on anything else: it hands messages over through an unbounded channel,
//! which the broker's in-flight window (QoS 1) keeps small.

use std::time::Duration;

use protocol::patrol::Channel;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, Request};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::writer::{Done, Message};
use crate::pipeline::camera::Backoff;

/// Where the gateway's client connects and as whom.
#[derive(Debug, Clone)]
pub struct Login {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// The uplink filters the client subscribes to when the terminals' messages reach the
/// gateway through an external broker.
pub fn uplink_filters() -> Vec<String> {
    [
        Channel::Report,
        Channel::Sos,
        Channel::Location,
        Channel::Status,
    ]
    .into_iter()
    .map(Channel::filter_all)
    .collect()
}

pub fn connect(login: &Login, max_packet: usize) -> (AsyncClient, EventLoop) {
    let mut options = MqttOptions::new(&login.client_id, &login.host, login.port);
    options
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(max_packet, max_packet)
        .set_inflight(200)
        .set_request_channel_capacity(1024);
    if let Some(user) = &login.username {
        options.set_credentials(user, login.password.clone().unwrap_or_default());
    }
    AsyncClient::new(options, 1024)
}

/// Polls the event loop until `shutdown`; subscribes to `filters` after every connect and
/// passes every message received to `intake`.
pub async fn poll(
    mut eventloop: EventLoop,
    client: AsyncClient,
    filters: Vec<String>,
    intake: mpsc::UnboundedSender<Message>,
    shutdown: CancellationToken,
) {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => break,
            event = eventloop.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                backoff.reset();
                // rumqttc keeps a publish whose packet id was still in flight in a side slot
                // that a reconnect neither resends nor clears, and while it is full the client
                // takes no requests, acks included (rumqtt issue 1056). Put it back in line.
                if let Some(stranded) = eventloop.state.collision.take() {
                    tracing::info!(
                        pkid = stranded.pkid,
                        "patrol: resending a publish held across the reconnect"
                    );
                    eventloop.pending.push_back(Request::Publish(stranded));
                }
                tracing::info!(
                    session_present = ack.session_present,
                    "patrol: connected to the MQTT broker"
                );
                if !filters.is_empty() {
                    // Not awaited here: the request channel is drained by this very loop.
                    let (client, filters) = (client.clone(), filters.clone());
                    tokio::spawn(async move {
                        let subs = filters
                            .into_iter()
                            .map(|f| rumqttc::SubscribeFilter::new(f, QoS::AtLeastOnce));
                        if let Err(e) = client.subscribe_many(subs).await {
                            tracing::error!(error = %e, "patrol: cannot subscribe");
                        }
                    });
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let message = Message {
                    topic: p.topic.clone(),
                    payload: p.payload.clone(),
                    done: Done::Broker(p),
                };
                if intake.send(message).is_err() {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in = ?delay, "patrol: MQTT connection lost");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
    let _ = client.try_disconnect();
}
