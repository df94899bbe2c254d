//! The detection thread: takes the newest frame of each camera, runs the camera's model,
//! applies the camera's rules and hands events (never dropped) to the outbox writer; it also
//! looks into the hub's re-inspection requests with the cameras' hazard rules.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use protocol::gateway::{Reinspection, ReinspectionOutcome, ReinspectionResult};
use tokio::sync::mpsc;

use super::events::{crowd_event, hazard_event};
use super::frames::{Frame, FrameSlots};
use super::hazard::{HazardRule, HazardState};
use super::reinspect::{Finding, Inspection};
use super::rules::{CrowdState, PERSON};
use super::snapshot;
use crate::config::CameraConfig;
use crate::detect::{Detection, Detector};
use crate::event::{Blob, NewEvent};
use crate::health::CameraHealth;
use crate::reinspection::{Answer, Desk};

/// How long a camera may take to deliver the frames a re-inspection needs.
const REINSPECTION_LIMIT: Duration = Duration::from_secs(120);

pub struct Analysis {
    gateway_id: String,
    cameras: Vec<Arc<CameraConfig>>,
    health: Vec<Arc<CameraHealth>>,
    detectors: Vec<Detector>,
    /// The index in `detectors` of each camera's model.
    camera_model: Vec<usize>,
    /// Each camera's hazard rule, with its model's hazard classes.
    hazards: Vec<Option<HazardRule>>,
    /// Re-inspections asked by the hub, and the answers.
    desk: Arc<Desk>,
}

impl Analysis {
    /// Fails when a camera's rule has nothing to watch in its model: a hazard rule on a
    /// model without hazard classes, or a crowd rule on a model whose class 0 is not the
    /// crowd rule's `person`.
    pub fn new(
        gateway_id: String,
        cameras: Vec<Arc<CameraConfig>>,
        health: Vec<Arc<CameraHealth>>,
        detectors: Vec<Detector>,
        camera_model: Vec<usize>,
        desk: Arc<Desk>,
    ) -> Result<Self, String> {
        for (camera, &m) in cameras.iter().zip(&camera_model) {
            let manifest = detectors[m].manifest();
            let counts_people = manifest
                .events
                .iter()
                .any(|(label, e)| e.rule == "crowd" && manifest.class_index(label) == Some(PERSON));
            if camera.crowd.is_some() && !counts_people {
                return Err(format!(
                    "camera {}: crowd: the model {} has no person class for the crowd rule \
                     (class 0 with rule = \"crowd\" in its manifest)",
                    camera.id,
                    manifest.id()
                ));
            }
        }
        let hazards = cameras
            .iter()
            .zip(&camera_model)
            .map(|(camera, &m)| {
                camera
                    .hazard
                    .as_ref()
                    .map(|h| HazardRule::new(h, detectors[m].manifest()))
                    .transpose()
                    .map_err(|e| format!("camera {}: hazard: {e}", camera.id))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            gateway_id,
            cameras,
            health,
            detectors,
            camera_model,
            hazards,
            desk,
        })
    }

    /// Runs until `slots` is closed or the outbox writer is gone.
    pub fn run(mut self, slots: &FrameSlots, events: mpsc::Sender<NewEvent>) {
        let model_ids: Vec<String> = self.detectors.iter().map(|d| d.manifest().id()).collect();
        let mut crowd: Vec<CrowdState> =
            self.cameras.iter().map(|_| CrowdState::default()).collect();
        let mut hazard: Vec<HazardState> = self
            .cameras
            .iter()
            .map(|_| HazardState::default())
            .collect();
        let mut inspections: Vec<Vec<Inspection>> =
            self.cameras.iter().map(|_| Vec::new()).collect();
        while let Some(frames) = slots.take(Duration::from_secs(1)) {
            for request in self.desk.take_incoming() {
                self.take_up(request, &mut inspections);
            }
            self.expire(&mut inspections);
            for frame in frames {
                let i = frame.camera;
                let camera = &self.cameras[i];
                let health = &self.health[i];
                let model = self.camera_model[i];
                let detected = self.detectors[model].detect(&frame.bgr, frame.width, frame.height);
                let detections = match detected {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::error!(camera = %camera.id, error = %e, "detection failed");
                        health.update(|h| h.last_error = Some(format!("detection failed: {e}")));
                        continue;
                    }
                };
                health.update(|h| h.frames_analysed += 1);
                let (w, h, at) = (frame.width, frame.height, frame.captured_at);
                if let Some(rule) = &self.hazards[i] {
                    inspections[i].retain_mut(|inspection| {
                        let Some(finding) = inspection.step(rule, &detections, w, h) else {
                            return true;
                        };
                        let snap = snapshot_of(camera, &frame, finding.best.as_slice());
                        self.desk.answer(found(&inspection.request, &finding, snap));
                        false
                    });
                }
                let mut raised = Vec::new();
                if let Some(rule) = &camera.crowd
                    && let Some(hit) = rule.step(&mut crowd[i], &detections, w, h, at)
                {
                    let snap = snapshot_of(camera, &frame, &hit.persons);
                    let event = crowd_event(
                        &self.gateway_id,
                        camera,
                        &model_ids[model],
                        &hit,
                        &frame,
                        snap,
                    );
                    tracing::info!(camera = %camera.id, persons = hit.persons.len(), severity = ?hit.severity, event = %event.envelope.id, "crowd detected");
                    raised.push(event);
                }
                if let Some(rule) = &self.hazards[i] {
                    for hit in rule.step(&mut hazard[i], &detections, w, h, at) {
                        let snap = snapshot_of(camera, &frame, &[hit.best]);
                        let event = hazard_event(
                            &self.gateway_id,
                            camera,
                            &model_ids[model],
                            &hit,
                            &frame,
                            snap,
                        );
                        tracing::info!(camera = %camera.id, class = %hit.class.label, score = hit.best.score, event = %event.envelope.id, "hazard detected");
                        raised.push(event);
                    }
                }
                for event in raised {
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
}

impl Analysis {
    /// Starts looking into `request` on its camera, or answers at once why it cannot.
    fn take_up(&self, request: Reinspection, inspections: &mut [Vec<Inspection>]) {
        let Some(i) = self.cameras.iter().position(|c| c.id == request.camera_id) else {
            let note = format!("no camera {} on this gateway", request.camera_id);
            self.desk.answer(not_checked(&request, 0, note));
            return;
        };
        match Inspection::new(&request, self.hazards[i].as_ref(), Utc::now()) {
            Ok(inspection) => inspections[i].push(inspection),
            Err(note) => self.desk.answer(not_checked(&request, 0, note)),
        }
    }

    /// Answers the inspections whose cameras have not delivered their frames in time.
    fn expire(&self, inspections: &mut [Vec<Inspection>]) {
        let now = Utc::now();
        for open in inspections {
            open.retain(
                |inspection| match inspection.expired(now, REINSPECTION_LIMIT) {
                    Some(note) => {
                        let frames = inspection.frames();
                        self.desk
                            .answer(not_checked(&inspection.request, frames, note));
                        false
                    }
                    None => true,
                },
            );
        }
    }
}

fn found(request: &Reinspection, finding: &Finding, snapshot: Option<Blob>) -> Answer {
    Answer {
        result: ReinspectionResult {
            id: request.id,
            outcome: finding.outcome,
            checked_at: Utc::now(),
            frames: finding.frames,
            score: finding.best.map(|b| b.score),
            snapshot: snapshot.as_ref().map(|b| b.sha256.clone()),
            note: None,
        },
        snapshot,
    }
}

fn not_checked(request: &Reinspection, frames: u32, note: String) -> Answer {
    Answer {
        result: ReinspectionResult {
            id: request.id,
            outcome: ReinspectionOutcome::NotChecked,
            checked_at: Utc::now(),
            frames,
            score: None,
            snapshot: None,
            note: Some(note),
        },
        snapshot: None,
    }
}

/// The frame as JPEG evidence with `boxes` drawn; an encoding failure costs the snapshot,
/// never the event.
fn snapshot_of(camera: &CameraConfig, frame: &Frame, boxes: &[Detection]) -> Option<Blob> {
    snapshot::render(&frame.bgr, frame.width, frame.height, boxes)
        .inspect_err(|e| tracing::warn!(camera = %camera.id, error = %e, "snapshot failed; sending the event without it"))
        .ok()
}
