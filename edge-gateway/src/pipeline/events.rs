//! Building event envelopes from rule hits: the gateway's side of the wire format.

use protocol::{
    BoundingBox, DetectedObject, Detection as WireDetection, EventEnvelope, EventKind,
    EvidenceKind, PROTOCOL_VERSION, Source,
};
use uuid::Uuid;

use super::frames::Frame;
use super::rules::CrowdHit;
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

/// The event for a crowd seen by `camera` in `frame`.
pub fn crowd_event(
    gateway_id: &str,
    camera: &CameraConfig,
    model_id: &str,
    hit: &CrowdHit,
    frame: &Frame,
    snapshot: Option<Blob>,
) -> NewEvent {
    let (width, height) = (frame.width, frame.height);
    let count = hit.persons.len() as u32;
    let objects = hit
        .persons
        .iter()
        .map(|d| DetectedObject {
            class: "person".into(),
            score: d.score,
            bbox: wire_box(d, width, height),
        })
        .collect();
    let evidence = snapshot
        .iter()
        .map(|s| s.evidence(EvidenceKind::Snapshot))
        .collect();
    NewEvent {
        envelope: EventEnvelope {
            v: PROTOCOL_VERSION,
            id: Uuid::now_v7(),
            gateway_id: gateway_id.to_owned(),
            source: Source::Camera {
                camera_id: camera.id.clone(),
            },
            kind: EventKind::Raised,
            rule: "crowd".into(),
            category: hit.category.clone(),
            occurred_at: frame.captured_at,
            location: camera.location.clone(),
            severity: hit.severity,
            description: Some(format!("{count} persons seen by {}", camera.name)),
            detection: Some(WireDetection {
                model: model_id.to_owned(),
                objects,
                counts: [("person".to_owned(), count)].into(),
            }),
            evidence,
        },
        blobs: snapshot.into_iter().collect(),
    }
}
