//! The gateway's settings: a TOML file plus `EDGE_*` environment overrides, parsed into
//! [`RawConfig`] (unknown keys are errors) and then checked into [`Config`] before any task
//! starts. Errors name the key and the file.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use protocol::device::{CameraSpec, CrowdSpec, HazardSpec, Transport};
use protocol::{CategoryCode, check_identifier};
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use crate::detect::Tiling;
use crate::patrol::{BrokerChoice, Credentials, Limits, PatrolConfig, client};
use crate::pipeline::decode::DecodeSettings;
use crate::pipeline::episode::Timing;
use crate::pipeline::hwaccel::HwSettings;
use crate::pipeline::motion::MotionSettings;
use crate::pipeline::rules::{CrowdRule, Zone};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub gateway: RawGateway,
    pub hub: RawHub,
    #[serde(default)]
    pub api: RawApi,
    pub model: RawModel,
    /// Further models by name, for cameras that name one (`camera.model`); the others use
    /// `model`.
    #[serde(default)]
    pub models: BTreeMap<String, RawNamedModel>,
    #[serde(default, rename = "camera")]
    pub cameras: Vec<CameraSpec>,
    /// Patrol terminals over MQTT; absent = no terminals.
    #[serde(default)]
    pub patrol: Option<RawPatrol>,
    /// Motion gating for every camera; absent = every frame due is analysed.
    #[serde(default)]
    pub motion: Option<RawMotion>,
    /// Hardware decoding for every camera; absent = software.
    #[serde(default)]
    pub decode: Option<RawDecode>,
    /// What evidence camera events carry besides their snapshot.
    #[serde(default)]
    pub evidence: RawEvidence,
}

/// `[evidence]`: the clip a camera event's start carries.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEvidence {
    /// Seconds of stream before the frame an episode starts on, sent with its first event
    /// as an MP4 (from the key frame before; remuxed, not re-encoded); 0 = no clips.
    #[serde(default = "default_clip_s")]
    pub clip_s: u64,
}

impl Default for RawEvidence {
    fn default() -> Self {
        Self {
            clip_s: default_clip_s(),
        }
    }
}

fn default_clip_s() -> u64 {
    5
}

/// `[decode]`: where the cameras' streams are decoded.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDecode {
    /// `software` (the default), `vaapi` or `cuda`. A device that cannot be opened leaves
    /// the camera decoding in software, with the reason in its health.
    #[serde(default = "default_hardware")]
    pub hardware: String,
    /// The device: a DRM render node for VAAPI (`/dev/dri/renderD128`), a GPU index for
    /// CUDA (`0`); FFmpeg's default when absent.
    #[serde(default)]
    pub device: Option<String>,
}

fn default_hardware() -> String {
    "software".into()
}

fn hardware(d: RawDecode) -> Result<Option<HwSettings>, (&'static str, String)> {
    if d.device.as_deref().is_some_and(|s| s.trim().is_empty()) {
        return Err((
            "device",
            "must not be empty (leave it out for the default)".into(),
        ));
    }
    match d.hardware.as_str() {
        "software" if d.device.is_some() => {
            Err(("device", "only goes with hardware = vaapi or cuda".into()))
        }
        "software" => Ok(None),
        other => Ok(Some(HwSettings {
            kind: other.parse().map_err(|e| ("hardware", e))?,
            device: d.device,
        })),
    }
}

/// `[motion]`: skip the detector on still scenes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMotion {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The fraction of a frame (in 32×18 cells) that must change for it to be analysed.
    #[serde(default = "default_min_changed")]
    pub min_changed: f32,
    /// Seconds between forced checks of a still scene, so a standing hazard is still seen.
    #[serde(default = "default_force_every_s")]
    pub force_every_s: f64,
}

fn default_true() -> bool {
    true
}

fn default_min_changed() -> f32 {
    0.005
}

fn default_force_every_s() -> f64 {
    10.0
}

fn motion(m: RawMotion) -> Result<Option<MotionSettings>, (&'static str, String)> {
    if !(m.min_changed > 0.0 && m.min_changed <= 1.0) {
        return Err(("min_changed", "must be above 0 and at most 1".into()));
    }
    if !(1.0..=3600.0).contains(&m.force_every_s) {
        return Err(("force_every_s", "must be 1..=3600".into()));
    }
    Ok(m.enabled.then(|| MotionSettings {
        min_changed: m.min_changed,
        force_every: Duration::from_secs_f64(m.force_every_s),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPatrol {
    /// `embedded` (the default: the gateway's own broker) or an external broker's
    /// `mqtt://host:port`.
    #[serde(default = "default_broker")]
    pub broker: String,
    /// Embedded broker: where terminals connect.
    #[serde(default = "default_patrol_listen")]
    pub listen: SocketAddr,
    /// Embedded broker: the terminals and their hashed secrets (`edge-gateway terminal
    /// add`); relative to the config file. Optional when the hub's registry lists them.
    #[serde(default)]
    pub terminals_file: Option<PathBuf>,
    #[serde(default = "default_max_terminals")]
    pub max_terminals: usize,
    /// External broker: the gateway's own login. Prefer `EDGE_PATROL__PASSWORD`.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<SecretString>,
    #[serde(default = "default_max_photos")]
    pub max_photos: usize,
    #[serde(default = "default_max_photo_bytes")]
    pub max_photo_bytes: usize,
    /// Category of SOS events (突发事件 / other by default).
    #[serde(default = "default_sos_category")]
    pub sos_category: String,
}

fn default_broker() -> String {
    "embedded".into()
}

fn default_patrol_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 1883))
}

fn default_max_terminals() -> usize {
    5000
}

fn default_max_photos() -> usize {
    4
}

fn default_max_photo_bytes() -> usize {
    2 * 1024 * 1024
}

fn default_sos_category() -> String {
    "event:0499".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGateway {
    pub id: String,
    /// Where the outbox lives; relative paths are relative to the config file.
    pub data_dir: PathBuf,
    /// The outbox's size budget in MiB: past it, evidence and then low-risk events are
    /// evicted and a `storage_pressure` event is raised.
    #[serde(default = "default_outbox_max_mib")]
    pub outbox_max_mib: u64,
    /// Category of the gateway's own fault events (storage pressure, cameras offline).
    #[serde(default = "default_fault_category")]
    pub fault_category: String,
    /// Seconds a camera may stay down (not streaming) before a `camera_offline` event;
    /// a `camera_online` event follows when it streams again.
    #[serde(default = "default_camera_offline_after")]
    pub camera_offline_after_s: u64,
    /// Where the gateway stands, for its own fault events; the first camera's place when
    /// absent.
    #[serde(default)]
    pub location: Option<protocol::Location>,
}

fn default_outbox_max_mib() -> u64 {
    2048
}

fn default_camera_offline_after() -> u64 {
    300
}

fn default_fault_category() -> String {
    "event:9901".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHub {
    pub url: String,
    /// The token `hub gateway add` printed. Prefer `EDGE_HUB__TOKEN` to writing it here.
    pub token: SecretString,
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Seconds between reports of the gateway's state (and its terminals') to the hub.
    #[serde(default = "default_report_interval")]
    pub report_interval_s: f64,
    /// Take the cameras from the hub's device registry instead of `[[cameras]]`: changes
    /// there are applied without a restart, and the last good list is kept on disk for
    /// when the hub cannot be reached.
    #[serde(default)]
    pub camera_registry: bool,
}

fn default_batch_size() -> usize {
    100
}

fn default_report_interval() -> f64 {
    15.0
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    pub listen: SocketAddr,
    /// The technician's bearer token for the on-site tools (`/api/v1/tools/…`); without
    /// it they are off. Prefer `EDGE_API__TOKEN`.
    #[serde(default)]
    pub token: Option<SecretString>,
}

impl Default for RawApi {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            token: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    /// The model's manifest (see `models/`); relative to the config file.
    pub manifest: PathBuf,
    /// Where fetched models are kept; `MODEL_CACHE` overrides it.
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// The ONNX Runtime library; `ORT_DYLIB_PATH` overrides it.
    #[serde(default)]
    pub onnxruntime: Option<PathBuf>,
    /// Threads one inference may use.
    #[serde(default = "default_threads")]
    pub intra_threads: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNamedModel {
    /// The model's manifest; relative to the config file.
    pub manifest: PathBuf,
}

fn default_threads() -> usize {
    2
}

/// Checked settings.
#[derive(Debug)]
pub struct Config {
    pub gateway_id: String,
    pub data_dir: PathBuf,
    pub outbox_max_bytes: u64,
    pub fault_category: CategoryCode,
    pub camera_offline_after: Duration,
    /// Where the gateway stands, when known (its own or its first camera's).
    pub location: Option<protocol::Location>,
    pub hub_url: Url,
    pub hub_token: SecretString,
    pub batch_size: usize,
    pub report_interval: Duration,
    /// The cameras come from the hub's device registry (`cameras` is empty).
    pub camera_registry: bool,
    pub api_listen: SocketAddr,
    pub api_token: Option<SecretString>,
    /// Motion gating (when on) and hardware decoding (when chosen) for every camera.
    pub decode: DecodeSettings,
    pub model_manifest: PathBuf,
    /// Further models' manifests by name (`models`).
    pub models: BTreeMap<String, PathBuf>,
    /// Folders searched for the model file before fetching it, in order.
    pub model_search: Vec<PathBuf>,
    /// Where a fetched model is written.
    pub model_cache: PathBuf,
    pub onnxruntime: Option<PathBuf>,
    pub intra_threads: usize,
    pub cameras: Vec<CameraConfig>,
    pub patrol: Option<PatrolConfig>,
}

#[derive(Debug, Clone)]
pub struct CameraConfig {
    /// The settings as written (in the file or the hub's registry): a camera is replaced
    /// when they change.
    pub spec: CameraSpec,
    pub id: String,
    pub name: String,
    /// The stream analysed: the sub-stream when the camera has one, else the main stream.
    pub url: Url,
    pub credentials: Option<(String, SecretString)>,
    pub tcp: bool,
    pub detect_interval: Duration,
    pub location: protocol::Location,
    /// A name in `Config::models`; `None` = the default model.
    pub model: Option<String>,
    /// Tiles to analyse besides the whole frame; `None`: the whole frame only.
    pub tiling: Option<Tiling>,
    pub crowd: Option<CrowdRule>,
    /// The hazard rule's settings; its classes come from the model's manifest.
    pub hazard: Option<HazardSettings>,
}

/// A camera's hazard settings, checked; [`HazardSettings::rule`] adds the model's classes.
#[derive(Debug, Clone, PartialEq)]
pub struct HazardSettings {
    pub min_score: Option<f32>,
    pub frames: usize,
    pub window: usize,
    pub timing: Timing,
    pub zone: Option<Zone>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Figment(Box<figment::Error>),
    #[error("{file}: {key}: {message}")]
    Invalid {
        file: String,
        key: String,
        message: String,
    },
}

impl RawConfig {
    /// Reads `file`, then applies `EDGE_*` variables (`EDGE_HUB__TOKEN`, `EDGE_HUB__URL`, …).
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        Figment::from(Toml::file_exact(file))
            .merge(Env::prefixed("EDGE_").split("__"))
            .extract()
            .map_err(|e| ConfigError::Figment(Box::new(e)))
    }
}

impl Config {
    /// Checks `raw`, read from `file`; relative paths are resolved against the file's folder.
    pub fn from_raw(raw: RawConfig, file: &Path) -> Result<Self, ConfigError> {
        let base = file.parent().unwrap_or(Path::new("."));
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            file: file.display().to_string(),
            key: key.to_owned(),
            message,
        };
        check_identifier(&raw.gateway.id).map_err(|m| invalid("gateway.id", m))?;
        let hub_url = Url::parse(&raw.hub.url)
            .map_err(|e| invalid("hub.url", format!("{:?}: {e}", raw.hub.url)))?;
        if !matches!(hub_url.scheme(), "http" | "https") {
            return Err(invalid(
                "hub.url",
                "must be an http:// or https:// URL".into(),
            ));
        }
        if secrecy::ExposeSecret::expose_secret(&raw.hub.token)
            .trim()
            .is_empty()
        {
            return Err(invalid(
                "hub.token",
                "must not be empty (set EDGE_HUB__TOKEN)".into(),
            ));
        }
        if !(1..=500).contains(&raw.hub.batch_size) {
            return Err(invalid("hub.batch_size", "must be 1..=500".into()));
        }
        if !(0.5..=3600.0).contains(&raw.hub.report_interval_s) {
            return Err(invalid(
                "hub.report_interval_s",
                "must be 0.5..=3600 seconds".into(),
            ));
        }
        if !(1..=64).contains(&raw.model.intra_threads) {
            return Err(invalid("model.intra_threads", "must be 1..=64".into()));
        }
        let data_dir = base.join(&raw.gateway.data_dir);
        let env_cache = std::env::var_os("MODEL_CACHE").map(PathBuf::from);
        let config_cache = raw.model.cache_dir.as_ref().map(|p| base.join(p));
        let model_cache = env_cache
            .clone()
            .or(config_cache.clone())
            .unwrap_or_else(|| data_dir.join("models"));
        let model_search = [env_cache, config_cache, Some(data_dir.join("models"))]
            .into_iter()
            .flatten()
            .collect();
        let onnxruntime = std::env::var_os("ORT_DYLIB_PATH")
            .map(PathBuf::from)
            .or(raw.model.onnxruntime.map(|p| base.join(p)));

        let mut models = BTreeMap::new();
        for (name, m) in raw.models {
            check_identifier(&name).map_err(|e| invalid(&format!("models.{name}"), e))?;
            models.insert(name, base.join(m.manifest));
        }
        if raw.hub.camera_registry && !raw.cameras.is_empty() {
            return Err(invalid(
                "hub.camera_registry",
                "the cameras come from the hub's registry: leave out [[cameras]]".into(),
            ));
        }
        let model_names: HashSet<&str> = models.keys().map(String::as_str).collect();
        let cameras = cameras_from_specs(raw.cameras, &model_names, "camera")
            .map_err(|e| invalid(&e.path, e.message))?;
        let patrol = raw
            .patrol
            .map(|p| {
                patrol(p, base, &raw.gateway.id, raw.hub.camera_registry)
                    .map_err(|(k, m)| invalid(&format!("patrol.{k}"), m))
            })
            .transpose()?;
        if let Some(token) = &raw.api.token
            && secrecy::ExposeSecret::expose_secret(token).chars().count() < 16
        {
            return Err(invalid(
                "api.token",
                "must be at least 16 characters (e.g. `openssl rand -hex 16`)".into(),
            ));
        }
        let motion = match raw.motion {
            Some(m) => motion(m).map_err(|(k, m)| invalid(&format!("motion.{k}"), m))?,
            None => None,
        };
        let hardware = match raw.decode {
            Some(d) => hardware(d).map_err(|(k, m)| invalid(&format!("decode.{k}"), m))?,
            None => None,
        };
        if raw.evidence.clip_s > 30 {
            return Err(invalid(
                "evidence.clip_s",
                format!(
                    "{} must be 0..=30 seconds (0: no clips)",
                    raw.evidence.clip_s
                ),
            ));
        }
        let clip = (raw.evidence.clip_s > 0).then(|| Duration::from_secs(raw.evidence.clip_s));
        if !(1..=1_048_576).contains(&raw.gateway.outbox_max_mib) {
            return Err(invalid(
                "gateway.outbox_max_mib",
                "must be 1..=1048576".into(),
            ));
        }
        if !(1..=86_400).contains(&raw.gateway.camera_offline_after_s) {
            return Err(invalid(
                "gateway.camera_offline_after_s",
                "must be 1..=86400 seconds".into(),
            ));
        }
        let fault_category = raw
            .gateway
            .fault_category
            .parse()
            .map_err(|e| invalid("gateway.fault_category", format!("{e}")))?;
        let location = match raw.gateway.location {
            Some(l) => {
                l.validate()
                    .map_err(|e| invalid(&format!("gateway.location.{}", e.path), e.message))?;
                Some(l)
            }
            None => cameras.first().map(|c| c.location.clone()),
        };
        Ok(Config {
            gateway_id: raw.gateway.id,
            data_dir,
            outbox_max_bytes: raw.gateway.outbox_max_mib * 1024 * 1024,
            fault_category,
            camera_offline_after: Duration::from_secs(raw.gateway.camera_offline_after_s),
            location,
            hub_url,
            hub_token: raw.hub.token,
            batch_size: raw.hub.batch_size,
            report_interval: Duration::from_secs_f64(raw.hub.report_interval_s),
            camera_registry: raw.hub.camera_registry,
            api_listen: raw.api.listen,
            api_token: raw.api.token,
            decode: DecodeSettings {
                motion,
                hardware,
                clip,
            },
            model_manifest: base.join(raw.model.manifest),
            models,
            model_search,
            model_cache,
            onnxruntime,
            intra_threads: raw.model.intra_threads,
            cameras,
            patrol,
        })
    }
}

/// `registry`: the gateway follows the hub's registry, which may list its terminals.
fn patrol(
    p: RawPatrol,
    base: &Path,
    gateway_id: &str,
    registry: bool,
) -> Result<PatrolConfig, (&'static str, String)> {
    if !(1..=16).contains(&p.max_photos) {
        return Err(("max_photos", "must be 1..=16".into()));
    }
    if !(1024..=16 * 1024 * 1024).contains(&p.max_photo_bytes) {
        return Err(("max_photo_bytes", "must be 1 KiB..=16 MiB".into()));
    }
    let sos_category = p
        .sos_category
        .parse()
        .map_err(|e| ("sos_category", format!("{e}")))?;
    let limits = Limits {
        max_photos: p.max_photos,
        max_photo_bytes: p.max_photo_bytes,
        max_message_bytes: Limits::message_bytes_for(p.max_photos, p.max_photo_bytes),
        sos_category,
    };
    let broker = if p.broker == "embedded" {
        if p.username.is_some() || p.password.is_some() {
            return Err((
                "username",
                "only for an external broker; terminals log in with their own secrets".into(),
            ));
        }
        let credentials = match p.terminals_file {
            Some(file) => Credentials::load(&base.join(file)).map_err(|m| ("terminals_file", m))?,
            None if registry => Credentials::default(),
            None => {
                return Err((
                    "terminals_file",
                    "the embedded broker needs the terminals file (or the hub's registry: [hub] camera_registry = true)".into(),
                ));
            }
        };
        if !(1..=100_000).contains(&p.max_terminals) {
            return Err(("max_terminals", "must be 1..=100000".into()));
        }
        BrokerChoice::Embedded {
            listen: p.listen,
            credentials,
            max_terminals: p.max_terminals,
        }
    } else {
        let url = Url::parse(&p.broker).map_err(|e| {
            (
                "broker",
                format!("{:?}: {e}; use \"embedded\" or mqtt://host:port", p.broker),
            )
        })?;
        if url.scheme() != "mqtt" {
            return Err((
                "broker",
                "must be \"embedded\" or an mqtt://host:port URL".into(),
            ));
        }
        let host = url
            .host_str()
            .ok_or(("broker", "has no host".to_owned()))?
            .to_owned();
        if p.terminals_file.is_some() {
            return Err((
                "terminals_file",
                "only for the embedded broker; an external broker authenticates terminals itself"
                    .into(),
            ));
        }
        BrokerChoice::External(client::Login {
            host,
            port: url.port().unwrap_or(1883),
            client_id: format!("edge-{gateway_id}"),
            username: p.username,
            password: p
                .password
                .map(|s| secrecy::ExposeSecret::expose_secret(&s).to_owned()),
        })
    };
    Ok(PatrolConfig { broker, limits })
}

/// Checks cameras as written (`[[cameras]]`, or the hub's configuration document) into
/// what the gateway runs; `prefix` names the list in errors (`camera[2].url`). Every
/// camera's `model` must be one of `models` (absent = the default model).
pub fn cameras_from_specs(
    specs: Vec<CameraSpec>,
    models: &HashSet<&str>,
    prefix: &str,
) -> Result<Vec<CameraConfig>, protocol::FieldError> {
    let mut seen = HashSet::new();
    let mut cameras = Vec::with_capacity(specs.len());
    for (i, cam) in specs.into_iter().enumerate() {
        let invalid = |k: &str, message: String| protocol::FieldError {
            path: format!("{prefix}[{i}].{k}"),
            message,
        };
        cam.validate(&format!("{prefix}[{i}]"))?;
        if !seen.insert(cam.id.clone()) {
            return Err(invalid(
                "id",
                format!("{:?} is used by two cameras", cam.id),
            ));
        }
        if let Some(name) = &cam.model
            && !models.contains(name.as_str())
        {
            return Err(invalid(
                "model",
                format!("{name:?} is not one of the gateway's [models]"),
            ));
        }
        // The sub-stream when there is one: it is what the gateway analyses.
        let (key, analysed) = match &cam.sub_url {
            Some(sub) => ("sub_url", sub),
            None => ("url", &cam.url),
        };
        let url = Url::parse(analysed).map_err(|e| invalid(key, format!("{e}")))?;
        let spec = cam.clone();
        let credentials = cam
            .username
            .zip(cam.password)
            .map(|(u, p)| (u, SecretString::from(p.expose())));
        cameras.push(CameraConfig {
            spec,
            name: cam.name.unwrap_or_else(|| cam.id.clone()),
            id: cam.id,
            url,
            credentials,
            tcp: cam.transport == Transport::Tcp,
            detect_interval: Duration::from_secs_f64(1.0 / cam.detect_fps),
            location: cam.location,
            model: cam.model,
            tiling: cam.tiling.map(|t| Tiling {
                cols: t.cols,
                rows: t.rows,
                overlap: t.overlap,
            }),
            crowd: cam.crowd.map(crowd_rule),
            hazard: cam.hazard.map(hazard),
        });
    }
    Ok(cameras)
}

/// A camera's hazard settings; `HazardSpec::validate` has checked them.
fn hazard(h: HazardSpec) -> HazardSettings {
    HazardSettings {
        min_score: h.min_score,
        frames: h.frames,
        window: h.window,
        timing: Timing {
            dwell: Duration::ZERO,
            clear: Duration::from_secs(h.clear_s),
            update_every: Duration::from_secs(h.update_s),
            refresh: Duration::from_secs(h.refresh_s),
            cooldown: Duration::from_secs(h.cooldown_s),
        },
        zone: h.zone.map(Zone::checked),
    }
}

/// A camera's crowd rule; `CrowdSpec::validate` has checked it.
fn crowd_rule(c: CrowdSpec) -> CrowdRule {
    let (medium_at, high_at) = c.levels();
    CrowdRule {
        min_persons: c.min_persons,
        clear_below: c.clear_count(),
        min_score: c.min_score,
        tracked: c.tracked,
        timing: Timing {
            dwell: Duration::from_secs(c.dwell_s),
            clear: Duration::from_secs(c.clear_s),
            update_every: Duration::from_secs(c.update_s),
            refresh: Duration::from_secs(c.refresh_s),
            cooldown: Duration::from_secs(c.cooldown_s),
        },
        medium_at,
        high_at,
        zone: c.zone.map(Zone::checked),
        category: c.category,
    }
}
