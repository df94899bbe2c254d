//! Building event envelopes from rule hits: the gateway's side of the wire format.

use chrono::{DateTime, Utc};
use protocol::{
    BoundingBox, DetectedObject, Detection as WireDetection, EventEnvelope, EvidenceKind,
    PROTOCOL_VERSION, Source,
};
use uuid::Uuid;

use super::episode::{Phase, Report};
use super::hazard::HazardHit;
use super::rules::CrowdHit;
use super::track::Tracked;
use crate::config::CameraConfig;
use crate::detect::Detection;
use crate::event::{Blob, NewEvent};

fn wire_box(d: &Detection, width: u32, height: u32) -> BoundingBox {
    let (w, h) = (width as f32, height as f32);
    BoundingBox {
        x: (d.x1 / w).clamp(0.0, 1.0),
        y: (d.y1 / h).clamp(0.0, 1.0),
        w: ((d.x2 - d.x1) / w).clamp(0.0, 1.0),
        h: ((d.y2 - d.y1) / h).clamp(0.0, 1.0),
    }
}

/// What a rule saw, as the event states it.
struct Seen<'a> {
    report: Report,
    rule: &'a str,
    category: &'a protocol::CategoryCode,
    severity: protocol::Severity,
    description: String,
    label: &'a str,
    boxes: &'a [Detection],
}

/// Where an event was seen: by which gateway, camera and model, when, in a frame of which
/// size, with the frame's tracked objects.
#[derive(Clone, Copy)]
pub struct Sighting<'a> {
    pub gateway_id: &'a str,
    pub camera: &'a CameraConfig,
    pub model_id: &'a str,
    pub at: DateTime<Utc>,
    pub width: u32,
    pub height: u32,
    pub tracks: &'a [Tracked],
}

/// What an event carries besides its description: the frame with the boxes drawn and, for
/// an episode's start, the clip of the seconds before.
#[derive(Debug, Default)]
pub struct Evidence {
    pub snapshot: Option<Blob>,
    pub clip: Option<Blob>,
}

/// The event for a crowd.
pub fn crowd_event(at: &Sighting, hit: &CrowdHit, evidence: Evidence) -> NewEvent {
    let (name, count, peak) = (&at.camera.name, hit.persons.len(), hit.peak);
    let description = match hit.report.phase {
        Phase::Start => format!("crowd of {count} persons seen by {name}"),
        Phase::Update => format!("crowd seen by {name} grew to {count} persons"),
        Phase::End => format!("crowd seen by {name} dispersed ({count} left, at most {peak})"),
    };
    let seen = Seen {
        report: hit.report,
        rule: "crowd",
        category: &hit.category,
        severity: hit.severity,
        description,
        label: "person",
        boxes: &hit.persons,
    };
    camera_event(at, seen, evidence)
}

/// The event for a hazard (a broken or missing cover).
pub fn hazard_event(at: &Sighting, hit: &HazardHit, evidence: Evidence) -> NewEvent {
    let (label, name) = (&hit.class.label, &at.camera.name);
    let description = match (hit.report.phase, hit.best) {
        (Phase::End, _) | (_, None) => format!("{label} no longer seen by {name}"),
        (Phase::Start, Some(b)) => format!("{label} seen by {name} (score {:.2})", b.score),
        (Phase::Update, Some(b)) => {
            format!("{label} seen again by {name} (score {:.2})", b.score)
        }
    };
    let seen = Seen {
        report: hit.report,
        rule: "hazard",
        category: &hit.class.category,
        severity: hit.class.severity,
        description,
        label,
        boxes: hit.best.as_slice(),
    };
    camera_event(at, seen, evidence)
}

fn camera_event(at: &Sighting, seen: Seen, evidence: Evidence) -> NewEvent {
    let Sighting {
        gateway_id,
        camera,
        model_id,
        at,
        width,
        height,
        tracks,
    } = *at;
    let objects = seen
        .boxes
        .iter()
        .map(|d| DetectedObject {
            class: seen.label.to_owned(),
            score: d.score,
            bbox: wire_box(d, width, height),
            track_id: tracks.iter().find(|t| t.detection == *d).map(|t| t.id),
        })
        .collect();
    let Evidence { snapshot, clip } = evidence;
    let blobs: Vec<(EvidenceKind, Blob)> = [
        snapshot.map(|s| (EvidenceKind::Snapshot, s)),
        clip.map(|c| (EvidenceKind::Clip, c)),
    ]
    .into_iter()
    .flatten()
    .collect();
    NewEvent {
        envelope: EventEnvelope {
            v: PROTOCOL_VERSION,
            // The start's id is its episode's, so the hub can tell which event began it.
            id: match seen.report.phase {
                Phase::Start => seen.report.episode.id,
                Phase::Update | Phase::End => Uuid::now_v7(),
            },
            gateway_id: gateway_id.to_owned(),
            source: Source::Camera {
                camera_id: camera.id.clone(),
            },
            kind: seen.report.phase.kind(),
            episode: Some(seen.report.episode),
            rule: seen.rule.into(),
            category: seen.category.clone(),
            occurred_at: at,
            location: camera.location.clone(),
            severity: seen.severity,
            description: Some(seen.description),
            detection: Some(WireDetection {
                model: model_id.to_owned(),
                objects,
                counts: [(seen.label.to_owned(), seen.boxes.len() as u32)].into(),
            }),
            evidence: blobs.iter().map(|(kind, b)| b.evidence(*kind)).collect(),
        },
        blobs: blobs.into_iter().map(|(_, b)| b).collect(),
    }
}
