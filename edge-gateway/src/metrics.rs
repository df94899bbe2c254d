//! Prometheus text exposition of the gateway's health: per-camera frame counters, drops,
//! reconnects and state, the outbox depth and the delivery counters. Pure: it renders a
//! snapshot the local API collects.

use std::fmt::Write;

use crate::health::CameraStatus;
use crate::patrol::terminals::Counters;
use protocol::gateway::CameraState;

/// What one scrape shows.
pub struct Snapshot<'a> {
    pub cameras: &'a [CameraStatus],
    pub outbox_pending: i64,
    pub outbox_oldest_age_s: f64,
    pub dead_letters: i64,
    pub events_created: u64,
    pub events_delivered: u64,
    pub events_rejected: u64,
    pub evicted_blobs: u64,
    pub evicted_events: u64,
    pub uplink_consecutive_failures: u64,
    pub uplink_retries: u64,
    /// Patrol intake counters and terminals online, when patrol terminals are served.
    pub patrol: Option<(&'a Counters, usize)>,
}

type CameraValue = fn(&CameraStatus) -> f64;

const CAMERA_METRICS: [(&str, &str, &str, CameraValue); 11] = [
    (
        "edge_camera_up",
        "gauge",
        "1 while the camera is streaming.",
        |c| f64::from(u8::from(c.state == CameraState::Streaming)),
    ),
    (
        "edge_camera_frames_received_total",
        "counter",
        "Encoded frames received from the camera.",
        |c| c.frames_received as f64,
    ),
    (
        "edge_camera_frames_decoded_total",
        "counter",
        "Frames decoded.",
        |c| c.frames_decoded as f64,
    ),
    (
        "edge_camera_frames_analysed_total",
        "counter",
        "Frames run through the detector.",
        |c| c.frames_analysed as f64,
    ),
    (
        "edge_camera_frames_dropped_total",
        "counter",
        "Frames due for analysis replaced by a newer one before the detector took them.",
        |c| c.frames_dropped as f64,
    ),
    (
        "edge_camera_frames_still_total",
        "counter",
        "Frames due for analysis skipped by motion gating (nothing moved).",
        |c| c.frames_still as f64,
    ),
    (
        "edge_camera_frames_late_total",
        "counter",
        "Frames whose analysis began more than 1 s after they were received.",
        |c| c.frames_late as f64,
    ),
    (
        "edge_camera_analysis_lag_seconds",
        "gauge",
        "From receipt to the start of analysis, for the last frame analysed.",
        |c| c.analysis_lag_ms.map_or(0.0, |ms| ms as f64 / 1e3),
    ),
    (
        "edge_camera_decode_errors_total",
        "counter",
        "Packets the decoder rejected.",
        |c| c.decode_errors as f64,
    ),
    (
        "edge_camera_reconnects_total",
        "counter",
        "Times the camera connection was reopened.",
        |c| c.reconnects as f64,
    ),
    (
        "edge_camera_events_total",
        "counter",
        "Events the camera's rules raised.",
        |c| c.events_raised as f64,
    ),
];

/// Renders `s` in the Prometheus text format (version 0.0.4).
pub fn render(s: &Snapshot<'_>) -> String {
    let mut out = String::new();
    for (name, kind, help, value) in CAMERA_METRICS {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for c in s.cameras {
            let _ = writeln!(out, "{name}{{camera=\"{}\"}} {}", escape(&c.id), value(c));
        }
    }
    let gateway = [
        (
            "edge_outbox_pending_events",
            "gauge",
            "Events waiting in the outbox for the hub.",
            s.outbox_pending as f64,
        ),
        (
            "edge_outbox_oldest_event_age_seconds",
            "gauge",
            "How long the oldest event waiting for the hub has waited (0: none waits).",
            s.outbox_oldest_age_s,
        ),
        (
            "edge_outbox_dead_letters",
            "gauge",
            "Events the hub refused for good, kept for inspection.",
            s.dead_letters as f64,
        ),
        (
            "edge_events_created_total",
            "counter",
            "Events stored in the outbox.",
            s.events_created as f64,
        ),
        (
            "edge_events_delivered_total",
            "counter",
            "Events the hub acknowledged.",
            s.events_delivered as f64,
        ),
        (
            "edge_events_rejected_total",
            "counter",
            "Events the hub refused.",
            s.events_rejected as f64,
        ),
        (
            "edge_outbox_evicted_blobs_total",
            "counter",
            "Evidence files the full outbox let go.",
            s.evicted_blobs as f64,
        ),
        (
            "edge_outbox_evicted_events_total",
            "counter",
            "Events the full outbox let go.",
            s.evicted_events as f64,
        ),
        (
            "edge_uplink_consecutive_failures",
            "gauge",
            "Failed deliveries since the last success.",
            s.uplink_consecutive_failures as f64,
        ),
        (
            "edge_uplink_retries_total",
            "counter",
            "Failed delivery attempts, each retried after a backoff.",
            s.uplink_retries as f64,
        ),
    ];
    write_samples(&mut out, &gateway);
    if let Some((c, online)) = s.patrol {
        let patrol = [
            (
                "edge_patrol_messages_total",
                "counter",
                "Messages received from patrol terminals.",
                c.received as f64,
            ),
            (
                "edge_patrol_events_total",
                "counter",
                "Patrol reports and SOS calls stored in the outbox.",
                c.events as f64,
            ),
            (
                "edge_patrol_terminals_online",
                "gauge",
                "Patrol terminals whose last presence is online.",
                online as f64,
            ),
        ];
        write_samples(&mut out, &patrol);
        let name = "edge_patrol_refused_total";
        let _ = writeln!(
            out,
            "# HELP {name} Patrol messages refused, by reason.\n# TYPE {name} counter"
        );
        for (code, n) in &c.refused {
            let _ = writeln!(out, "{name}{{code=\"{code}\"}} {n}");
        }
    }
    out
}

/// Unlabelled samples: (name, type, help, value) each.
fn write_samples(out: &mut String, samples: &[(&str, &str, &str, f64)]) {
    for (name, kind, help, value) in samples {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
}

/// Label values escape backslash, double quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_camera_and_the_gateway_counters() {
        let cams = [
            CameraStatus {
                id: "cam-1".into(),
                state: CameraState::Streaming,
                frames_analysed: 7,
                ..Default::default()
            },
            CameraStatus {
                id: "cam-\"2\"".into(),
                state: CameraState::Retrying,
                reconnects: 3,
                ..Default::default()
            },
        ];
        let text = render(&Snapshot {
            cameras: &cams,
            outbox_pending: 5,
            dead_letters: 0,
            events_created: 9,
            events_delivered: 4,
            events_rejected: 0,
            evicted_blobs: 0,
            evicted_events: 0,
            uplink_consecutive_failures: 2,
            uplink_retries: 9,
            outbox_oldest_age_s: 12.5,
            patrol: Some((
                &Counters {
                    received: 12,
                    events: 10,
                    refused: [("not_json", 2)].into(),
                    stray: 0,
                    replies_dropped: 0,
                },
                3,
            )),
        });
        for line in [
            "# TYPE edge_camera_up gauge",
            "edge_camera_up{camera=\"cam-1\"} 1",
            "edge_camera_up{camera=\"cam-\\\"2\\\"\"} 0",
            "edge_camera_frames_analysed_total{camera=\"cam-1\"} 7",
            "edge_camera_reconnects_total{camera=\"cam-\\\"2\\\"\"} 3",
            "edge_outbox_pending_events 5",
            "edge_events_delivered_total 4",
            "edge_uplink_consecutive_failures 2",
            "edge_uplink_retries_total 9",
            "edge_outbox_oldest_event_age_seconds 12.5",
            "edge_patrol_messages_total 12",
            "edge_patrol_terminals_online 3",
            "edge_patrol_refused_total{code=\"not_json\"} 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // Every sample line is `name{labels} value` or `name value`, with a number.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let value = l.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{l}");
        }
    }
}
