//! The gateway's periodic report to the hub (`PUT /api/v1/gateway/report`): its version and
//! backlog, its patrol terminals' presence and positions, and the terminals' answers to
//! tasks; the hub answers with the tasks waiting for those terminals, which go to the
//! downlink. An answer leaves the gateway's disk only once the hub has acknowledged it.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use protocol::PROTOCOL_VERSION;
use protocol::gateway::{GatewayReport, GatewayReportAck, TerminalPresence};
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::outbox::Outbox;
use crate::patrol::Board;
use crate::patrol::downlink::Downlink;

pub struct HubReport {
    pub hub_url: Url,
    pub token: SecretString,
    pub gateway_id: String,
    pub outbox: Outbox,
    /// Patrol terminals, when the gateway serves them.
    pub patrol: Option<(Arc<Board>, Downlink)>,
    pub interval: Duration,
}

impl HubReport {
    pub async fn run(self, shutdown: CancellationToken) {
        let client = crate::uplink::hub_client();
        let url = match self.hub_url.join("api/v1/gateway/report") {
            Ok(u) => u,
            Err(e) => {
                tracing::error!(error = %e, "hub report: bad hub URL");
                return;
            }
        };
        loop {
            if let Err(e) = self.once(&client, &url).await {
                tracing::warn!(error = %e, "hub report failed; trying again later");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.interval) => {}
            }
        }
    }

    async fn once(&self, client: &reqwest::Client, url: &Url) -> anyhow::Result<()> {
        let (terminals, (acks, last_ack)) = match &self.patrol {
            Some((board, downlink)) => (presence(board), downlink.unreported_acks().await?),
            None => (Vec::new(), (Vec::new(), 0)),
        };
        let report = GatewayReport {
            v: PROTOCOL_VERSION,
            gateway_id: self.gateway_id.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            outbox_pending: u64::try_from(self.outbox.pending().await?).unwrap_or(0),
            terminals,
            task_acks: acks,
        };
        let resp = client
            .put(url.clone())
            .bearer_auth(self.token.expose_secret())
            .json(&report)
            .send()
            .await?;
        let status = resp.status();
        if !status.is_success() {
            anyhow::bail!(
                "the hub answered {status}: {}",
                resp.text().await.unwrap_or_default()
            );
        }
        let ack: GatewayReportAck = resp.json().await?;
        if let Some((_, downlink)) = &self.patrol {
            if last_ack > 0 {
                downlink.reported(last_ack).await?;
            }
            downlink.add(&ack.tasks).await?;
        }
        Ok(())
    }
}

/// The terminals whose presence is known, as the hub wants them.
fn presence(board: &Board) -> Vec<TerminalPresence> {
    board
        .terminals()
        .into_iter()
        .filter_map(|t| {
            Some(TerminalPresence {
                presence: t.presence?,
                since: t.presence_since.unwrap_or_else(Utc::now),
                terminal_id: t.id,
                position: t.position,
            })
        })
        .collect()
}
