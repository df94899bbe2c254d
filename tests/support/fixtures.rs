//! Wire documents as a gateway named `gw-test` sends them, for hub tests and benchmarks.

use serde_json::{Value, json};

/// A valid crowd event of `category` from camera `cam-1`, with a fresh UUIDv7.
pub fn event(category: &str) -> Value {
    json!({
        "v": 1,
        "id": uuid::Uuid::now_v7(),
        "gateway_id": "gw-test",
        "source": {"type": "camera", "camera_id": "cam-1"},
        "rule": "crowd",
        "category": category,
        "occurred_at": "2026-11-22T08:00:00Z",
        "location": {"lat": 30.27, "lon": 120.15, "area_code": "330106001001"},
        "severity": "medium",
        "detection": {
            "model": "yolox-nano-coco@0.1.1rc0",
            "objects": [{"class": "person", "score": 0.8, "bbox": {"x": 0.1, "y": 0.1, "w": 0.2, "h": 0.5}}],
            "counts": {"person": 1}
        },
        "evidence": []
    })
}

/// An uplink batch of `events` from `gw-test`.
pub fn batch(events: Vec<Value>) -> Value {
    json!({"v": 1, "gateway_id": "gw-test", "events": events})
}
