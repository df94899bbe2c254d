//! The cameras a gateway runs, in one shape for the gateway's settings file (`[[cameras]]`)
//! and the hub's device registry, which serves each gateway its cameras as a
//! [`GatewayConfig`] (`GET /api/v1/gateway/config`). [`CameraSpec::validate`] is the one set
//! of field checks both apply, so a technician hears of a bad entry at the hub, not from a
//! gateway in a township.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::category::CategoryCode;
use crate::event::{FieldError, Location, check_identifier};

/// `GET /api/v1/gateway/config` answer: the cameras the hub's registry lists for the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    pub v: u32,
    pub gateway_id: String,
    /// Grows with every change to this gateway's cameras; the answer's ETag.
    pub revision: i64,
    pub cameras: Vec<CameraSpec>,
    /// The patrol terminals the gateway's MQTT front door admits, besides those of its own
    /// terminals file.
    #[serde(default)]
    pub terminals: Vec<TerminalSpec>,
}

/// A patrol terminal a gateway admits: the hash of its secret, never the secret (the hub
/// shows that once, when it issues it, and keeps only the hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TerminalSpec {
    pub id: String,
    /// The grid worker who carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// The grid (网格) its holder patrols.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<String>,
    /// Lower-case hex SHA-256 of the terminal's secret.
    pub secret_sha256: String,
}

/// One camera: where its stream is, where it stands and which rules watch it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CameraSpec {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `rtsp://host[:port]/path`, without credentials: the main stream.
    pub url: String,
    /// The camera's sub-stream (a lower resolution of the same view): analysed instead of
    /// `url` when given, since it costs far less to decode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    #[serde(default)]
    pub transport: Transport,
    /// Frames analysed per second; the rest are decoded (H.264 needs them) but not converted
    /// or analysed.
    #[serde(default = "default_fps")]
    pub detect_fps: f64,
    pub location: Location,
    /// A model of the gateway's `models` by name; absent = its default model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Cut each analysed frame into overlapping tiles, each analysed at the model's input
    /// size besides the whole frame: people far from the camera are seen larger, at the
    /// cost of one more inference per tile. Absent: the whole frame only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiling: Option<TilingSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crowd: Option<CrowdSpec>,
    /// Raise an event for the classes the model's manifest calls hazards (a broken or
    /// missing manhole cover).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hazard: Option<HazardSpec>,
}

fn default_fps() -> f64 {
    2.0
}

/// How RTP travels: interleaved on the RTSP connection (the default, through NAT and
/// firewalls) or over UDP.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Tcp,
    Udp,
}

/// A password on the wire: shown as `***` by `Debug`, written out only by serde.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// Tiles across and down, and how much neighbours overlap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TilingSpec {
    pub cols: u32,
    pub rows: u32,
    /// The share of a tile's width (height) it shares with its neighbour, 0..=0.5.
    #[serde(default = "default_overlap")]
    pub overlap: f32,
}

fn default_overlap() -> f32 {
    0.2
}

impl TilingSpec {
    fn validate(&self) -> Result<(), (&'static str, String)> {
        for (field, n) in [("cols", self.cols), ("rows", self.rows)] {
            if !(1..=4).contains(&n) {
                return Err((field, format!("{n} must be 1..=4")));
            }
        }
        if self.cols * self.rows < 2 {
            return Err((
                "cols",
                "one tile is the whole frame: leave tiling out".into(),
            ));
        }
        if !(0.0..=0.5).contains(&self.overlap) {
            return Err(("overlap", format!("{} must be in 0..=0.5", self.overlap)));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CrowdSpec {
    /// Persons counted (inside the zone, if any) that raise the event.
    pub min_persons: u32,
    /// Detections below this score are not counted.
    #[serde(default = "default_score")]
    pub min_score: f32,
    /// Count only persons tracked over at least two analysed frames, so a box that shows
    /// up in one frame only (a shadow, a coat on a rail) is never counted; `false` counts
    /// every person detected in the frame.
    #[serde(default = "default_tracked")]
    pub tracked: bool,
    /// Seconds the count must stay at or above `min_persons` before a crowd starts (0: at
    /// once).
    #[serde(default)]
    pub dwell_s: u64,
    /// Once started, the crowd lasts until the count stays under this for `clear_s`;
    /// default: 80% of `min_persons`, rounded up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear_below: Option<u32>,
    #[serde(default = "default_crowd_clear")]
    pub clear_s: u64,
    /// Seconds between updates of a lasting crowd with a new highest count (a higher risk
    /// level is reported at once).
    #[serde(default = "default_update")]
    pub update_s: u64,
    /// Seconds at most between two events of a lasting crowd, news or not.
    #[serde(default = "default_crowd_refresh")]
    pub refresh_s: u64,
    /// Seconds after a crowd ended before the same camera starts another.
    #[serde(default = "default_crowd_cooldown")]
    pub cooldown_s: u64,
    /// Count at which the risk is medium / high; default 2× and 4× `min_persons`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium_at: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_at: Option<u32>,
    /// Polygon in normalised coordinates ([x, y] with 0..1); persons count when their foot
    /// point is inside. Absent = the whole frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<Vec<[f32; 2]>>,
    #[serde(default = "default_crowd_category")]
    pub category: CategoryCode,
}

fn default_score() -> f32 {
    0.25
}

fn default_tracked() -> bool {
    true
}

fn default_crowd_cooldown() -> u64 {
    60
}

fn default_crowd_clear() -> u64 {
    30
}

fn default_update() -> u64 {
    60
}

fn default_crowd_refresh() -> u64 {
    600
}

fn default_hazard_refresh() -> u64 {
    3600
}

fn default_crowd_category() -> CategoryCode {
    "event:0407".parse().expect("a valid category code")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HazardSpec {
    /// Boxes below this score are not counted; default: the operating score the model's
    /// manifest records, else 0.5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_score: Option<f32>,
    /// Seen in this many of the last `window` analysed frames → an event.
    #[serde(default = "default_hazard_frames")]
    pub frames: usize,
    #[serde(default = "default_hazard_window")]
    pub window: usize,
    /// Seconds a class must stop being seen (in `frames` of `window`) before its hazard
    /// ends: long enough that a parked car does not end it.
    #[serde(default = "default_hazard_clear")]
    pub clear_s: u64,
    /// Seconds between updates of a lasting hazard with a surer view of it.
    #[serde(default = "default_update")]
    pub update_s: u64,
    /// Seconds at most between two events of a lasting hazard, news or not.
    #[serde(default = "default_hazard_refresh")]
    pub refresh_s: u64,
    /// Seconds after a hazard ended before the same camera starts another of its class.
    #[serde(default = "default_hazard_cooldown")]
    pub cooldown_s: u64,
    /// Polygon in normalised coordinates; a box counts when its centre is inside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<Vec<[f32; 2]>>,
}

fn default_hazard_frames() -> usize {
    3
}

fn default_hazard_window() -> usize {
    5
}

fn default_hazard_cooldown() -> u64 {
    3600
}

fn default_hazard_clear() -> u64 {
    300
}

impl CameraSpec {
    /// Checks what the types alone cannot; `path` prefixes the field in the error
    /// (`camera[2]`, `cameras.cam-01`).
    pub fn validate(&self, path: &str) -> Result<(), FieldError> {
        let err = |field: &str, message: String| FieldError {
            path: format!("{path}.{field}"),
            message,
        };
        check_identifier(&self.id).map_err(|m| err("id", m))?;
        check_stream_url(&self.url).map_err(|m| err("url", m))?;
        if let Some(sub) = &self.sub_url {
            check_stream_url(sub).map_err(|m| err("sub_url", m))?;
        }
        if self.username.is_some() != self.password.is_some() {
            return Err(err("username", "username and password go together".into()));
        }
        if !(self.detect_fps > 0.0 && self.detect_fps <= 30.0) {
            return Err(err(
                "detect_fps",
                format!("{} must be in (0, 30]", self.detect_fps),
            ));
        }
        self.location.validate().map_err(|e| FieldError {
            path: format!("{path}.location.{}", e.path),
            message: e.message,
        })?;
        if let Some(model) = &self.model {
            check_identifier(model).map_err(|m| err("model", m))?;
        }
        if let Some(t) = &self.tiling {
            t.validate()
                .map_err(|(field, m)| err(&format!("tiling.{field}"), m))?;
        }
        if let Some(c) = &self.crowd {
            c.validate()
                .map_err(|(field, m)| err(&format!("crowd.{field}"), m))?;
        }
        if let Some(h) = &self.hazard {
            h.validate()
                .map_err(|(field, m)| err(&format!("hazard.{field}"), m))?;
        }
        Ok(())
    }
}

impl CrowdSpec {
    /// A crowd rule raising at `min_persons`, with every other setting at its default.
    pub fn new(min_persons: u32) -> Self {
        Self {
            min_persons,
            min_score: default_score(),
            tracked: default_tracked(),
            dwell_s: 0,
            clear_below: None,
            clear_s: default_crowd_clear(),
            update_s: default_update(),
            refresh_s: default_crowd_refresh(),
            cooldown_s: default_crowd_cooldown(),
            medium_at: None,
            high_at: None,
            zone: None,
            category: default_crowd_category(),
        }
    }

    /// The count under which a crowd that started is over.
    pub fn clear_count(&self) -> u32 {
        self.clear_below
            .unwrap_or(self.min_persons - self.min_persons / 5)
    }

    /// The counts at which the risk becomes medium and high.
    pub fn levels(&self) -> (u32, u32) {
        (
            self.medium_at.unwrap_or(self.min_persons * 2),
            self.high_at.unwrap_or(self.min_persons * 4),
        )
    }

    fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.min_persons == 0 {
            return Err(("min_persons", "must be at least 1".into()));
        }
        check_score(self.min_score).map_err(|m| ("min_score", m))?;
        check_refresh(self.refresh_s)?;
        if !(1..=self.min_persons).contains(&self.clear_count()) {
            return Err((
                "clear_below",
                format!("must be 1..={} (min_persons)", self.min_persons),
            ));
        }
        let (medium, high) = self.levels();
        if !(self.min_persons <= medium && medium <= high) {
            return Err((
                "medium_at",
                "min_persons <= medium_at <= high_at must hold".into(),
            ));
        }
        check_zone(self.zone.as_deref()).map_err(|m| ("zone", m))
    }
}

impl Default for HazardSpec {
    fn default() -> Self {
        Self {
            min_score: None,
            frames: default_hazard_frames(),
            window: default_hazard_window(),
            clear_s: default_hazard_clear(),
            update_s: default_update(),
            refresh_s: default_hazard_refresh(),
            cooldown_s: default_hazard_cooldown(),
            zone: None,
        }
    }
}

impl HazardSpec {
    fn validate(&self) -> Result<(), (&'static str, String)> {
        if let Some(score) = self.min_score {
            check_score(score).map_err(|m| ("min_score", m))?;
        }
        check_refresh(self.refresh_s)?;
        if !(1..=100).contains(&self.window) {
            return Err(("window", "must be 1..=100 frames".into()));
        }
        if !(1..=self.window).contains(&self.frames) {
            return Err((
                "frames",
                format!("must be 1..={} (the window)", self.window),
            ));
        }
        check_zone(self.zone.as_deref()).map_err(|m| ("zone", m))
    }
}

fn check_refresh(seconds: u64) -> Result<(), (&'static str, String)> {
    if seconds == 0 {
        return Err(("refresh_s", "must be at least 1 second".into()));
    }
    Ok(())
}

fn check_score(score: f32) -> Result<(), String> {
    if (0.0..=1.0).contains(&score) {
        Ok(())
    } else {
        Err(format!("{score} must be in 0..=1"))
    }
}

/// A zone is a polygon of at least 3 points in normalised coordinates.
pub fn check_zone(points: Option<&[[f32; 2]]>) -> Result<(), String> {
    let Some(points) = points else { return Ok(()) };
    if points.len() < 3 {
        return Err("a zone needs at least 3 points".into());
    }
    if points.iter().flatten().any(|v| !(0.0..=1.0).contains(v)) {
        return Err("zone points are normalised coordinates in 0..=1".into());
    }
    Ok(())
}

/// An `rtsp://` or `rtsps://` URL with a host and no credentials in it.
pub fn check_stream_url(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url:?}: {e}"))?;
    if !matches!(parsed.scheme(), "rtsp" | "rtsps") {
        return Err("must be an rtsp:// URL".into());
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("put credentials in username/password, not in the URL".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn camera() -> CameraSpec {
        serde_json::from_value(serde_json::json!({
            "id": "cam-01",
            "url": "rtsp://10.0.0.5:554/Streaming/Channels/101",
            "location": { "lat": 30.1, "lon": 120.2 },
            "hazard": {}
        }))
        .unwrap()
    }

    #[test]
    fn defaults_fill_what_is_left_out() {
        let c = camera();
        assert_eq!(c.transport, Transport::Tcp);
        assert_eq!(c.detect_fps, 2.0);
        let h = c.hazard.unwrap();
        assert_eq!((h.frames, h.window, h.cooldown_s), (3, 5, 3600));
        assert_eq!(h, HazardSpec::default(), "the same defaults in code");
        let crowd: CrowdSpec = serde_json::from_str(r#"{"min_persons": 4}"#).unwrap();
        assert_eq!(crowd, CrowdSpec::new(4));
        assert_eq!(
            (crowd.clear_count(), crowd.clear_s, crowd.update_s),
            (4, 30, 60)
        );
        assert_eq!(CrowdSpec::new(10).clear_count(), 8, "80% of 10");
        camera().validate("camera").unwrap();
    }

    #[test]
    fn each_bad_field_is_named() {
        type Spoil = fn(&mut CameraSpec);
        let cases: Vec<(Spoil, &str)> = vec![
            (|c| c.id = "has space".into(), "camera.id"),
            (|c| c.url = "http://cam/x".into(), "camera.url"),
            (|c| c.url = "rtsp://u:p@cam/x".into(), "camera.url"),
            (|c| c.url = "not a url".into(), "camera.url"),
            (
                |c| c.sub_url = Some("http://cam/sub".into()),
                "camera.sub_url",
            ),
            (|c| c.username = Some("admin".into()), "camera.username"),
            (|c| c.detect_fps = 0.0, "camera.detect_fps"),
            (|c| c.location.lat = 95.0, "camera.location.lat"),
            (|c| c.model = Some("a b".into()), "camera.model"),
            (
                |c| c.hazard.as_mut().unwrap().frames = 6,
                "camera.hazard.frames",
            ),
            (
                |c| c.hazard.as_mut().unwrap().zone = Some(vec![[0.0, 0.0], [1.0, 1.0]]),
                "camera.hazard.zone",
            ),
            (
                |c| c.crowd = Some(CrowdSpec::new(0)),
                "camera.crowd.min_persons",
            ),
            (
                |c| {
                    c.tiling = Some(TilingSpec {
                        cols: 1,
                        rows: 1,
                        overlap: 0.2,
                    })
                },
                "camera.tiling.cols",
            ),
            (
                |c| {
                    c.tiling = Some(TilingSpec {
                        cols: 2,
                        rows: 1,
                        overlap: 0.7,
                    })
                },
                "camera.tiling.overlap",
            ),
            (
                |c| {
                    c.crowd = Some(CrowdSpec {
                        clear_below: Some(5),
                        ..CrowdSpec::new(4)
                    })
                },
                "camera.crowd.clear_below",
            ),
        ];
        for (spoil, path) in cases {
            let mut c = camera();
            spoil(&mut c);
            let e = c.validate("camera").unwrap_err();
            assert_eq!(e.path, path, "{}", e.message);
        }
    }

    #[test]
    fn a_password_never_shows_in_debug_output() {
        let mut c = camera();
        c.username = Some("admin".into());
        c.password = Some(Secret::new("hunter2-pw"));
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2-pw") && shown.contains("***"),
            "{shown}"
        );
        let json = serde_json::to_string(&c).unwrap();
        assert!(
            json.contains("\"password\":\"hunter2-pw\""),
            "serde writes it: {json}"
        );
    }
}
