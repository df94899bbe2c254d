//! The event envelope: one observation made at the edge (a camera detection, a patrol report,
//! a device fault), as it travels from the gateway's outbox to the hub.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::CategoryCode;

/// One event. Its `id` is a UUIDv7 minted at the edge when the event is created, so a
/// redelivered event is recognised by the hub and stored once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventEnvelope {
    /// Protocol version the event was written with.
    pub v: u32,
    /// UUIDv7 minted at the edge.
    pub id: Uuid,
    /// The gateway that produced the event; must match the gateway that sends it.
    pub gateway_id: String,
    pub source: Source,
    /// Whether this event raises something new, updates it or ends it.
    #[serde(default)]
    pub kind: EventKind,
    /// The occurrence of a lasting condition (a crowd, a broken cover) this event follows,
    /// for the events a rule raises, updates and ends. Absent for one-off events (a patrol
    /// report), which are always `raised`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episode: Option<Episode>,
    /// The rule or report type that produced the event, e.g. `crowd`.
    pub rule: String,
    pub category: CategoryCode,
    pub occurred_at: DateTime<Utc>,
    pub location: Location,
    pub severity: Severity,
    /// Free text: a patrol worker's description, or a summary written by the rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection: Option<Detection>,
    /// Evidence blobs (snapshots, photos), uploaded separately and referenced by content hash.
    #[serde(default)]
    pub evidence: Vec<EvidenceRef>,
}

/// Where an event came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Source {
    Camera { camera_id: String },
    PatrolTerminal { terminal_id: String },
    Device { device_id: String },
}

impl Source {
    /// `camera`, `patrol_terminal` or `device`.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Camera { .. } => "camera",
            Source::PatrolTerminal { .. } => "patrol_terminal",
            Source::Device { .. } => "device",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Source::Camera { camera_id: id }
            | Source::PatrolTerminal { terminal_id: id }
            | Source::Device { device_id: id } => id,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A new observation (a crowd formed, a report was made).
    #[default]
    Raised,
    /// More about something raised earlier by the same source and rule.
    Update,
    /// The condition raised earlier is over (the crowd dispersed).
    Ended,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Raised => "raised",
            EventKind::Update => "update",
            EventKind::Ended => "ended",
        }
    }
}

/// One occurrence of a condition a rule follows from its start to its end: the start is
/// `seq` 0, each update and the end count up from there. The hub applies an episode's events
/// in `seq` order, whatever order they arrive in, and ignores what an applied later event
/// has overtaken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Episode {
    /// Minted at the edge when the condition starts (the id of the `raised` event).
    pub id: Uuid,
    pub seq: u32,
    /// The longest the rule stays silent while the condition lasts (it sends a refresh at
    /// least this often), so the hub can tell an episode that went quiet, e.g. because its
    /// gateway restarted and forgot it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_s: Option<u32>,
}

/// Risk level, as the governance centres grade it (高/中/低).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Location {
    /// WGS-84 latitude in degrees, −90..=90.
    pub lat: f64,
    /// WGS-84 longitude in degrees, −180..=180.
    pub lon: f64,
    /// Statistical division code (统计用区划代码): 6 digits county, 9 township, 12 village.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area_code: Option<String>,
    /// Grid (网格) code, as the county registers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<String>,
}

/// What a detector saw in the frame the event is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Detection {
    /// Model name and version from its manifest, e.g. `yolox-nano-coco@0.1.1rc0`.
    pub model: String,
    pub objects: Vec<DetectedObject>,
    /// Objects counted by class name (e.g. `person` → 14), after the rule's zone and score
    /// filters.
    pub counts: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DetectedObject {
    pub class: String,
    /// Confidence in 0..=1.
    pub score: f32,
    pub bbox: BoundingBox,
    /// The object's id across the camera's analysed frames (the gateway's tracker): the
    /// same id in two events of a camera is the same object. Ids restart with the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_id: Option<u64>,
}

/// A box in coordinates normalised to the frame: (0, 0) is the top-left corner, (1, 1) the
/// bottom-right, so boxes stay valid whatever resolution the evidence image has.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BoundingBox {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceRef {
    pub kind: EvidenceKind,
    /// Lower-case hex SHA-256 of the blob: its name at the hub.
    pub sha256: String,
    pub content_type: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// A camera frame with the detections drawn on it.
    Snapshot,
    /// A photo taken by a grid worker.
    Photo,
    /// A few seconds of a camera's stream (MP4) up to the frame an episode started on.
    Clip,
}

impl EvidenceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceKind::Snapshot => "snapshot",
            EvidenceKind::Photo => "photo",
            EvidenceKind::Clip => "clip",
        }
    }
}

/// A field of an event whose value is out of range, with its JSON path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl EventEnvelope {
    /// Checks what the types alone cannot: ranges, formats and lengths. `path` is the prefix
    /// for the field paths in the error, e.g. `events[3]`.
    pub fn validate(&self, path: &str) -> Result<(), FieldError> {
        let err = |field: &str, message: String| {
            Err(FieldError {
                path: format!("{path}.{field}"),
                message,
            })
        };
        if self.v != crate::PROTOCOL_VERSION {
            return err(
                "v",
                format!(
                    "protocol version {} is not supported (expected {})",
                    self.v,
                    crate::PROTOCOL_VERSION
                ),
            );
        }
        if self.id.get_version_num() != 7 {
            return err("id", "must be a UUIDv7 minted at the edge".into());
        }
        check_identifier(&self.gateway_id).or_else(|m| err("gateway_id", m))?;
        check_identifier(self.source.id()).or_else(|m| err("source", m))?;
        check_identifier(&self.rule).or_else(|m| err("rule", m))?;
        match (self.kind, self.episode) {
            (EventKind::Raised, Some(e)) if e.seq != 0 => {
                return err(
                    "episode.seq",
                    "a raised event starts its episode at 0".into(),
                );
            }
            (EventKind::Update | EventKind::Ended, None) => {
                return err(
                    "episode",
                    format!(
                        "an {} event names the episode it follows",
                        self.kind.as_str()
                    ),
                );
            }
            (EventKind::Update | EventKind::Ended, Some(e)) if e.seq == 0 => {
                return err(
                    "episode.seq",
                    format!(
                        "an {} event comes after its start (seq 0)",
                        self.kind.as_str()
                    ),
                );
            }
            (_, Some(e)) if e.refresh_s == Some(0) => {
                return err("episode.refresh_s", "must be at least 1 second".into());
            }
            _ => {}
        }
        self.location.validate().map_err(|e| FieldError {
            path: format!("{path}.location.{}", e.path),
            message: e.message,
        })?;
        if let Some(d) = &self.description
            && d.chars().count() > 2000
        {
            return err("description", "is longer than 2000 characters".into());
        }
        if let Some(det) = &self.detection {
            for (i, o) in det.objects.iter().enumerate() {
                if !(0.0..=1.0).contains(&o.score) {
                    return err(
                        &format!("detection.objects[{i}].score"),
                        format!("{} is outside 0..=1", o.score),
                    );
                }
                let b = o.bbox;
                let inside = |v: f32| (0.0..=1.0).contains(&v);
                if !(inside(b.x) && inside(b.y) && inside(b.w) && inside(b.h)) {
                    return err(
                        &format!("detection.objects[{i}].bbox"),
                        "coordinates must be normalised to 0..=1".into(),
                    );
                }
            }
        }
        for (i, e) in self.evidence.iter().enumerate() {
            if !(e.sha256.len() == 64
                && e.sha256
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            {
                return err(
                    &format!("evidence[{i}].sha256"),
                    "must be 64 lower-case hex digits".into(),
                );
            }
        }
        Ok(())
    }
}

impl Location {
    /// Checks ranges and formats; the error's path is relative to the location.
    pub fn validate(&self) -> Result<(), FieldError> {
        let err = |field: &str, message: String| {
            Err(FieldError {
                path: field.into(),
                message,
            })
        };
        if !(-90.0..=90.0).contains(&self.lat) {
            return err("lat", format!("{} is outside -90..=90", self.lat));
        }
        if !(-180.0..=180.0).contains(&self.lon) {
            return err("lon", format!("{} is outside -180..=180", self.lon));
        }
        if let Some(code) = &self.area_code {
            check_area_code(code).or_else(|m| err("area_code", m))?;
        }
        if let Some(grid) = &self.grid {
            check_identifier(grid).or_else(|m| err("grid", m))?;
        }
        Ok(())
    }
}

/// A statistical division code (统计用区划代码): 6 digits county, 9 township, 12 village.
pub fn check_area_code(code: &str) -> Result<(), String> {
    if matches!(code.len(), 6 | 9 | 12) && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!("{code:?} is not a 6, 9 or 12 digit division code"))
    }
}

/// Ids of gateways, cameras, terminals, rules and grids: 1–64 characters of letters, digits,
/// `-`, `_` and `.`, so they are safe in URLs, topics and file names.
pub fn check_identifier(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} must be 1-64 characters of letters, digits, '-', '_' or '.'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> EventEnvelope {
        EventEnvelope {
            v: crate::PROTOCOL_VERSION,
            id: Uuid::now_v7(),
            gateway_id: "gw-01".into(),
            source: Source::Camera {
                camera_id: "cam-1".into(),
            },
            kind: EventKind::Raised,
            episode: None,
            rule: "crowd".into(),
            category: "event:0407".parse().unwrap(),
            occurred_at: Utc::now(),
            location: Location {
                lat: 30.1,
                lon: 120.2,
                area_code: Some("330106001001".into()),
                grid: Some("G-01".into()),
            },
            severity: Severity::Medium,
            description: None,
            detection: Some(Detection {
                model: "yolox-nano-coco@1".into(),
                objects: vec![DetectedObject {
                    class: "person".into(),
                    score: 0.9,
                    bbox: BoundingBox {
                        x: 0.1,
                        y: 0.2,
                        w: 0.3,
                        h: 0.4,
                    },
                    track_id: Some(7),
                }],
                counts: [("person".to_string(), 1)].into(),
            }),
            evidence: vec![EvidenceRef {
                kind: EvidenceKind::Snapshot,
                sha256: "a".repeat(64),
                content_type: "image/jpeg".into(),
                bytes: 10,
            }],
        }
    }

    #[test]
    fn sample_is_valid_and_round_trips() {
        let e = sample();
        e.validate("e").unwrap();
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<EventEnvelope>(&json).unwrap(), e);
        assert!(
            json.contains(r#""source":{"type":"camera","camera_id":"cam-1"}"#),
            "{json}"
        );
    }

    fn episode(seq: u32) -> Episode {
        Episode {
            id: Uuid::now_v7(),
            seq,
            refresh_s: Some(600),
        }
    }

    #[test]
    fn an_episode_runs_from_its_start_at_seq_0() {
        let mut start = sample();
        start.episode = Some(episode(0));
        start.validate("e").unwrap();
        let mut update = start.clone();
        update.kind = EventKind::Update;
        update.episode = Some(episode(1));
        update.validate("e").unwrap();
        let json = serde_json::to_value(&update).unwrap();
        assert_eq!(json["episode"]["seq"], 1);
        assert!(
            serde_json::to_value(sample())
                .unwrap()
                .get("episode")
                .is_none(),
            "a one-off event carries no episode"
        );
    }

    #[test]
    fn validation_names_the_field() {
        type Mutation = fn(&mut EventEnvelope);
        let cases: Vec<(Mutation, &str)> = vec![
            (|e| e.v = 99, "e.v"),
            (|e| e.id = Uuid::new_v4(), "e.id"),
            (|e| e.gateway_id = "bad id/".into(), "e.gateway_id"),
            (|e| e.location.lat = 91.0, "e.location.lat"),
            (|e| e.location.lon = f64::NAN, "e.location.lon"),
            (
                |e| e.location.area_code = Some("12345".into()),
                "e.location.area_code",
            ),
            (
                |e| e.detection.as_mut().unwrap().objects[0].score = 1.5,
                "e.detection.objects[0].score",
            ),
            (
                |e| e.detection.as_mut().unwrap().objects[0].bbox.w = 2.0,
                "e.detection.objects[0].bbox",
            ),
            (
                |e| e.evidence[0].sha256 = "XYZ".into(),
                "e.evidence[0].sha256",
            ),
            (|e| e.episode = Some(episode(1)), "e.episode.seq"),
            (|e| e.kind = EventKind::Update, "e.episode"),
            (
                |e| {
                    e.episode = Some(Episode {
                        refresh_s: Some(0),
                        ..episode(0)
                    })
                },
                "e.episode.refresh_s",
            ),
            (
                |e| {
                    e.kind = EventKind::Ended;
                    e.episode = Some(episode(0));
                },
                "e.episode.seq",
            ),
        ];
        for (mutate, path) in cases {
            let mut e = sample();
            mutate(&mut e);
            let err = e.validate("e").unwrap_err();
            assert_eq!(err.path, path, "{err}");
        }
    }

    #[test]
    fn text_forms_match_the_wire_names() {
        for k in [EventKind::Raised, EventKind::Update, EventKind::Ended] {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        for k in [
            EvidenceKind::Snapshot,
            EvidenceKind::Photo,
            EvidenceKind::Clip,
        ] {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        for s in [Severity::Low, Severity::Medium, Severity::High] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v["colour"] = "red".into();
        let err = serde_json::from_value::<EventEnvelope>(v).unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }
}
