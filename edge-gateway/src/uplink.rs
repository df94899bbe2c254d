//! Drains the outbox to the hub: evidence blobs first (by content hash, once each), then the
//! events in a batch; deletes only what the hub's ack lists. Failures back off with jitter
//! and never lose an event; evidence the hub refuses (too large for it, say) is left out of
//! the events that cite it rather than holding them back.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use protocol::{EventEnvelope, PROTOCOL_VERSION, UplinkAck, UplinkBatch};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::health::GatewayStats;
use crate::outbox::Outbox;
use crate::pipeline::camera::Backoff;

/// How often an idle uplink looks at the outbox even without a wake-up.
const IDLE_POLL: Duration = Duration::from_secs(5);

pub struct Uplink {
    pub outbox: Outbox,
    pub hub_url: Url,
    pub token: SecretString,
    pub gateway_id: String,
    pub batch_size: usize,
    pub stats: Arc<GatewayStats>,
    /// Notified by the outbox writer after each push.
    pub wake: Arc<Notify>,
}

#[derive(Debug, thiserror::Error)]
enum SendError {
    /// The hub cannot be reached or failed; try the same batch again later.
    #[error("{0}")]
    Retry(String),
    /// The hub refused the batch as it is (too large, invalid): split it, and set a single
    /// event that is still refused aside.
    #[error("{0}")]
    Refused(String),
}

/// The HTTP client the gateway talks to the hub with.
pub(crate) fn hub_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .user_agent(format!("edge-gateway/{}", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("an HTTP client with default TLS settings builds")
}

impl Uplink {
    pub async fn run(self, shutdown: CancellationToken) {
        let client = hub_client();
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let mut batch_size = self.batch_size;
        while !shutdown.is_cancelled() {
            let events = match self.outbox.peek(batch_size).await {
                Ok(events) => events,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the outbox");
                    self.pause(&shutdown, backoff.next_delay()).await;
                    continue;
                }
            };
            if events.is_empty() {
                tokio::select! {
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(IDLE_POLL) => {}
                    () = shutdown.cancelled() => {}
                }
                continue;
            }
            match self.send(&client, &events).await {
                Ok(ack) => {
                    backoff.reset();
                    batch_size = self.batch_size;
                    self.apply(ack).await;
                }
                Err(SendError::Refused(reason)) if events.len() == 1 => {
                    tracing::error!(event = %events[0].id, %reason, "the hub refuses this event; moving it to the dead-letter table");
                    GatewayStats::add(&self.stats.events_rejected, 1);
                    if let Err(e) = self.outbox.dead_letter(events[0].id, &reason).await {
                        tracing::error!(error = %e, "cannot move the event aside");
                    }
                }
                Err(SendError::Refused(reason)) => {
                    batch_size = (events.len() / 2).max(1);
                    tracing::warn!(%reason, batch_size, "the hub refused a batch; splitting it");
                }
                Err(SendError::Retry(reason)) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(%reason, retry_in = ?delay, pending = events.len(), "cannot deliver to the hub");
                    self.stats.uplink(|u| {
                        u.last_error = Some(reason);
                        u.consecutive_failures += 1;
                        u.retries += 1;
                    });
                    self.pause(&shutdown, delay).await;
                }
            }
        }
    }

    async fn pause(&self, shutdown: &CancellationToken, delay: Duration) {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.cancelled() => {}
        }
    }

    async fn apply(&self, ack: UplinkAck) {
        if let Err(e) = self.outbox.ack(&ack.accepted).await {
            // The events stay and are sent again; the hub de-duplicates them.
            tracing::error!(error = %e, "cannot delete acknowledged events");
            return;
        }
        GatewayStats::add(&self.stats.events_delivered, ack.accepted.len() as u64);
        for r in &ack.rejected {
            tracing::error!(event = %r.id, reason = %r.reason, "the hub rejected an event; moving it to the dead-letter table");
            GatewayStats::add(&self.stats.events_rejected, 1);
            if let Err(e) = self.outbox.dead_letter(r.id, &r.reason).await {
                tracing::error!(error = %e, "cannot move the event aside");
            }
        }
        self.stats.uplink(|u| {
            u.last_success_at = Some(Utc::now());
            u.last_error = None;
            u.consecutive_failures = 0;
        });
        tracing::debug!(delivered = ack.accepted.len(), "batch delivered");
    }

    async fn send(
        &self,
        client: &reqwest::Client,
        events: &[EventEnvelope],
    ) -> Result<UplinkAck, SendError> {
        let local = |e: crate::outbox::OutboxError| SendError::Retry(format!("outbox: {e}"));
        let ids: Vec<_> = events.iter().map(|e| e.id).collect();
        // Evidence the hub will not take (larger than it accepts, a type it does not know)
        // must not cost the events that cite it: they go without it.
        let mut refused = HashSet::new();
        for blob in self.outbox.blobs_for(&ids).await.map_err(local)? {
            if blob.uploaded {
                continue;
            }
            let Some(data) = self.outbox.blob_data(&blob.sha256).await.map_err(local)? else {
                continue;
            };
            let url = self.endpoint(&format!("api/v1/blobs/{}", blob.sha256));
            let resp = client
                .put(url)
                .bearer_auth(self.token.expose_secret())
                .header(reqwest::header::CONTENT_TYPE, &blob.content_type)
                .body(data)
                .send()
                .await
                .map_err(|e| SendError::Retry(format!("uploading evidence: {e}")))?;
            let status = resp.status();
            match check(
                status,
                "uploading evidence",
                resp.text().await.unwrap_or_default(),
            ) {
                Ok(()) => self
                    .outbox
                    .mark_uploaded(&blob.sha256)
                    .await
                    .map_err(local)?,
                Err(SendError::Refused(reason)) => {
                    tracing::warn!(sha256 = %blob.sha256, %reason, "the hub refuses this evidence; its events go without it");
                    refused.insert(blob.sha256);
                }
                Err(retry) => return Err(retry),
            }
        }
        let mut events = events.to_vec();
        for event in &mut events {
            event.evidence.retain(|e| !refused.contains(&e.sha256));
        }
        let batch = UplinkBatch {
            v: PROTOCOL_VERSION,
            gateway_id: self.gateway_id.clone(),
            events,
        };
        let resp = client
            .post(self.endpoint("api/v1/events"))
            .bearer_auth(self.token.expose_secret())
            .json(&batch)
            .send()
            .await
            .map_err(|e| SendError::Retry(format!("posting events: {e}")))?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| SendError::Retry(format!("reading the ack: {e}")))?;
        check(status, "posting events", body.clone())?;
        serde_json::from_str(&body)
            .map_err(|e| SendError::Retry(format!("the hub's ack is not understood: {e}")))
    }

    fn endpoint(&self, path: &str) -> Url {
        let mut base = self.hub_url.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        base.join(path).expect("a relative path joins")
    }
}

fn check(status: StatusCode, what: &str, body: String) -> Result<(), SendError> {
    let detail = || {
        format!(
            "{what}: the hub answered {status}: {}",
            body.chars().take(300).collect::<String>()
        )
    };
    match status {
        s if s.is_success() => Ok(()),
        StatusCode::PAYLOAD_TOO_LARGE
        | StatusCode::UNPROCESSABLE_ENTITY
        | StatusCode::BAD_REQUEST
        | StatusCode::UNSUPPORTED_MEDIA_TYPE => Err(SendError::Refused(detail())),
        // 401/403 (token revoked or wrong), 5xx, 429…: keep the events and keep trying.
        _ => Err(SendError::Retry(detail())),
    }
}
