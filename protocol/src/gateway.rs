//! The gateway's periodic report to the hub (`PUT /api/v1/gateway/report`): its own state
//! and its patrol terminals' presence, plus the terminals' answers to tasks. The hub answers
//! with the tasks waiting for those terminals.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::patrol::{Presence, Task, TaskState, TrackPoint};

/// `PUT /api/v1/gateway/report` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayReport {
    pub v: u32,
    pub gateway_id: String,
    /// The gateway's software version.
    pub version: String,
    /// Events waiting in its outbox.
    pub outbox_pending: u64,
    /// Every terminal heard since the gateway started.
    #[serde(default)]
    pub terminals: Vec<TerminalPresence>,
    /// Terminals' answers to tasks since the last report the hub acknowledged.
    #[serde(default)]
    pub task_acks: Vec<TerminalTaskAck>,
    /// Its cameras' health.
    #[serde(default)]
    pub cameras: Vec<CameraReport>,
}

/// One camera's health, as its gateway last saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CameraReport {
    pub camera_id: String,
    pub name: String,
    pub state: CameraState,
    /// Frames decoded per second since the previous report.
    pub fps: f32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_frame_at: Option<DateTime<Utc>>,
    /// Times the stream was opened again since the gateway started.
    pub reconnects: u64,
    /// Events the camera's rules raised since the gateway started, and the latest one's time.
    pub events_raised: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event_at: Option<DateTime<Utc>>,
    /// Why the stream last failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CameraState {
    /// Opening the stream.
    #[default]
    Connecting,
    /// Frames are arriving.
    Streaming,
    /// The stream failed; waiting to open it again.
    Retrying,
}

impl CameraState {
    pub fn as_str(self) -> &'static str {
        match self {
            CameraState::Connecting => "connecting",
            CameraState::Streaming => "streaming",
            CameraState::Retrying => "retrying",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TerminalPresence {
    pub terminal_id: String,
    pub presence: Presence,
    pub since: DateTime<Utc>,
    /// The worker's last known position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<TrackPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TerminalTaskAck {
    pub terminal_id: String,
    pub task_id: Uuid,
    pub state: TaskState,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The hub's answer: the tasks not yet done for this gateway's terminals (the same task may
/// come again until a `done` acknowledgement for it has reached the hub).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayReportAck {
    pub v: u32,
    pub tasks: Vec<AssignedTask>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignedTask {
    pub terminal_id: String,
    pub task: Task,
}
