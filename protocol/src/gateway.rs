//! The gateway's periodic report to the hub (`PUT /api/v1/gateway/report`): its own state
//! and its patrol terminals' presence, plus the terminals' answers to tasks. The hub answers
//! with the tasks waiting for those terminals.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::category::CategoryCode;
use crate::event::BoundingBox;
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
    /// Answers to the hub's re-inspection requests since the last report the hub
    /// acknowledged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reinspections: Vec<ReinspectionResult>,
    /// For a gateway that takes its cameras from the hub's registry: the revision of the
    /// configuration it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_revision: Option<i64>,
    /// Why the newest configuration could not be applied (the one in force stays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_error: Option<String>,
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

/// The hub's answer: the tasks not yet done for this gateway's terminals, and the
/// re-inspections of its cameras not yet answered (each comes again until its answer has
/// reached the hub).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayReportAck {
    pub v: u32,
    pub tasks: Vec<AssignedTask>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reinspections: Vec<Reinspection>,
}

/// The hub asks a gateway to look again through one of its cameras (自动核查): a department
/// has reported a hazard that camera detected as dealt with, and the answer goes on the
/// case as evidence before the centre verifies and closes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reinspection {
    pub id: Uuid,
    pub case_id: Uuid,
    pub camera_id: String,
    /// The case's category; the gateway looks for the classes its models map onto it.
    pub category: CategoryCode,
    /// Where in the frame the hazard was seen (normalised), when the detection said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox: Option<BoundingBox>,
    pub requested_at: DateTime<Utc>,
}

/// A gateway's answer to a [`Reinspection`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReinspectionResult {
    pub id: Uuid,
    pub outcome: ReinspectionOutcome,
    pub checked_at: DateTime<Utc>,
    /// Frames analysed for the answer.
    pub frames: u32,
    /// The best score among the hazard's classes in those frames, if any was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    /// SHA-256 of a snapshot uploaded (`PUT /api/v1/blobs/…`) before the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// Why the camera could not be checked, or what else the gateway wants said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReinspectionOutcome {
    /// The hazard's classes were not seen in the frames analysed.
    Cleared,
    /// They still are.
    StillPresent,
    /// The camera could not be checked (offline, unknown, no model for the category).
    NotChecked,
}

impl ReinspectionOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ReinspectionOutcome::Cleared => "cleared",
            ReinspectionOutcome::StillPresent => "still_present",
            ReinspectionOutcome::NotChecked => "not_checked",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignedTask {
    pub terminal_id: String,
    pub task: Task,
}
