//! Reading one MQTT message from a patrol terminal: topic and payload in, an event (or a
//! presence or track update) or a refusal with its reason out. Pure: no I/O, no clock.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use protocol::patrol::{
    Channel, ErrorCode, LocationUpdate, PatrolReport, Presence, Reply, ReplyError, SosAlert,
    TaskAck, TerminalStatus, TrackPoint, parse_topic,
};
use protocol::{
    CategoryCode, EventEnvelope, EventKind, EvidenceKind, Location, PROTOCOL_VERSION, Severity,
    Source, check_identifier,
};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{REPORT_RULE, SOS_RULE};
use crate::event::{Blob, NewEvent};

/// What the intake accepts.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_photos: usize,
    pub max_photo_bytes: usize,
    /// Largest payload read at all; larger ones are refused before parsing.
    pub max_message_bytes: usize,
    /// Category of SOS events.
    pub sos_category: CategoryCode,
}

impl Limits {
    /// The largest message a report within the photo limits can be, plus room for its text.
    pub fn message_bytes_for(max_photos: usize, max_photo_bytes: usize) -> usize {
        max_photos * max_photo_bytes.div_ceil(3) * 4 + 64 * 1024
    }
}

/// A message read successfully.
#[derive(Debug, Clone)]
pub enum Intake {
    /// A report or SOS: goes to the outbox; the reply confirms it once stored.
    Event(Box<Accepted>),
    /// The terminal came online or went offline.
    Presence {
        terminal_id: String,
        presence: Presence,
    },
    /// The worker's track; the last point is the terminal's position.
    Track {
        terminal_id: String,
        points: Vec<TrackPoint>,
    },
    /// The terminal's answer to a task.
    TaskAck { terminal_id: String, ack: TaskAck },
}

#[derive(Debug, Clone)]
pub struct Accepted {
    pub event: NewEvent,
    pub reply: Reply,
}

/// A message refused: the terminal hears why on its reply topic, when it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The terminal the topic names, when the topic is a valid patrol topic.
    pub terminal_id: Option<String>,
    pub reply: Reply,
}

impl Refusal {
    pub fn code(&self) -> ErrorCode {
        self.reply
            .error
            .as_ref()
            .map(|e| e.code)
            .expect("a refusal always carries an error")
    }
}

/// Reads the message `payload` published on `topic`, as gateway `gateway_id` sees it.
pub fn read(
    gateway_id: &str,
    topic: &str,
    payload: &[u8],
    limits: &Limits,
) -> Result<Intake, Box<Refusal>> {
    let (terminal, channel) = parse_topic(topic).map_err(|e| Refusal {
        terminal_id: None,
        reply: refused(None, "unknown", ErrorCode::InvalidField, e.to_string()),
    })?;
    let refuse = |msg_id: Option<String>, code: ErrorCode, message: String| {
        Box::new(Refusal {
            terminal_id: Some(terminal.to_owned()),
            reply: refused(msg_id, channel.as_str(), code, message),
        })
    };
    if !channel.is_uplink() {
        return Err(refuse(
            None,
            ErrorCode::InvalidField,
            format!("{} is a downlink channel", channel.as_str()),
        ));
    }
    if payload.len() > limits.max_message_bytes {
        return Err(refuse(
            None,
            ErrorCode::TooLarge,
            format!(
                "message of {} bytes is larger than the limit of {} bytes",
                payload.len(),
                limits.max_message_bytes
            ),
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(payload)
        .map_err(|e| refuse(None, ErrorCode::NotJson, format!("not JSON: {e}")))?;
    let msg_id = value
        .get("msg_id")
        .and_then(|m| m.as_str())
        .filter(|m| check_identifier(m).is_ok())
        .map(str::to_owned);
    match value.get("v").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(PROTOCOL_VERSION) => {}
        Some(v) => {
            return Err(refuse(
                msg_id,
                ErrorCode::UnsupportedVersion,
                format!("v: protocol version {v} is not supported (expected {PROTOCOL_VERSION})"),
            ));
        }
        None => {
            return Err(refuse(
                msg_id,
                ErrorCode::UnsupportedVersion,
                "v: missing; the protocol version is required".into(),
            ));
        }
    }
    let invalid = |message: String| refuse(msg_id.clone(), ErrorCode::InvalidField, message);
    match channel {
        Channel::Report => {
            let report: PatrolReport = parse(value).map_err(invalid)?;
            report_event(gateway_id, terminal, report, limits)
                .map_err(|(code, message)| refuse(msg_id.clone(), code, message))
        }
        Channel::Sos => {
            let sos: SosAlert = parse(value).map_err(invalid)?;
            sos_event(gateway_id, terminal, sos, limits).map_err(invalid)
        }
        Channel::Location => {
            let update: LocationUpdate = parse(value).map_err(invalid)?;
            check_msg_id(&update.msg_id).map_err(&invalid)?;
            if update.points.is_empty() {
                return Err(invalid("points: at least one point is required".into()));
            }
            for (i, p) in update.points.iter().enumerate() {
                check_position(p.lat, p.lon).map_err(|m| invalid(format!("points[{i}].{m}")))?;
            }
            Ok(Intake::Track {
                terminal_id: terminal.to_owned(),
                points: update.points,
            })
        }
        Channel::Status => {
            let status: TerminalStatus = parse(value).map_err(invalid)?;
            Ok(Intake::Presence {
                terminal_id: terminal.to_owned(),
                presence: status.state,
            })
        }
        Channel::Ack => {
            let ack: TaskAck = parse(value).map_err(invalid)?;
            if ack.note.as_ref().is_some_and(|n| n.chars().count() > 2000) {
                return Err(invalid("note: is longer than 2000 characters".into()));
            }
            Ok(Intake::TaskAck {
                terminal_id: terminal.to_owned(),
                ack,
            })
        }
        Channel::Task | Channel::Reply => unreachable!("downlink channels are refused above"),
    }
}

fn refused(msg_id: Option<String>, channel: &str, code: ErrorCode, message: String) -> Reply {
    Reply {
        v: PROTOCOL_VERSION,
        msg_id,
        channel: channel.to_owned(),
        ok: false,
        event_id: None,
        error: Some(ReplyError { code, message }),
    }
}

fn accepted(msg_id: &str, channel: Channel, event_id: Uuid) -> Reply {
    Reply {
        v: PROTOCOL_VERSION,
        msg_id: Some(msg_id.to_owned()),
        channel: channel.as_str().to_owned(),
        ok: true,
        event_id: Some(event_id),
        error: None,
    }
}

/// Deserialises with the JSON path of the first bad field in the error.
fn parse<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        }
    })
}

fn check_msg_id(msg_id: &str) -> Result<(), String> {
    check_identifier(msg_id).map_err(|m| format!("msg_id: {m}"))
}

fn check_position(lat: f64, lon: f64) -> Result<(), String> {
    location(lat, lon, None, None)
        .validate()
        .map_err(|e| format!("{}: {}", e.path, e.message))
}

fn location(lat: f64, lon: f64, area_code: Option<String>, grid: Option<String>) -> Location {
    Location {
        lat,
        lon,
        area_code,
        grid,
    }
}

/// The event id of a terminal's message: a UUIDv7 whose time is when the message says it
/// happened and whose other bits come from the terminal and message ids, so a message
/// delivered twice (QoS 1) becomes the same event, which the outbox and the hub store once.
pub fn event_id(terminal_id: &str, channel: Channel, msg_id: &str, at: DateTime<Utc>) -> Uuid {
    let digest = Sha256::new()
        .chain_update(terminal_id)
        .chain_update([0])
        .chain_update(channel.as_str())
        .chain_update([0])
        .chain_update(msg_id)
        .finalize();
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    let mut random = [0u8; 10];
    random.copy_from_slice(&digest[..10]);
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
}

fn report_event(
    gateway_id: &str,
    terminal: &str,
    r: PatrolReport,
    limits: &Limits,
) -> Result<Intake, (ErrorCode, String)> {
    let invalid = |m: String| (ErrorCode::InvalidField, m);
    check_msg_id(&r.msg_id).map_err(invalid)?;
    if r.description.trim().is_empty() {
        return Err(invalid("description: must not be empty".into()));
    }
    if r.photos.len() > limits.max_photos {
        return Err((
            ErrorCode::TooManyPhotos,
            format!(
                "photos: {} photos, at most {} are accepted",
                r.photos.len(),
                limits.max_photos
            ),
        ));
    }
    let blobs = r
        .photos
        .iter()
        .enumerate()
        .map(|(i, p)| {
            photo(p, limits.max_photo_bytes).map_err(|(c, m)| (c, format!("photos[{i}]: {m}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let id = event_id(terminal, Channel::Report, &r.msg_id, r.occurred_at);
    let envelope = EventEnvelope {
        v: PROTOCOL_VERSION,
        id,
        gateway_id: gateway_id.to_owned(),
        source: Source::PatrolTerminal {
            terminal_id: terminal.to_owned(),
        },
        kind: EventKind::Raised,
        episode: None,
        rule: REPORT_RULE.into(),
        category: r.category,
        occurred_at: r.occurred_at,
        location: location(r.lat, r.lon, r.area_code, r.grid),
        severity: r.severity.unwrap_or(Severity::Medium),
        description: Some(r.description),
        detection: None,
        evidence: blobs
            .iter()
            .map(|b| b.evidence(EvidenceKind::Photo))
            .collect(),
    };
    // The hub's own rules, so what the gateway accepts the hub accepts too.
    envelope
        .validate("")
        .map_err(|e| invalid(format!("{}: {}", e.path.trim_start_matches('.'), e.message)))?;
    Ok(Intake::Event(Box::new(Accepted {
        reply: accepted(&r.msg_id, Channel::Report, id),
        event: NewEvent { envelope, blobs },
    })))
}

fn sos_event(
    gateway_id: &str,
    terminal: &str,
    s: SosAlert,
    limits: &Limits,
) -> Result<Intake, String> {
    check_msg_id(&s.msg_id)?;
    let id = event_id(terminal, Channel::Sos, &s.msg_id, s.occurred_at);
    let envelope = EventEnvelope {
        v: PROTOCOL_VERSION,
        id,
        gateway_id: gateway_id.to_owned(),
        source: Source::PatrolTerminal {
            terminal_id: terminal.to_owned(),
        },
        kind: EventKind::Raised,
        episode: None,
        rule: SOS_RULE.into(),
        category: limits.sos_category.clone(),
        occurred_at: s.occurred_at,
        location: location(s.lat, s.lon, None, None),
        severity: Severity::High,
        description: Some(s.note.unwrap_or_else(|| format!("SOS from {terminal}"))),
        detection: None,
        evidence: Vec::new(),
    };
    envelope
        .validate("")
        .map_err(|e| format!("{}: {}", e.path.trim_start_matches('.'), e.message))?;
    Ok(Intake::Event(Box::new(Accepted {
        reply: accepted(&s.msg_id, Channel::Sos, id),
        event: NewEvent {
            envelope,
            blobs: Vec::new(),
        },
    })))
}

/// Decodes one base64 photo and checks that it is a JPEG within the size limit.
fn photo(b64: &str, max_bytes: usize) -> Result<Blob, (ErrorCode, String)> {
    // Refuse an oversized photo before decoding it.
    let decoded_len = b64.len() / 4 * 3;
    if decoded_len > max_bytes + 2 {
        return Err((
            ErrorCode::PhotoTooLarge,
            format!("about {decoded_len} bytes, the limit is {max_bytes}"),
        ));
    }
    let data = BASE64
        .decode(b64)
        .map_err(|e| (ErrorCode::PhotoNotJpeg, format!("not base64: {e}")))?;
    if data.len() > max_bytes {
        return Err((
            ErrorCode::PhotoTooLarge,
            format!("{} bytes, the limit is {max_bytes}", data.len()),
        ));
    }
    let not_jpeg = |why: String| (ErrorCode::PhotoNotJpeg, why);
    if !data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Err(not_jpeg("not a JPEG image".into()));
    }
    let reader =
        image::ImageReader::with_format(std::io::Cursor::new(&data), image::ImageFormat::Jpeg);
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| not_jpeg(format!("unreadable JPEG: {e}")))?;
    if w == 0 || h == 0 {
        return Err(not_jpeg("JPEG with no pixels".into()));
    }
    Ok(Blob::jpeg(data))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn limits() -> Limits {
        Limits {
            max_photos: 2,
            max_photo_bytes: 4096,
            max_message_bytes: 64 * 1024,
            sos_category: "event:0499".parse().unwrap(),
        }
    }

    fn tiny_jpeg() -> Vec<u8> {
        let img = image::RgbImage::from_pixel(8, 8, image::Rgb([200, 30, 30]));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut out)
            .encode_image(&img)
            .unwrap();
        out
    }

    fn report() -> serde_json::Value {
        json!({
            "v": 1,
            "msg_id": "m-1",
            "category": "component:0114",
            "description": "井盖破损 broken manhole cover",
            "lat": 30.27,
            "lon": 120.15,
            "grid": "G-001-03",
            "occurred_at": "2026-11-20T08:30:00Z",
            "photos": [BASE64.encode(tiny_jpeg())],
        })
    }

    fn read_json(topic: &str, v: &serde_json::Value) -> Result<Intake, Box<Refusal>> {
        read("gw-1", topic, &serde_json::to_vec(v).unwrap(), &limits())
    }

    fn refusal(topic: &str, v: &serde_json::Value) -> (ErrorCode, String) {
        let r = read_json(topic, v).unwrap_err();
        (r.code(), r.reply.error.unwrap().message)
    }

    #[test]
    fn a_report_becomes_an_event_with_its_photo() {
        let Intake::Event(a) = read_json("patrol/t-7/report", &report()).unwrap() else {
            panic!("a report is an event")
        };
        let Accepted { event, reply } = *a;
        let e = &event.envelope;
        assert_eq!(
            e.source,
            Source::PatrolTerminal {
                terminal_id: "t-7".into()
            }
        );
        assert_eq!(e.rule, REPORT_RULE);
        assert_eq!(e.category.to_string(), "component:0114");
        assert_eq!(e.severity, Severity::Medium);
        assert_eq!(e.location.grid.as_deref(), Some("G-001-03"));
        assert_eq!(event.blobs.len(), 1);
        assert_eq!(event.blobs[0].data, tiny_jpeg());
        assert_eq!(e.evidence[0].sha256, event.blobs[0].sha256);
        assert_eq!(e.evidence[0].kind, EvidenceKind::Photo);
        assert!(reply.ok);
        assert_eq!(reply.event_id, Some(e.id));
        assert_eq!(reply.msg_id.as_deref(), Some("m-1"));
        e.validate("").unwrap();
    }

    #[test]
    fn the_same_message_twice_is_the_same_event() {
        let id = |topic: &str, msg: &serde_json::Value| match read_json(topic, msg).unwrap() {
            Intake::Event(a) => a.event.envelope.id,
            other => panic!("{other:?}"),
        };
        let first = id("patrol/t-7/report", &report());
        assert_eq!(first, id("patrol/t-7/report", &report()));
        assert_eq!(first.get_version_num(), 7);
        let mut other = report();
        other["msg_id"] = json!("m-2");
        assert_ne!(first, id("patrol/t-7/report", &other));
        assert_ne!(first, id("patrol/t-8/report", &report()));
    }

    #[test]
    fn an_sos_is_a_high_risk_event_in_the_sos_category() {
        let sos = json!({"v": 1, "msg_id": "s-1", "lat": 30.0, "lon": 120.0,
                         "occurred_at": "2026-11-20T08:30:00Z"});
        let Intake::Event(a) = read_json("patrol/t-7/sos", &sos).unwrap() else {
            panic!("an SOS is an event")
        };
        let Accepted { event, reply } = *a;
        assert_eq!(event.envelope.rule, SOS_RULE);
        assert_eq!(event.envelope.severity, Severity::High);
        assert_eq!(event.envelope.category.to_string(), "event:0499");
        assert_eq!(reply.channel, "sos");
    }

    #[test]
    fn presence_and_track() {
        let status = json!({"v": 1, "state": "offline"});
        assert!(matches!(
            read_json("patrol/t-7/status", &status).unwrap(),
            Intake::Presence { presence: Presence::Offline, ref terminal_id } if terminal_id == "t-7"
        ));
        let track = json!({"v": 1, "msg_id": "l-1", "points": [
            {"lat": 30.0, "lon": 120.0, "at": "2026-11-20T08:30:00Z"},
            {"lat": 30.001, "lon": 120.0, "at": "2026-11-20T08:30:10Z", "accuracy_m": 5.0}]});
        let Intake::Track { points, .. } = read_json("patrol/t-7/location", &track).unwrap() else {
            panic!("a location update is a track")
        };
        assert_eq!(points.len(), 2);
    }

    #[test]
    fn every_bad_message_is_refused_with_its_reason() {
        let with = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut r = report();
            f(&mut r);
            r
        };
        let cases: Vec<(serde_json::Value, ErrorCode, &str)> = vec![
            (
                with(&|r| r["v"] = json!(2)),
                ErrorCode::UnsupportedVersion,
                "version 2",
            ),
            (
                with(&|r| {
                    r.as_object_mut().unwrap().remove("v");
                }),
                ErrorCode::UnsupportedVersion,
                "v: missing",
            ),
            (
                with(&|r| {
                    r.as_object_mut().unwrap().remove("lat");
                }),
                ErrorCode::InvalidField,
                "lat",
            ),
            (
                with(&|r| r["lat"] = json!(91.0)),
                ErrorCode::InvalidField,
                "lat",
            ),
            (
                with(&|r| r["lon"] = json!("east")),
                ErrorCode::InvalidField,
                "lon",
            ),
            (
                with(&|r| r["category"] = json!("manhole")),
                ErrorCode::InvalidField,
                "category",
            ),
            (
                with(&|r| r["msg_id"] = json!("has space")),
                ErrorCode::InvalidField,
                "msg_id",
            ),
            (
                with(&|r| r["description"] = json!("  ")),
                ErrorCode::InvalidField,
                "description",
            ),
            (
                with(&|r| r["extra"] = json!(1)),
                ErrorCode::InvalidField,
                "extra",
            ),
            (
                with(&|r| r["occurred_at"] = json!("yesterday")),
                ErrorCode::InvalidField,
                "occurred_at",
            ),
            (
                with(&|r| r["photos"] = json!(["!!!"])),
                ErrorCode::PhotoNotJpeg,
                "photos[0]: not base64",
            ),
            (
                with(&|r| r["photos"] = json!([BASE64.encode(b"GIF89a........")])),
                ErrorCode::PhotoNotJpeg,
                "photos[0]: not a JPEG",
            ),
            (
                with(&|r| r["photos"] = json!([BASE64.encode([0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3])])),
                ErrorCode::PhotoNotJpeg,
                "unreadable JPEG",
            ),
            (
                with(&|r| r["photos"] = json!([BASE64.encode(vec![0u8; 5000])])),
                ErrorCode::PhotoTooLarge,
                "photos[0]",
            ),
            (
                with(&|r| {
                    let p = BASE64.encode(tiny_jpeg());
                    r["photos"] = json!([p, p, p]);
                }),
                ErrorCode::TooManyPhotos,
                "3 photos",
            ),
        ];
        for (msg, code, needle) in cases {
            let (got, message) = refusal("patrol/t-7/report", &msg);
            assert_eq!(got, code, "{message}");
            assert!(
                message.contains(needle),
                "{message:?} should mention {needle:?}"
            );
        }
    }

    #[test]
    fn the_reply_quotes_the_msg_id_when_it_can_be_read() {
        let mut r = report();
        r["lat"] = json!(100.0);
        let refusal = read_json("patrol/t-7/report", &r).unwrap_err();
        assert_eq!(refusal.reply.msg_id.as_deref(), Some("m-1"));
        assert_eq!(refusal.terminal_id.as_deref(), Some("t-7"));
        assert!(!refusal.reply.ok);
    }

    #[test]
    fn not_json_too_large_and_bad_topics() {
        let r = read("gw-1", "patrol/t-7/report", b"\xff\xfe not json", &limits()).unwrap_err();
        assert_eq!(r.code(), ErrorCode::NotJson);
        let big = vec![b' '; 65 * 1024];
        let r = read("gw-1", "patrol/t-7/report", &big, &limits()).unwrap_err();
        assert_eq!(r.code(), ErrorCode::TooLarge);
        let r = read("gw-1", "elsewhere/t-7/report", b"{}", &limits()).unwrap_err();
        assert_eq!(r.terminal_id, None);
        let r = read("gw-1", "patrol/t-7/task", b"{}", &limits()).unwrap_err();
        assert!(r.reply.error.unwrap().message.contains("downlink"));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap fuzz: every prefix and many corruptions of a valid report.
        let good = serde_json::to_vec(&report()).unwrap();
        for end in 0..good.len() {
            let _ = read("gw-1", "patrol/t-7/report", &good[..end], &limits());
        }
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..2000 {
            let mut msg = good.clone();
            for _ in 0..4 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let i = (state as usize) % msg.len();
                msg[i] = (state >> 32) as u8;
            }
            for topic in [
                "patrol/t-7/report",
                "patrol/t-7/sos",
                "patrol/t-7/location",
                "patrol/t-7/status",
            ] {
                let _ = read("gw-1", topic, &msg, &limits());
            }
        }
    }
}
