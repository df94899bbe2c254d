//! Paths to the shared test data and the ONNX Runtime library; a sample event.

use std::path::PathBuf;

use chrono::Utc;
use edge_gateway::event::{Blob, NewEvent};
use protocol::{EventEnvelope, EventKind, EvidenceKind, Location, Severity, Source};
use uuid::Uuid;

pub use system_tests::{repo, shared};

/// The ONNX Runtime library, from `ORT_DYLIB_PATH` (the test command sets it).
pub fn onnxruntime() -> PathBuf {
    PathBuf::from(std::env::var_os("ORT_DYLIB_PATH").expect(
        "ORT_DYLIB_PATH must point at libonnxruntime.so; run the tests with scripts/test.sh",
    ))
}

/// Decodes a JPEG into tightly packed BGR.
pub fn load_bgr(name: &str) -> (Vec<u8>, u32, u32) {
    edge_gateway::detect::load_bgr(&shared().join("testdata").join(name)).unwrap()
}

/// A crowd raised by camera `cam` of gateway `gw`, citing `evidence` and carrying its blobs.
pub fn crowd_event(severity: Severity, evidence: Vec<(EvidenceKind, Blob)>) -> NewEvent {
    NewEvent {
        envelope: EventEnvelope {
            v: 1,
            id: Uuid::now_v7(),
            gateway_id: "gw".into(),
            source: Source::Camera {
                camera_id: "cam".into(),
            },
            kind: EventKind::Raised,
            episode: None,
            rule: "crowd".into(),
            category: "event:0407".parse().unwrap(),
            occurred_at: Utc::now(),
            location: Location {
                lat: 1.0,
                lon: 2.0,
                area_code: None,
                grid: None,
            },
            severity,
            description: None,
            detection: None,
            evidence: evidence.iter().map(|(k, b)| b.evidence(*k)).collect(),
        },
        blobs: evidence.into_iter().map(|(_, b)| b).collect(),
    }
}
