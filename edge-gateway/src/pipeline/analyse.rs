//! The detection thread: takes the newest frame of each camera, runs the camera's model,
//! applies the camera's rules (`super::watch`, also to the frames skipped as still) and
//! hands events (never dropped) to the outbox writer; it also looks into the hub's
//! re-inspection requests with the cameras' hazard rules.

use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use chrono::{DateTime, Utc};
use protocol::gateway::{Reinspection, ReinspectionOutcome, ReinspectionResult};
use tokio::sync::mpsc;

use super::clip;
use super::episode::Phase;
use super::events::{Evidence, Sighting, crowd_event, hazard_event};
use super::frames::{Due, Frame, FrameSlots};
use super::reinspect::{Finding, Inspection};
use super::snapshot;
use super::watch::{Rules, Step, Watch};
use crate::cameras::{CameraChange, CameraSlot};
use crate::config::CameraConfig;
use crate::detect::{Detection, Detector, Picture};
use crate::event::{Blob, NewEvent};
use crate::health::LATE;
use crate::reinspection::{Answer, Desk};

/// How long a camera may take to deliver the frames a re-inspection needs.
const REINSPECTION_LIMIT: Duration = Duration::from_secs(120);

pub struct Analysis {
    gateway_id: String,
    detectors: Vec<Detector>,
    /// The running cameras by slot (see `crate::cameras`); `None` once stopped.
    cameras: Vec<Option<Live>>,
    changes: Receiver<CameraChange>,
    /// Re-inspections asked by the hub, and the answers.
    desk: Arc<Desk>,
}

/// A running camera with its rules' state.
struct Live {
    camera: CameraSlot,
    watch: Watch,
    inspections: Vec<Inspection>,
}

impl Analysis {
    /// The detection thread's state; cameras arrive through `changes`.
    pub fn new(
        gateway_id: String,
        detectors: Vec<Detector>,
        changes: Receiver<CameraChange>,
        desk: Arc<Desk>,
    ) -> Self {
        Self {
            gateway_id,
            detectors,
            cameras: Vec::new(),
            changes,
            desk,
        }
    }

    /// Takes up cameras started and stopped since the last frame.
    fn follow_changes(&mut self) {
        for change in self.changes.try_iter() {
            match change {
                CameraChange::Start(slot, camera) => {
                    if self.cameras.len() <= slot {
                        self.cameras.resize_with(slot + 1, || None);
                    }
                    self.cameras[slot] = Some(Live {
                        camera,
                        watch: Watch::default(),
                        inspections: Vec::new(),
                    });
                }
                CameraChange::Stop(slot) => {
                    if let Some(live) = self.cameras.get_mut(slot).and_then(Option::take) {
                        for inspection in live.inspections {
                            let note = format!("camera {} was stopped", live.camera.config.id);
                            self.desk.answer(not_checked(
                                &inspection.request,
                                inspection.frames(),
                                note,
                            ));
                        }
                    }
                }
            }
        }
    }

    /// Runs until `slots` is closed or the outbox writer is gone.
    pub fn run(mut self, slots: &FrameSlots, events: mpsc::Sender<NewEvent>) {
        let model_ids: Vec<String> = self.detectors.iter().map(|d| d.manifest().id()).collect();
        while let Some(offers) = slots.take(Duration::from_secs(1)) {
            self.follow_changes();
            for request in self.desk.take_incoming() {
                self.take_up(request);
            }
            self.expire();
            let detected = self.detect_all(&offers);
            for (due, detected) in offers.into_iter().zip(detected) {
                let Some(Some(live)) = self.cameras.get_mut(due.camera()) else {
                    continue;
                };
                let (camera, model) = (&live.camera.config, live.camera.model);
                let rules = Rules {
                    crowd: camera.crowd.as_ref(),
                    hazard: live.camera.hazard.as_ref(),
                };
                let step = match due {
                    Due::Frame(frame) => {
                        let health = &live.camera.health;
                        let Some(detections) = detected else {
                            continue;
                        };
                        let lag = (Utc::now() - frame.captured_at)
                            .to_std()
                            .unwrap_or_default();
                        health.update(|h| {
                            h.frames_analysed += 1;
                            h.analysis_lag_ms = Some(lag.as_millis() as u64);
                            h.frames_late += u64::from(lag > LATE);
                        });
                        let step = live.watch.analysed(rules, frame, detections);
                        if let Some(rule) = rules.hazard {
                            live.inspections.retain_mut(|inspection| {
                                let (w, h) = (step.width, step.height);
                                let Some(finding) = inspection.step(rule, step.detections, w, h)
                                else {
                                    return true;
                                };
                                let snap = snapshot_of(camera, &step, finding.best.as_slice());
                                self.desk.answer(found(&inspection.request, &finding, snap));
                                false
                            });
                        }
                        step
                    }
                    Due::Still { captured_at, .. } => match live.watch.still(rules, captured_at) {
                        Some(step) => step,
                        None => continue,
                    },
                };
                let sighting = Sighting {
                    gateway_id: &self.gateway_id,
                    camera,
                    model_id: &model_ids[model],
                    at: step.at,
                    width: step.width,
                    height: step.height,
                    tracks: &step.tracks,
                };
                let mut raised = Vec::new();
                if let Some(hit) = &step.crowd {
                    let evidence = Evidence {
                        snapshot: snapshot_of(camera, &step, &hit.persons),
                        clip: clip_of(&live.camera, hit.report.phase, step.at),
                    };
                    let event = crowd_event(&sighting, hit, evidence);
                    tracing::info!(camera = %camera.id, phase = ?hit.report.phase, persons = hit.persons.len(), severity = ?hit.severity, event = %event.envelope.id, episode = %hit.report.episode.id, "crowd");
                    raised.push(event);
                }
                for hit in &step.hazard {
                    let evidence = Evidence {
                        snapshot: snapshot_of(camera, &step, hit.best.as_slice()),
                        clip: clip_of(&live.camera, hit.report.phase, step.at),
                    };
                    let event = hazard_event(&sighting, hit, evidence);
                    tracing::info!(camera = %camera.id, phase = ?hit.report.phase, class = %hit.class.label, score = hit.best.map(|b| b.score), event = %event.envelope.id, episode = %hit.report.episode.id, "hazard");
                    raised.push(event);
                }
                for event in raised {
                    live.camera.health.update(|h| {
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
    /// The detections in each frame offered, in order: each model runs on its cameras'
    /// frames (tiled where a camera says so) at once, so a model with a free batch
    /// dimension analyses several in one inference. `None` for still notices, frames of
    /// stopped cameras and failed detections (logged and put on the camera's health).
    fn detect_all(&mut self, offers: &[Due]) -> Vec<Option<Vec<Detection>>> {
        let mut found: Vec<Option<Vec<Detection>>> = offers.iter().map(|_| None).collect();
        for (model, detector) in self.detectors.iter_mut().enumerate() {
            let frames: Vec<(usize, &CameraSlot, &Frame)> = offers
                .iter()
                .enumerate()
                .filter_map(|(n, due)| {
                    let Due::Frame(frame) = due else { return None };
                    let live = self.cameras.get(frame.camera)?.as_ref()?;
                    (live.camera.model == model).then_some((n, &live.camera, frame))
                })
                .collect();
            if frames.is_empty() {
                continue;
            }
            let pictures: Vec<Picture> = frames
                .iter()
                .map(|(_, camera, frame)| Picture {
                    bgr: &frame.bgr,
                    width: frame.width,
                    height: frame.height,
                    tiling: camera.config.tiling.as_ref(),
                })
                .collect();
            let results = detector.detect_many(&pictures);
            for ((n, camera, _), result) in frames.iter().zip(results) {
                match result {
                    Ok(detections) => found[*n] = Some(detections),
                    Err(e) => {
                        tracing::error!(camera = %camera.config.id, error = %e, "detection failed");
                        camera
                            .health
                            .update(|h| h.last_error = Some(format!("detection failed: {e}")));
                    }
                }
            }
        }
        found
    }

    /// Starts looking into `request` on its camera, or answers at once why it cannot.
    fn take_up(&mut self, request: Reinspection) {
        let live = self
            .cameras
            .iter_mut()
            .flatten()
            .find(|live| live.camera.config.id == request.camera_id);
        let Some(live) = live else {
            let note = format!("no camera {} on this gateway", request.camera_id);
            self.desk.answer(not_checked(&request, 0, note));
            return;
        };
        match Inspection::new(&request, live.camera.hazard.as_ref(), Utc::now()) {
            Ok(inspection) => live.inspections.push(inspection),
            Err(note) => self.desk.answer(not_checked(&request, 0, note)),
        }
    }

    /// Answers the inspections whose cameras have not delivered their frames in time.
    fn expire(&mut self) {
        let now = Utc::now();
        for live in self.cameras.iter_mut().flatten() {
            live.inspections.retain(|inspection| {
                match inspection.expired(now, REINSPECTION_LIMIT) {
                    Some(note) => {
                        let frames = inspection.frames();
                        self.desk
                            .answer(not_checked(&inspection.request, frames, note));
                        false
                    }
                    None => true,
                }
            });
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
fn snapshot_of(camera: &CameraConfig, step: &Step, boxes: &[Detection]) -> Option<Blob> {
    let frame = step.frame?;
    snapshot::render(&frame.bgr, frame.width, frame.height, boxes)
        .inspect_err(|e| tracing::warn!(camera = %camera.id, error = %e, "snapshot failed; sending the event without it"))
        .ok()
}

/// For an episode's start, the clip of the camera's stream up to `until`, if the camera
/// keeps one; a failure costs the clip, never the event.
fn clip_of(camera: &CameraSlot, phase: Phase, until: DateTime<Utc>) -> Option<Blob> {
    if phase != Phase::Start {
        return None;
    }
    let ring = camera.clip.as_ref()?;
    let recording = ring
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .recording(until)?;
    clip::mp4(&recording)
        .map(Blob::mp4)
        .inspect_err(|e| tracing::warn!(camera = %camera.config.id, error = %e, "clip failed; sending the event without it"))
        .ok()
}
