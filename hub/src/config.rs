//! The hub's settings: read from an optional TOML file and `HUB_*` environment variables,
//! then checked as a whole before anything starts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::magic::RelativePathBuf;
use serde::{Deserialize, Serialize};

use crate::engine::{CalendarConfig, CorrelationConfig, DeadlineConfig, WorkingCalendar};
use crate::reference::{self, Kind, Set};
use crate::sealing::SealKey;
use protocol::device::Secret;

/// The settings as written, before checking.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Address the API listens on.
    pub listen: SocketAddr,
    /// `sqlite:PATH` (default) or `postgres://USER@HOST/DB`.
    pub database_url: String,
    /// First-start reference data: the department list, the category catalogue and the
    /// ownership list, each a CSV or TOML file. Each is imported when the database holds
    /// no set of its kind yet; after that the database is the source, changed by
    /// `hub import` or the API. Without an ownership list every case goes to joint review.
    /// A relative path is relative to the settings file that names it.
    pub departments: Option<RelativePathBuf>,
    pub categories: Option<RelativePathBuf>,
    pub ownership_list: Option<RelativePathBuf>,
    /// First-start area map (GeoJSON FeatureCollection of county, townships, villages and
    /// grids), imported like the lists above: events without a division code or grid get
    /// them from it, and the dashboard's map draws it. Relative to the settings file that
    /// names it.
    pub areas: Option<RelativePathBuf>,
    pub map: MapSettings,
    pub calendar: RawCalendar,
    pub correlation: CorrelationConfig,
    pub deadlines: DeadlineConfig,
    pub limits: Limits,
    pub session: SessionSettings,
    /// The built dashboard (`hub/web/dist`, made by `npm run build`); without it the hub
    /// serves only the API. A relative path is relative to the settings file that names it.
    pub web_root: Option<RelativePathBuf>,
    /// 64 hex digits (`openssl rand -hex 32`) that seal camera passwords in the device
    /// registry; prefer `HUB_REGISTRY_KEY` to writing it here. Without it the registry
    /// refuses passwords. Losing it loses the stored passwords (enter them again).
    pub registry_key: Option<Secret>,
}

/// The dashboard's map.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MapSettings {
    /// Tile server URL with `{z}`, `{x}`, `{y}` (and optionally `{s}`), e.g. a county GIS
    /// service. Without it the map shows the area outlines on a plain background, which
    /// works offline.
    pub tile_url: Option<String>,
    /// Credit shown on the map for the tiles (their licence usually requires it).
    pub attribution: String,
    pub max_zoom: u8,
}

impl Default for MapSettings {
    fn default() -> Self {
        Self {
            tile_url: None,
            attribution: String::new(),
            max_zoom: 18,
        }
    }
}

impl MapSettings {
    /// The tile server's origin (`https://tiles.example.org`), which the page's security
    /// policy must allow images from; `{s}` subdomains become a wildcard.
    pub fn tile_origin(&self) -> Option<String> {
        let url = url::Url::parse(&self.tile_url.as_ref()?.replace("{s}", "s")).ok()?;
        let host = url.host_str()?;
        let host = if self.tile_url.as_ref()?.contains("{s}.") {
            format!("*.{}", host.split_once('.').map_or(host, |(_, rest)| rest))
        } else {
            host.to_owned()
        };
        Some(match url.port() {
            Some(port) => format!("{}://{host}:{port}", url.scheme()),
            None => format!("{}://{host}", url.scheme()),
        })
    }

    fn check(&self) -> Result<(), ConfigError> {
        if let Some(t) = &self.tile_url {
            let parsed = url::Url::parse(&t.replace("{s}", "s"));
            if !(["{z}", "{x}", "{y}"].iter().all(|p| t.contains(p))
                && parsed.is_ok_and(|u| matches!(u.scheme(), "http" | "https")))
            {
                return Err(ConfigError::Invalid(format!(
                    "map.tile_url {t:?} must be an http(s) URL with {{z}}, {{x}} and {{y}}"
                )));
            }
        }
        if !(1..=22).contains(&self.max_zoom) {
            return Err(ConfigError::Invalid("map.max_zoom must be 1..=22".into()));
        }
        Ok(())
    }
}

/// Dashboard sign-in.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSettings {
    /// How long a sign-in lasts.
    pub ttl_hours: u32,
    /// Mark the session cookie `Secure`: set it when the hub is served over HTTPS (by a
    /// reverse proxy), so the cookie never travels in clear text.
    pub secure_cookie: bool,
    /// Failed sign-ins allowed per user name and per client address in one window, and
    /// the window's length.
    pub max_failures: u32,
    pub failure_window_s: u64,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            ttl_hours: 12,
            secure_cookie: false,
            max_failures: 5,
            failure_window_s: 900,
        }
    }
}

/// Calendar settings; a separate type so the defaults serialise for figment.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCalendar {
    pub utc_offset: Option<String>,
    pub working_periods: Option<Vec<String>>,
    #[serde(default)]
    pub holidays: Vec<chrono::NaiveDate>,
    #[serde(default)]
    pub working_weekends: Vec<chrono::NaiveDate>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest uplink batch body, in bytes.
    pub max_batch_bytes: usize,
    /// Most events in one batch.
    pub max_batch_events: usize,
    /// Largest evidence blob, in bytes.
    pub max_blob_bytes: usize,
}

impl Default for RawConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: "sqlite:hub.db".into(),
            departments: None,
            categories: None,
            ownership_list: None,
            areas: None,
            map: MapSettings::default(),
            calendar: RawCalendar::default(),
            correlation: CorrelationConfig::default(),
            deadlines: DeadlineConfig::default(),
            limits: Limits {
                max_batch_bytes: 4 << 20,
                max_batch_events: 500,
                max_blob_bytes: 8 << 20,
            },
            session: SessionSettings::default(),
            web_root: None,
            registry_key: None,
        }
    }
}

/// Settings checked and loaded: ready to run on.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    /// The first-start reference files, parsed and checked row by row, in import order.
    pub reference_seed: Vec<ReferenceFile>,
    pub map: MapSettings,
    pub calendar: WorkingCalendar,
    pub correlation: CorrelationConfig,
    pub deadlines: DeadlineConfig,
    pub limits: Limits,
    pub session: SessionSettings,
    pub web_root: Option<PathBuf>,
    pub registry_key: Option<SealKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Figment(#[from] Box<figment::Error>),
    #[error("{kind} file {}:\n{message}", path.display())]
    Reference {
        kind: Kind,
        path: PathBuf,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
}

/// A first-start reference file, read and checked row by row.
#[derive(Debug, Clone)]
pub struct ReferenceFile {
    pub path: PathBuf,
    pub set: Set,
    /// SHA-256 of the file, hex, for the import log.
    pub sha256: String,
}

impl ReferenceFile {
    /// Reads `path` (`.csv` or `.toml`) as a set of `kind`; every bad row is reported.
    pub fn read(kind: Kind, path: PathBuf) -> Result<Self, ConfigError> {
        let fail = |message: String| ConfigError::Reference {
            kind,
            path: path.clone(),
            message,
        };
        let format = reference::Format::from_path(&path)
            .filter(|f| kind.takes(*f))
            .ok_or_else(|| {
                fail(match kind {
                    Kind::Areas => "must be a .geojson (or .json) file".into(),
                    _ => "must be a .csv or a .toml file".into(),
                })
            })?;
        let bytes = std::fs::read(&path).map_err(|e| fail(e.to_string()))?;
        let text = reference::text(&bytes).map_err(|e| fail(e.to_string()))?;
        let set =
            Set::parse(kind, format, text).map_err(|errors| fail(reference::report(&errors)))?;
        Ok(Self {
            sha256: crate::reference_sync::digest(&bytes),
            path,
            set,
        })
    }
}

impl RawConfig {
    /// Defaults, then the file (if given), then `HUB_*` variables (`HUB_DATABASE_URL`,
    /// `HUB_LISTEN`, `HUB_LIMITS__MAX_BLOB_BYTES`, …).
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(RawConfig::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Invalid(format!(
                    "config file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        figment
            .merge(Env::prefixed("HUB_").split("__"))
            .extract()
            .map_err(|e| ConfigError::Figment(Box::new(e)))
    }
}

impl TryFrom<RawConfig> for Config {
    type Error = ConfigError;

    fn try_from(raw: RawConfig) -> Result<Self, Self::Error> {
        let reference_seed = [
            (Kind::Departments, &raw.departments),
            (Kind::Categories, &raw.categories),
            (Kind::Ownership, &raw.ownership_list),
            (Kind::Areas, &raw.areas),
        ]
        .into_iter()
        .filter_map(|(kind, path)| Some(ReferenceFile::read(kind, path.as_ref()?.relative())))
        .collect::<Result<_, _>>()?;
        raw.map.check()?;
        raw.deadlines.check().map_err(ConfigError::Invalid)?;
        let defaults = CalendarConfig::default();
        let calendar = CalendarConfig {
            utc_offset: raw.calendar.utc_offset.unwrap_or(defaults.utc_offset),
            working_periods: raw
                .calendar
                .working_periods
                .unwrap_or(defaults.working_periods),
            holidays: raw.calendar.holidays,
            working_weekends: raw.calendar.working_weekends,
        }
        .try_into()
        .map_err(ConfigError::Invalid)?;
        let c = &raw.correlation;
        if !(c.radius_m >= 0.0
            && c.radius_m <= 100_000.0
            && c.window_hours >= 0.0
            && c.window_hours <= 24.0 * 365.0)
        {
            return Err(ConfigError::Invalid(
                "correlation: radius_m must be 0..=100000 and window_hours 0..=8760 (0 turns correlation off)".into(),
            ));
        }
        let l = &raw.limits;
        if l.max_batch_bytes < 1024 || l.max_blob_bytes < 1024 || l.max_batch_events == 0 {
            return Err(ConfigError::Invalid(
                "limits: max_batch_bytes and max_blob_bytes must be at least 1024, max_batch_events at least 1".into(),
            ));
        }
        let s = &raw.session;
        if !(1..=24 * 30).contains(&s.ttl_hours)
            || s.max_failures == 0
            || !(1..=86_400).contains(&s.failure_window_s)
        {
            return Err(ConfigError::Invalid(
                "session: ttl_hours must be 1..=720, max_failures at least 1, failure_window_s 1..=86400".into(),
            ));
        }
        let web_root = raw.web_root.as_ref().map(RelativePathBuf::relative);
        if let Some(root) = &web_root
            && !root.join("index.html").is_file()
        {
            return Err(ConfigError::Invalid(format!(
                "web_root: {} holds no index.html; build the dashboard with `npm run build` in hub/web",
                root.display()
            )));
        }
        let registry_key = raw
            .registry_key
            .as_ref()
            .map(|k| SealKey::from_hex(k.expose()))
            .transpose()
            .map_err(|e| ConfigError::Invalid(format!("registry_key: {e}")))?;
        Ok(Config {
            listen: raw.listen,
            database_url: raw.database_url,
            reference_seed,
            map: raw.map,
            calendar,
            correlation: raw.correlation,
            deadlines: raw.deadlines,
            limits: raw.limits,
            session: raw.session,
            web_root,
            registry_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_settings_load() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/hub.example.toml");
        let config = Config::try_from(RawConfig::load(Some(&file)).unwrap()).unwrap();
        let rows: Vec<(Kind, usize)> = config
            .reference_seed
            .iter()
            .map(|f| (f.set.kind(), f.set.len()))
            .collect();
        assert_eq!(
            rows,
            [
                (Kind::Departments, 6),
                (Kind::Categories, 27),
                (Kind::Ownership, 6),
                (Kind::Areas, 8)
            ],
            "the example lists and area map, found next to the file"
        );
        assert_eq!(config.correlation.radius_m, 50.0);
    }

    #[test]
    fn bad_settings_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        for (text, key) in [
            ("listen = \"nowhere\"", "listen"),
            ("databse_url = \"sqlite:x\"", "databse_url"),
            (
                "[correlation]\nradius_m = -1.0\nwindow_hours = 1.0",
                "correlation",
            ),
            ("[calendar]\nutc_offset = \"CST\"", "utc_offset"),
            ("ownership_list = \"missing.toml\"", "missing.toml"),
            ("areas = \"missing.geojson\"", "missing.geojson"),
            ("departments = \"departments.xlsx\"", ".csv or a .toml"),
            ("areas = \"areas.csv\"", ".geojson"),
            (
                "[map]\ntile_url = \"https://tiles.example.org/{z}/{x}.png\"",
                "map.tile_url",
            ),
            (
                "[map]\ntile_url = \"ftp://t.example.org/{z}/{x}/{y}\"",
                "map.tile_url",
            ),
            ("[session]\nttl_hours = 0", "session"),
        ] {
            let file = dir.path().join("hub.toml");
            std::fs::write(&file, text).unwrap();
            let err = RawConfig::load(Some(&file))
                .and_then(Config::try_from)
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{err:?} should name {key:?}");
        }
    }

    #[test]
    fn the_tile_server_is_allowed_by_origin() {
        let map = |url: &str| MapSettings {
            tile_url: Some(url.into()),
            ..MapSettings::default()
        };
        assert_eq!(
            map("https://{s}.tile.example.org/{z}/{x}/{y}.png").tile_origin(),
            Some("https://*.tile.example.org".into())
        );
        assert_eq!(
            map("http://gis.county.local:8081/tiles/{z}/{x}/{y}").tile_origin(),
            Some("http://gis.county.local:8081".into())
        );
        assert_eq!(MapSettings::default().tile_origin(), None);
    }
}
