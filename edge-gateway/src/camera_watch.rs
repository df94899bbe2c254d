//! Tells the hub when a camera stays down: every second each running camera's state goes
//! through its `Liveness` (`pipeline/liveness.rs`); a camera not streaming for
//! `camera_offline_after_s` becomes a `camera_offline` event, and a `camera_online` event
//! when it streams again. A camera removed from the list is forgotten.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::gateway::CameraState;
use protocol::{CategoryCode, EventEnvelope, EventKind, PROTOCOL_VERSION, Severity, Source};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cameras::CameraBoard;
use crate::config::CameraConfig;
use crate::event::NewEvent;
use crate::pipeline::liveness::{Change, Liveness};

pub const OFFLINE_RULE: &str = "camera_offline";
pub const ONLINE_RULE: &str = "camera_online";

pub struct CameraWatch {
    pub gateway_id: String,
    pub board: Arc<CameraBoard>,
    pub category: CategoryCode,
    pub offline_after: Duration,
    pub events: mpsc::Sender<NewEvent>,
}

impl CameraWatch {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut cameras: HashMap<String, Liveness> = HashMap::new();
        loop {
            let now = Instant::now();
            let running = self.board.cameras();
            cameras.retain(|id, _| running.iter().any(|(c, _)| &c.id == id));
            for (camera, health) in running {
                let status = health.snapshot();
                let liveness = cameras
                    .entry(camera.id.clone())
                    .or_insert_with(|| Liveness::new(self.offline_after, now));
                let streaming = status.state == CameraState::Streaming;
                let Some(change) = liveness.step(streaming, now) else {
                    continue;
                };
                tracing::warn!(camera = %camera.id, ?change, "camera liveness changed");
                let event = status_event(
                    &self.gateway_id,
                    &camera,
                    &self.category,
                    change,
                    status.last_error.as_deref(),
                );
                // Events are never dropped: wait for the outbox writer.
                if self.events.send(event).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

/// The device event for a camera going offline or coming back, at the camera's place.
pub fn status_event(
    gateway_id: &str,
    camera: &CameraConfig,
    category: &CategoryCode,
    change: Change,
    last_error: Option<&str>,
) -> NewEvent {
    let (rule, severity, description) = match change {
        Change::Offline { down_for } => (
            OFFLINE_RULE,
            Severity::Medium,
            format!(
                "摄像头离线 {} offline for {} s{}",
                camera.name,
                down_for.as_secs(),
                last_error.map(|e| format!(": {e}")).unwrap_or_default()
            ),
        ),
        Change::Online { down_for } => (
            ONLINE_RULE,
            Severity::Low,
            format!(
                "摄像头恢复 {} back after {} s offline",
                camera.name,
                down_for.as_secs()
            ),
        ),
    };
    NewEvent {
        envelope: EventEnvelope {
            v: PROTOCOL_VERSION,
            id: uuid::Uuid::now_v7(),
            gateway_id: gateway_id.to_owned(),
            source: Source::Camera {
                camera_id: camera.id.clone(),
            },
            kind: EventKind::Raised,
            episode: None,
            rule: rule.into(),
            category: category.clone(),
            occurred_at: chrono::Utc::now(),
            location: camera.location.clone(),
            severity,
            description: Some(description),
            detection: None,
            evidence: Vec::new(),
        },
        blobs: Vec::new(),
    }
}
