//! The gateway's periodic report to the hub (`PUT /api/v1/gateway/report`): its version and
//! backlog, its cameras' health, its patrol terminals' presence and positions, the
//! terminals' answers to tasks and the answers to re-inspections; the hub answers with the
//! tasks waiting for those terminals, which go to the downlink, and the re-inspections
//! waiting for its cameras, which go to the detection thread. An answer leaves the gateway
//! only once the hub has acknowledged it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use protocol::PROTOCOL_VERSION;
use protocol::gateway::{
    CameraReport, GatewayReport, GatewayReportAck, ReinspectionOutcome, ReinspectionResult,
    TerminalPresence,
};
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::cameras::CameraBoard;
use crate::config_sync::ConfigStatus;
use crate::health::CameraStatus;
use crate::outbox::Outbox;
use crate::patrol::Board;
use crate::patrol::downlink::Downlink;
use crate::reinspection::{Answer, Desk};

pub struct HubReport {
    pub hub_url: Url,
    pub token: SecretString,
    pub gateway_id: String,
    pub outbox: Outbox,
    /// Patrol terminals, when the gateway serves them.
    pub patrol: Option<(Arc<Board>, Downlink)>,
    pub cameras: Arc<CameraBoard>,
    /// Re-inspections: requests in, answers out.
    pub reinspections: Arc<Desk>,
    /// The registry configuration running, for a gateway that takes its cameras from the hub.
    pub config: Option<Arc<ConfigStatus>>,
    /// Whether a detection thread takes up re-inspections; without one they are answered
    /// `not_checked` here.
    pub analysing: bool,
    pub interval: Duration,
    /// Each camera's decoded-frame count at the previous report, for its frame rate.
    pub previous: Mutex<HashMap<String, (u64, Instant)>>,
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
        let answers = self.reinspection_answers(client).await?;
        let (config_revision, config_error) =
            self.config.as_ref().map(|c| c.get()).unwrap_or_default();
        let report = GatewayReport {
            v: PROTOCOL_VERSION,
            gateway_id: self.gateway_id.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            outbox_pending: u64::try_from(self.outbox.pending().await?).unwrap_or(0),
            terminals,
            task_acks: acks,
            cameras: {
                let statuses: Vec<CameraStatus> = self.cameras.snapshot();
                let mut previous = self.previous.lock().unwrap_or_else(|e| e.into_inner());
                camera_reports(&statuses, &mut previous, Instant::now())
            },
            reinspections: answers.iter().map(|a| a.result.clone()).collect(),
            config_revision,
            config_error,
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
        let delivered: Vec<_> = answers.iter().map(|a| a.result.id).collect();
        self.reinspections.delivered(&delivered);
        self.reinspections.file(&ack.reinspections);
        Ok(())
    }

    /// The re-inspection answers to send, their snapshots uploaded first.
    async fn reinspection_answers(&self, client: &reqwest::Client) -> anyhow::Result<Vec<Answer>> {
        if !self.analysing {
            for request in self.reinspections.take_incoming() {
                self.reinspections.answer(Answer {
                    result: ReinspectionResult {
                        id: request.id,
                        outcome: ReinspectionOutcome::NotChecked,
                        checked_at: Utc::now(),
                        frames: 0,
                        score: None,
                        snapshot: None,
                        note: Some("this gateway runs no detection".into()),
                    },
                    snapshot: None,
                });
            }
        }
        let answers = self.reinspections.answers();
        for snapshot in answers.iter().filter_map(|a| a.snapshot.as_ref()) {
            let url = self
                .hub_url
                .join(&format!("api/v1/blobs/{}", snapshot.sha256))?;
            let resp = client
                .put(url)
                .bearer_auth(self.token.expose_secret())
                .header(reqwest::header::CONTENT_TYPE, snapshot.content_type)
                .body(snapshot.data.clone())
                .send()
                .await?;
            if !resp.status().is_success() {
                anyhow::bail!(
                    "uploading a re-inspection snapshot: the hub answered {}",
                    resp.status()
                );
            }
        }
        Ok(answers)
    }
}

/// The cameras as the hub wants them. The frame rate is the frames decoded since the
/// previous report over the time between (0 at the first report), remembered in `previous`.
fn camera_reports(
    cameras: &[CameraStatus],
    previous: &mut HashMap<String, (u64, Instant)>,
    now: Instant,
) -> Vec<CameraReport> {
    cameras
        .iter()
        .map(|c| {
            let fps = match previous.insert(c.id.clone(), (c.frames_decoded, now)) {
                Some((frames, at)) if now > at => {
                    c.frames_decoded.saturating_sub(frames) as f32 / (now - at).as_secs_f32()
                }
                _ => 0.0,
            };
            CameraReport {
                camera_id: c.id.clone(),
                name: c.name.clone(),
                state: c.state,
                fps,
                last_frame_at: c.last_frame_at,
                reconnects: c.reconnects,
                events_raised: c.events_raised,
                last_event_at: c.last_event_at,
                last_error: c.last_error.clone(),
            }
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::gateway::CameraState;

    #[test]
    fn the_frame_rate_is_frames_decoded_between_reports() {
        let mut previous = HashMap::new();
        let start = Instant::now();
        let mut cam = CameraStatus {
            id: "cam-1".into(),
            name: "gate".into(),
            state: CameraState::Streaming,
            frames_decoded: 100,
            ..CameraStatus::default()
        };
        let first = camera_reports(std::slice::from_ref(&cam), &mut previous, start);
        assert_eq!(first[0].fps, 0.0, "nothing to compare with yet");
        cam.frames_decoded = 250;
        let second = camera_reports(
            std::slice::from_ref(&cam),
            &mut previous,
            start + Duration::from_secs(15),
        );
        assert_eq!(second[0].fps, 10.0);
        assert_eq!(second[0].state, CameraState::Streaming);
        // A decoder restart that resets the count is no negative rate.
        cam.frames_decoded = 5;
        let third = camera_reports(
            std::slice::from_ref(&cam),
            &mut previous,
            start + Duration::from_secs(30),
        );
        assert_eq!(third[0].fps, 0.0);
    }
}
