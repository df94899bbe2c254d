//! The running cameras. Each camera is a tokio task (RTSP, `pipeline::camera`) and a decode
//! thread feeding its own slot of the `FrameSlots`; the detection thread learns of cameras
//! through `CameraChange`s. `Cameras::apply` takes a whole camera list and starts, stops or
//! replaces only the cameras that differ, so the others never miss a frame; a list it
//! cannot run (a rule with nothing to watch in its model, a model the gateway lacks) is
//! refused whole and the cameras running stay as they are.

use std::collections::HashMap;
use std::sync::mpsc::Sender;
use std::sync::{Arc, RwLock};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::CameraConfig;
use crate::detect::ModelManifest;
use crate::health::{CameraHealth, CameraStatus};
use crate::pipeline::clip::{ClipRing, SharedRing};
use crate::pipeline::decode::{DecodeSettings, Outlets};
use crate::pipeline::frames::FrameSlots;
use crate::pipeline::hazard::HazardRule;
use crate::pipeline::rules::PERSON;
use crate::pipeline::{camera, decode};

/// The models loaded, by name (`None`: the default model), in the detection thread's order.
#[derive(Debug, Clone, Default)]
pub struct Models {
    pub names: Vec<Option<String>>,
    pub manifests: Vec<ModelManifest>,
}

impl Models {
    fn index(&self, name: Option<&String>) -> Option<usize> {
        self.names.iter().position(|n| n.as_ref() == name)
    }
}

/// A camera as the detection thread analyses it.
pub struct CameraSlot {
    pub config: Arc<CameraConfig>,
    pub health: Arc<CameraHealth>,
    /// Its model's index in [`Models`].
    pub model: usize,
    /// Its hazard rule with the model's hazard classes.
    pub hazard: Option<HazardRule>,
    /// The recent stream its events' clips are cut from, if clips are on.
    pub clip: Option<SharedRing>,
}

/// What the detection thread is told: a camera started in a slot, or a slot emptied.
pub enum CameraChange {
    Start(usize, CameraSlot),
    Stop(usize),
}

/// The cameras running now, for the local API, the report to the hub and the liveness watch.
#[derive(Debug, Default)]
pub struct CameraBoard(RwLock<Vec<(Arc<CameraConfig>, Arc<CameraHealth>)>>);

impl CameraBoard {
    pub fn snapshot(&self) -> Vec<CameraStatus> {
        self.cameras().iter().map(|(_, h)| h.snapshot()).collect()
    }

    pub fn cameras(&self) -> Vec<(Arc<CameraConfig>, Arc<CameraHealth>)> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, cameras: Vec<(Arc<CameraConfig>, Arc<CameraHealth>)>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = cameras;
    }
}

/// What an apply changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub started: usize,
    pub replaced: usize,
    pub stopped: usize,
    pub unchanged: usize,
}

struct Running {
    config: Arc<CameraConfig>,
    slot: usize,
    health: Arc<CameraHealth>,
    stop: CancellationToken,
    task: JoinHandle<()>,
    decoder: std::thread::JoinHandle<()>,
}

pub struct Cameras {
    running: Vec<Running>,
    next_slot: usize,
    models: Models,
    slots: Arc<FrameSlots>,
    /// To the detection thread; `None` when no model is loaded (no cameras can run).
    changes: Option<Sender<CameraChange>>,
    board: Arc<CameraBoard>,
    /// Motion gating and hardware decoding for every camera (`[motion]`, `[decode]`).
    decode: DecodeSettings,
}

impl Cameras {
    pub fn new(
        models: Models,
        slots: Arc<FrameSlots>,
        changes: Option<Sender<CameraChange>>,
        board: Arc<CameraBoard>,
        decode: DecodeSettings,
    ) -> Self {
        Self {
            running: Vec::new(),
            next_slot: 0,
            models,
            slots,
            changes,
            board,
            decode,
        }
    }

    /// Each camera's model and hazard rule, or why the list cannot run.
    pub fn check(
        &self,
        cameras: &[CameraConfig],
    ) -> Result<Vec<(usize, Option<HazardRule>)>, String> {
        cameras
            .iter()
            .map(|camera| {
                let model = self.models.index(camera.model.as_ref()).ok_or_else(|| {
                    format!(
                        "camera {}: no model {} on this gateway",
                        camera.id,
                        camera.model.as_deref().unwrap_or("(default)")
                    )
                })?;
                let hazard = check_camera(camera, &self.models.manifests[model])?;
                Ok((model, hazard))
            })
            .collect()
    }

    /// Runs `cameras` from now on: starts the new ones, replaces those whose settings
    /// changed, stops those no longer listed and leaves the rest alone. All or nothing.
    pub async fn apply(&mut self, cameras: Vec<CameraConfig>) -> Result<Applied, String> {
        let checked = self.check(&cameras)?;
        if !cameras.is_empty() && self.changes.is_none() {
            return Err("no model is loaded, so no camera can run".into());
        }
        let mut applied = Applied::default();
        let mut old: HashMap<String, Running> = self
            .running
            .drain(..)
            .map(|r| (r.config.id.clone(), r))
            .collect();
        let mut next = Vec::with_capacity(cameras.len());
        for (camera, (model, hazard)) in cameras.into_iter().zip(checked) {
            match old.remove(&camera.id) {
                Some(running) if running.config.spec == camera.spec => {
                    applied.unchanged += 1;
                    next.push(running);
                }
                Some(running) => {
                    applied.replaced += 1;
                    self.stop(running).await;
                    next.push(self.start(camera, model, hazard));
                }
                None => {
                    applied.started += 1;
                    next.push(self.start(camera, model, hazard));
                }
            }
        }
        for running in old.into_values() {
            applied.stopped += 1;
            self.stop(running).await;
        }
        self.board.set(
            next.iter()
                .map(|r| (r.config.clone(), r.health.clone()))
                .collect(),
        );
        self.running = next;
        Ok(applied)
    }

    /// Stops every camera and waits for their tasks and decode threads.
    pub async fn stop_all(&mut self) {
        for running in std::mem::take(&mut self.running) {
            self.stop(running).await;
        }
        self.board.set(Vec::new());
    }

    fn start(&mut self, config: CameraConfig, model: usize, hazard: Option<HazardRule>) -> Running {
        let slot = self.next_slot;
        self.next_slot += 1;
        let config = Arc::new(config);
        let health = Arc::new(CameraHealth::new(&config.id, &config.name));
        let (packet_tx, packet_rx) = mpsc::channel(32);
        let clip = self.decode.clip.map(ClipRing::shared);
        let decoder = {
            let (slots, health, clip, id, interval, settings) = (
                self.slots.clone(),
                health.clone(),
                clip.clone(),
                config.id.clone(),
                config.detect_interval,
                self.decode.clone(),
            );
            std::thread::Builder::new()
                .name(format!("decode-{id}"))
                .spawn(move || {
                    let outlets = Outlets {
                        slots: &slots,
                        health: &health,
                        clip: clip.as_deref(),
                    };
                    decode::run(slot, &id, interval, settings, packet_rx, outlets)
                })
                .expect("starting a decode thread")
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn(camera::run(
            config.clone(),
            health.clone(),
            packet_tx,
            stop.clone(),
        ));
        if let Some(changes) = &self.changes {
            let slot_info = CameraSlot {
                config: config.clone(),
                health: health.clone(),
                model,
                hazard,
                clip,
            };
            // The detection thread gone means the gateway is stopping.
            let _ = changes.send(CameraChange::Start(slot, slot_info));
        }
        tracing::info!(camera = %config.id, slot, "camera started");
        Running {
            config,
            slot,
            health,
            stop,
            task,
            decoder,
        }
    }

    async fn stop(&self, running: Running) {
        running.stop.cancel();
        let _ = running.task.await;
        // The camera task dropped its sender: the decode thread ends with its current frame.
        let _ = tokio::task::spawn_blocking(move || running.decoder.join()).await;
        self.slots.forget(running.slot);
        if let Some(changes) = &self.changes {
            let _ = changes.send(CameraChange::Stop(running.slot));
        }
        tracing::info!(camera = %running.config.id, "camera stopped");
    }
}

/// A camera's hazard rule with its model's classes, or why its rules have nothing to
/// watch in that model: a hazard rule on a model without hazard classes, or a crowd rule on
/// a model whose class 0 is not the crowd rule's `person`.
pub fn check_camera(
    camera: &CameraConfig,
    manifest: &ModelManifest,
) -> Result<Option<HazardRule>, String> {
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
    camera
        .hazard
        .as_ref()
        .map(|h| HazardRule::new(h, manifest))
        .transpose()
        .map_err(|e| format!("camera {}: hazard: {e}", camera.id))
}
