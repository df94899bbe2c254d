//! The detection thread: takes the newest frame of each camera, runs the model, applies the
//! camera's rules and hands events (never dropped) to the outbox writer.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::events::crowd_event;
use super::frames::FrameSlots;
use super::rules::CrowdState;
use super::snapshot;
use crate::config::CameraConfig;
use crate::detect::Detector;
use crate::event::NewEvent;
use crate::health::CameraHealth;

pub struct Analysis {
    pub gateway_id: String,
    pub cameras: Vec<Arc<CameraConfig>>,
    pub health: Vec<Arc<CameraHealth>>,
    pub detector: Detector,
}

impl Analysis {
    /// Runs until `slots` is closed or the outbox writer is gone.
    pub fn run(mut self, slots: &FrameSlots, events: mpsc::Sender<NewEvent>) {
        let model_id = self.detector.manifest().id();
        let mut crowd: Vec<CrowdState> =
            self.cameras.iter().map(|_| CrowdState::default()).collect();
        while let Some(frames) = slots.take(Duration::from_secs(1)) {
            for frame in frames {
                let camera = &self.cameras[frame.camera];
                let health = &self.health[frame.camera];
                let detections = match self.detector.detect(&frame.bgr, frame.width, frame.height) {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::error!(camera = %camera.id, error = %e, "detection failed");
                        health.update(|h| h.last_error = Some(format!("detection failed: {e}")));
                        continue;
                    }
                };
                health.update(|h| h.frames_analysed += 1);
                let Some(rule) = &camera.crowd else { continue };
                let Some(hit) = rule.step(
                    &mut crowd[frame.camera],
                    &detections,
                    frame.width,
                    frame.height,
                    frame.captured_at,
                ) else {
                    continue;
                };
                let snap = snapshot::render(&frame.bgr, frame.width, frame.height, &hit.persons)
                    .inspect_err(|e| tracing::warn!(camera = %camera.id, error = %e, "snapshot failed; sending the event without it"))
                    .ok();
                let event = crowd_event(&self.gateway_id, camera, &model_id, &hit, &frame, snap);
                tracing::info!(camera = %camera.id, persons = hit.persons.len(), severity = ?hit.severity, event = %event.envelope.id, "crowd detected");
                health.update(|h| {
                    h.events_raised += 1;
                    h.last_event_at = Some(event.envelope.occurred_at);
                });
                // Events are never dropped: wait for the outbox writer.
                if events.blocking_send(event).is_err() {
                    return;
                }
            }
        }
    }
}
