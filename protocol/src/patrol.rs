//! Patrol terminals over MQTT: the topics and the JSON payloads a grid worker's handheld
//! terminal exchanges with its township gateway. `docs/mqtt.md` is the prose version.
//!
//! Every topic is scoped to one terminal: `patrol/{terminal_id}/{channel}`. A terminal may
//! publish only on its own uplink channels and subscribe only to its own downlink channels.
//! Every payload carries `v`, the protocol version, and uplink messages carry `msg_id`, the
//! terminal's id for the message, which the gateway's reply quotes.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{CategoryCode, Severity, check_identifier};

/// First level of every patrol topic.
pub const TOPIC_ROOT: &str = "patrol";

/// The last level of a patrol topic: what the message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Terminal → gateway: a hazard report ([`PatrolReport`]).
    Report,
    /// Terminal → gateway: a call for help ([`SosAlert`]).
    Sos,
    /// Terminal → gateway: the worker's track ([`LocationUpdate`]).
    Location,
    /// Terminal → gateway, retained: presence ([`TerminalStatus`]); the terminal's last will
    /// publishes `offline` here.
    Status,
    /// Terminal → gateway: a downlink task was received or done ([`TaskAck`]).
    Ack,
    /// Gateway → terminal: a task to carry out ([`Task`]).
    Task,
    /// Gateway → terminal: the outcome of an uplink message ([`Reply`]).
    Reply,
}

impl Channel {
    pub const ALL: [Channel; 7] = [
        Channel::Report,
        Channel::Sos,
        Channel::Location,
        Channel::Status,
        Channel::Ack,
        Channel::Task,
        Channel::Reply,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Report => "report",
            Channel::Sos => "sos",
            Channel::Location => "location",
            Channel::Status => "status",
            Channel::Ack => "ack",
            Channel::Task => "task",
            Channel::Reply => "reply",
        }
    }

    /// Whether terminals publish on this channel (the others they subscribe to).
    pub fn is_uplink(self) -> bool {
        !matches!(self, Channel::Task | Channel::Reply)
    }

    /// The topic of this channel for `terminal_id`.
    pub fn topic(self, terminal_id: &str) -> String {
        format!("{TOPIC_ROOT}/{terminal_id}/{}", self.as_str())
    }

    /// The filter matching this channel of every terminal, e.g. `patrol/+/report`.
    pub fn filter_all(self) -> String {
        format!("{TOPIC_ROOT}/+/{}", self.as_str())
    }
}

/// A topic that is not `patrol/{terminal_id}/{channel}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("topic {topic:?}: {reason}")]
pub struct TopicError {
    pub topic: String,
    pub reason: String,
}

/// Splits `patrol/{terminal_id}/{channel}` into its terminal id and channel.
pub fn parse_topic(topic: &str) -> Result<(&str, Channel), TopicError> {
    let err = |reason: String| TopicError {
        topic: topic.to_owned(),
        reason,
    };
    let mut parts = topic.split('/');
    let (Some(root), Some(terminal), Some(channel), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(err(format!(
            "expected {TOPIC_ROOT}/{{terminal_id}}/{{channel}}"
        )));
    };
    if root != TOPIC_ROOT {
        return Err(err(format!("must start with {TOPIC_ROOT}/")));
    }
    check_identifier(terminal).map_err(|m| err(format!("terminal id {m}")))?;
    let channel = Channel::ALL
        .into_iter()
        .find(|c| c.as_str() == channel)
        .ok_or_else(|| err(format!("unknown channel {channel:?}")))?;
    Ok((terminal, channel))
}

/// A hazard a grid worker reports, with photos. Published on `patrol/{id}/report`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatrolReport {
    pub v: u32,
    /// The terminal's id for this message (1–64 of letters, digits, `-`, `_`, `.`); a
    /// message sent twice with the same id is one report.
    pub msg_id: String,
    /// Category, e.g. `component:0114` (a manhole cover) or `event:0501`.
    pub category: CategoryCode,
    pub description: String,
    /// WGS-84 position of the hazard.
    pub lat: f64,
    pub lon: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<String>,
    pub occurred_at: DateTime<Utc>,
    /// The worker's judgement of the risk; medium when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// JPEG photos, base64 (standard alphabet, padded).
    #[serde(default)]
    pub photos: Vec<String>,
}

/// A call for help. Published on `patrol/{id}/sos`; it goes to the front of the uplink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SosAlert {
    pub v: u32,
    pub msg_id: String,
    pub lat: f64,
    pub lon: f64,
    pub occurred_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Where the worker has been since the last update. Published on `patrol/{id}/location`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationUpdate {
    pub v: u32,
    pub msg_id: String,
    /// Oldest first; at least one.
    pub points: Vec<TrackPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackPoint {
    pub lat: f64,
    pub lon: f64,
    pub at: DateTime<Utc>,
    /// Horizontal accuracy in metres, when the terminal knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy_m: Option<f32>,
}

/// Presence, published retained on `patrol/{id}/status`: `online` after connecting, and
/// `offline` as the terminal's last will (and before a clean disconnect).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TerminalStatus {
    pub v: u32,
    pub state: Presence,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Online,
    Offline,
}

/// A task for a grid worker, from the hub through the gateway, on `patrol/{id}/task`; sent
/// again until the terminal acknowledges it on `patrol/{id}/ack`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Task {
    pub v: u32,
    pub task_id: Uuid,
    /// The case the task is about.
    pub case_id: Uuid,
    pub kind: TaskKind,
    /// What to do, for the worker's screen.
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Where to go.
    pub lat: f64,
    pub lon: f64,
    pub issued_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Go and check that a reported hazard is real (核实).
    Verify,
    /// Go and check that a handled case is really fixed (核查).
    Check,
}

/// A terminal's answer to a [`Task`], on `patrol/{id}/ack`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskAck {
    pub v: u32,
    pub task_id: Uuid,
    pub state: TaskState,
    pub at: DateTime<Utc>,
    /// The worker's words, e.g. what was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Where a task stands, as its terminal last said.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// On the terminal's screen.
    Received,
    /// Carried out.
    Done,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Received => "received",
            TaskState::Done => "done",
        }
    }
}

/// The gateway's answer to an uplink message, on `patrol/{id}/reply`: sent for every report
/// and SOS it accepts and for every message it refuses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    pub v: u32,
    /// The `msg_id` of the message answered, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<String>,
    /// The channel the message came on, e.g. `report`.
    pub channel: String,
    pub ok: bool,
    /// The event the message became, when accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ReplyError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyError {
    pub code: ErrorCode,
    /// What was wrong, naming the field (`photos[1]: …`).
    pub message: String,
}

/// Why a message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not UTF-8 JSON.
    NotJson,
    /// `v` is missing or not a version this gateway speaks.
    UnsupportedVersion,
    /// A field is missing, unknown or out of range.
    InvalidField,
    /// A photo is larger than the gateway's limit.
    PhotoTooLarge,
    /// A photo is not base64 of a JPEG image.
    PhotoNotJpeg,
    /// More photos than the gateway accepts in one report.
    TooManyPhotos,
    /// The message is larger than the gateway accepts.
    TooLarge,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotJson => "not_json",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::PhotoTooLarge => "photo_too_large",
            ErrorCode::PhotoNotJpeg => "photo_not_jpeg",
            ErrorCode::TooManyPhotos => "too_many_photos",
            ErrorCode::TooLarge => "too_large",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip() {
        for c in Channel::ALL {
            let topic = c.topic("t-0001");
            assert_eq!(parse_topic(&topic).unwrap(), ("t-0001", c));
        }
        assert_eq!(Channel::Report.filter_all(), "patrol/+/report");
    }

    #[test]
    fn bad_topics_are_refused_with_the_reason() {
        for (topic, reason) in [
            ("patrol/t-1", "expected"),
            ("patrol/t-1/report/extra", "expected"),
            ("other/t-1/report", "must start with"),
            ("patrol/t 1/report", "terminal id"),
            ("patrol//report", "terminal id"),
            ("patrol/t-1/selfie", "unknown channel"),
        ] {
            let e = parse_topic(topic).unwrap_err();
            assert!(e.reason.contains(reason), "{topic}: {e}");
        }
    }

    #[test]
    fn uplink_and_downlink_channels() {
        let down: Vec<_> = Channel::ALL
            .into_iter()
            .filter(|c| !c.is_uplink())
            .collect();
        assert_eq!(down, [Channel::Task, Channel::Reply]);
    }
}
