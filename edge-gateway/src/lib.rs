//! The township edge gateway: RTSP cameras → decode → detect → rules → events, and patrol
//! terminals over MQTT → events; both into the durable outbox → uplink to the hub.
//! `run` wires the stages; each module is one stage.
//!
//! Threads and tasks: one async task per camera (network) and one decode thread per camera,
//! started and stopped by `cameras` (from the settings, or the hub's registry through
//! `config_sync`); one detection thread for all cameras; the liveness watch
//! (`camera_watch`); one outbox writer, the patrol intake (`patrol`), one uplink task, the
//! periodic report to the hub (`hub_report`) and the local API (`api`, with the on-site
//! `tools`).
//! Frames are perishable between decode and detection; events are never dropped after
//! that.

pub mod api;
pub mod camera_watch;
pub mod cameras;
pub mod config;
pub mod config_sync;
pub mod detect;
pub mod event;
pub mod health;
pub mod hub_report;
pub mod metrics;
pub mod onvif;
pub mod outbox;
pub mod patrol;
pub mod pipeline;
pub mod probe;
pub mod reinspection;
pub mod rtsp;
pub mod storage;
pub mod tools;
pub mod uplink;

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use cameras::{CameraBoard, Cameras, Models};
pub use config::{Config, RawConfig};
use config_sync::{ConfigStatus, ConfigSync};
use detect::{Detector, ModelManifest};
use event::NewEvent;
use health::GatewayStats;
use outbox::Outbox;
use pipeline::analyse::Analysis;
use pipeline::frames::FrameSlots;

/// Loads each model the cameras use (from a cache folder, or fetched) into ONNX Runtime,
/// once; with `all`, every model the settings name (cameras may come later).
async fn load_detectors(config: &Config, all: bool) -> anyhow::Result<(Vec<Detector>, Models)> {
    let mut names: Vec<Option<String>> = Vec::new();
    let wanted = config.cameras.iter().map(|c| c.model.clone()).chain(
        all.then(|| std::iter::once(None).chain(config.models.keys().cloned().map(Some)))
            .into_iter()
            .flatten(),
    );
    for name in wanted {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let mut models = Vec::new();
    for name in &names {
        let path = name
            .as_ref()
            .map_or(&config.model_manifest, |n| &config.models[n]);
        let manifest = ModelManifest::load(path)?;
        let file = manifest
            .resolve(&config.model_search, &config.model_cache)
            .await?;
        models.push((manifest, file));
    }
    let manifests = models.iter().map(|(m, _)| m.clone()).collect();
    let onnxruntime = config.onnxruntime.clone();
    let threads = config.intra_threads;
    let detectors = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Detector>> {
        let env = detect::init_runtime(onnxruntime.as_deref(), threads)?;
        models
            .into_iter()
            .map(|(manifest, file)| {
                let id = manifest.id();
                let d = Detector::new(&env, &file, manifest)?;
                tracing::info!(model = %id, "model loaded");
                Ok(d)
            })
            .collect()
    })
    .await??;
    Ok((detectors, Models { names, manifests }))
}

/// Runs the gateway until `shutdown` is cancelled, then stops the stages in flow order so
/// every event already made reaches the outbox.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    ffmpeg_next::init().context("initialising FFmpeg")?;
    ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Error);

    let outbox = Outbox::open(&config.data_dir.join("outbox.db"))
        .await
        .with_context(|| format!("opening the outbox in {}", config.data_dir.display()))?;
    // A gateway for patrol terminals only needs neither a model nor ONNX Runtime; one whose
    // cameras come from the hub loads every model its settings name.
    let (detectors, models) = if config.camera_registry {
        load_detectors(&config, true).await?
    } else if config.cameras.is_empty() {
        tracing::info!("no cameras configured: no model is loaded");
        (Vec::new(), Models::default())
    } else {
        load_detectors(&config, false).await?
    };
    let model_id = detectors
        .iter()
        .map(|d| d.manifest().id())
        .collect::<Vec<_>>()
        .join(", ");

    let stats = Arc::new(GatewayStats::default());
    let board = Arc::new(CameraBoard::default());
    let desk = Arc::new(reinspection::Desk::default());
    let slots = Arc::new(FrameSlots::default());
    let (event_tx, mut event_rx) = mpsc::channel::<NewEvent>(64);
    let watch_tx = event_tx.clone();
    let wake = Arc::new(Notify::new());

    // Detection and rules: one thread for all cameras, told of cameras as they start.
    let (changes, analysis_thread) = if detectors.is_empty() {
        drop(event_tx); // no detection thread: only the liveness watch raises camera events
        (None, None)
    } else {
        let (changes, changes_rx) = std::sync::mpsc::channel();
        let analysis = Analysis::new(
            config.gateway_id.clone(),
            detectors,
            changes_rx,
            desk.clone(),
        );
        let analysis_slots = slots.clone();
        let thread = std::thread::Builder::new()
            .name("detect".into())
            .spawn(move || analysis.run(&analysis_slots, event_tx))?;
        (Some(changes), Some(thread))
    };
    // Sources: one camera task and one decode thread per camera, from the settings file (a
    // rule with nothing to watch in its model fails the start) or the hub's registry.
    let mut cameras = Cameras::new(
        models,
        slots.clone(),
        changes,
        board.clone(),
        config.decode.clone(),
    );
    if let Err(e) = cameras.apply(config.cameras).await {
        cameras.stop_all().await;
        slots.close();
        anyhow::bail!(e);
    }
    let cameras = Arc::new(tokio::sync::Mutex::new(cameras));
    let camera_stop = CancellationToken::new();
    // Cameras that stay down are reported as device events.
    let watch = tokio::spawn(
        camera_watch::CameraWatch {
            gateway_id: config.gateway_id.clone(),
            board: board.clone(),
            category: config.fault_category.clone(),
            offline_after: config.camera_offline_after,
            events: watch_tx,
        }
        .run(camera_stop.clone()),
    );

    // Outbox writer: events are stored in batches, retried until stored, never dropped.
    let writer = {
        let (outbox, stats, wake) = (outbox.clone(), stats.clone(), wake.clone());
        tokio::spawn(async move {
            let mut batch = Vec::new();
            while event_rx.recv_many(&mut batch, 256).await > 0 {
                outbox.push_all_retrying(&batch).await;
                GatewayStats::add(&stats.events_created, batch.len() as u64);
                wake.notify_one();
                batch.clear();
            }
        })
    };

    // Patrol terminals.
    let patrol = match config.patrol {
        Some(p) => Some(
            patrol::Patrol::start(
                p,
                &config.gateway_id,
                outbox.clone(),
                stats.clone(),
                wake.clone(),
            )
            .await?,
        ),
        None => None,
    };

    // The hub's registry: cameras and patrol terminals, the last good document first.
    let (sync, config_status) = if config.camera_registry {
        let status = Arc::new(ConfigStatus::default());
        let sync = ConfigSync {
            hub_url: config.hub_url.clone(),
            token: config.hub_token.clone(),
            gateway_id: config.gateway_id.clone(),
            file: config.data_dir.join("cameras.json"),
            models: config.models.keys().cloned().collect(),
            cameras: cameras.clone(),
            admission: patrol.as_ref().and_then(|p| p.admission.clone()),
            status: status.clone(),
        };
        sync.resume().await;
        (
            Some(tokio::spawn(sync.run(camera_stop.clone()))),
            Some(status),
        )
    } else {
        (None, None)
    };

    // Uplink, reports to the hub, the outbox's size budget and the local API.
    let uplink_stop = CancellationToken::new();
    let guard = tokio::spawn(
        storage::StorageGuard {
            outbox: outbox.clone(),
            max_bytes: config.outbox_max_bytes,
            gateway_id: config.gateway_id.clone(),
            location: config.location.clone(),
            category: config.fault_category.clone(),
            stats: stats.clone(),
            wake: wake.clone(),
        }
        .run(uplink_stop.clone()),
    );
    let report = tokio::spawn(
        hub_report::HubReport {
            hub_url: config.hub_url.clone(),
            token: config.hub_token.clone(),
            gateway_id: config.gateway_id.clone(),
            outbox: outbox.clone(),
            patrol: patrol
                .as_ref()
                .map(|p| (p.board.clone(), p.downlink.clone())),
            cameras: board.clone(),
            reinspections: desk.clone(),
            config: config_status,
            analysing: analysis_thread.is_some(),
            interval: config.report_interval,
            previous: Default::default(),
        }
        .run(uplink_stop.clone()),
    );
    let uplink = tokio::spawn(
        uplink::Uplink {
            outbox: outbox.clone(),
            hub_url: config.hub_url,
            token: config.hub_token,
            gateway_id: config.gateway_id.clone(),
            batch_size: config.batch_size,
            stats: stats.clone(),
            wake,
        }
        .run(uplink_stop.clone()),
    );
    let listener = tokio::net::TcpListener::bind(config.api_listen)
        .await
        .with_context(|| format!("local API: listening on {}", config.api_listen))?;
    tracing::info!(addr = %listener.local_addr()?, "local API listening");
    let tools = Arc::new(tools::Tools::new(
        config.gateway_id.clone(),
        config.api_token.clone(),
    ));
    let api_state = api::ApiState {
        gateway_id: config.gateway_id,
        model: model_id,
        cameras: board,
        stats,
        outbox,
        terminals: patrol.as_ref().map(|p| p.board.clone()),
        token: config.api_token,
    };
    let api = tokio::spawn(
        axum::serve(listener, api::router(api_state).merge(tools::router(tools)))
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .into_future(),
    );

    shutdown.cancelled().await;
    tracing::info!("shutting down: cameras, then detection, then the outbox");
    camera_stop.cancel();
    if let Some(sync) = sync {
        sync.await?;
    }
    watch.await?;
    cameras.lock().await.stop_all().await;
    tokio::task::spawn_blocking(move || {
        slots.close();
        if let Some(t) = analysis_thread {
            let _ = t.join();
        }
    })
    .await?;
    writer.await?;
    if let Some(p) = patrol {
        p.stop().await;
    }
    uplink_stop.cancel();
    uplink.await?;
    report.await?;
    guard.await?;
    api.await??;
    Ok(())
}
