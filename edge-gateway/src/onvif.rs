//! ONVIF discovery for technicians on site: find the cameras on the local network
//! (WS-Discovery), ask each for what it is (maker, model, firmware, serial) and what it
//! streams (media profiles with codec, resolution, frame rate, stream and snapshot URIs),
//! and turn the answer into a camera entry for the hub's registry import in one step.
//! The protocol is the `oxvif` crate's; this module chooses what to ask and says what it
//! found, or why a device would not answer, in a technician's words. `DeviceReport::entry`
//! and the scope readers are the pure core; `find` and `inspect` do the I/O.

use std::net::IpAddr;
use std::time::Duration;

use futures::StreamExt;
use oxvif::discovery::{self, DiscoveredDevice};
use oxvif::soap::SoapError;
use oxvif::transport::TransportError;
use oxvif::types::VideoEncoding;
use oxvif::{OnvifError, OnvifSession};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use url::Url;

use crate::probe::split_credentials;

/// Where to look for devices.
#[derive(Debug, Clone)]
pub enum Target {
    /// A WS-Discovery probe to the multicast group on every local interface.
    Multicast,
    /// A WS-Discovery probe sent to one address (across subnets, where multicast does not
    /// reach).
    Host(IpAddr),
    /// A device service URL known already (`http://host/onvif/device_service`): no
    /// discovery.
    Device(Url),
}

/// A device that answered, before it is asked anything.
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    /// The device service URL the questions go to.
    pub device_url: String,
    /// The WS-Discovery endpoint (`urn:uuid:…`), when discovery found it.
    pub endpoint: Option<String>,
    /// The name and location the device advertises in its ONVIF scopes.
    pub name: Option<String>,
    pub location: Option<String>,
}

/// What one device said about itself.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceReport {
    #[serde(flatten)]
    pub found: Found,
    pub manufacturer: String,
    pub model: String,
    pub firmware: String,
    pub serial: String,
    pub profiles: Vec<Profile>,
}

/// One media profile: a stream the device offers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    pub token: String,
    pub name: String,
    /// `H264`, `H265`, `JPEG` or what the device calls it.
    pub encoding: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub frame_rate: Option<u32>,
    /// Without credentials, even where the device put them in.
    pub stream_uri: Option<String>,
    pub snapshot_uri: Option<String>,
}

impl Profile {
    /// A stream the gateway can analyse: H.264 or H.265 with a stream URI.
    fn usable(&self) -> bool {
        self.stream_uri.is_some() && matches!(self.encoding.as_deref(), Some("H264" | "H265"))
    }

    fn pixels(&self) -> u64 {
        u64::from(self.width.unwrap_or(0)) * u64::from(self.height.unwrap_or(0))
    }
}

/// Why a device would not answer, in the words a technician on site needs.
#[derive(Debug, thiserror::Error)]
pub enum OnvifProblem {
    #[error(
        "cannot reach the device service at {url}: {detail} (check the address and that ONVIF is enabled on the camera)"
    )]
    Unreachable { url: String, detail: String },
    #[error(
        "the device asks for a user name and password and none were given (--user, and the password in EDGE_CAMERA_PASSWORD)"
    )]
    CredentialsMissing,
    #[error(
        "the device refused the user name or password (check them, and that the camera's clock is within minutes of this one: ONVIF signs requests with the time)"
    )]
    CredentialsRefused,
    #[error("the device at {url} answered in a way this tool does not understand: {detail}")]
    Protocol { url: String, detail: String },
    #[error("cannot send a WS-Discovery probe on this machine's network: {0}")]
    Network(String),
}

/// The camera entry a report turns into: one row of the hub's registry import
/// (`POST /api/v1/registry/cameras`, the columns of `deploy/cameras.example.csv`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub id: String,
    pub gateway_id: String,
    pub name: String,
    pub url: String,
    pub sub_url: String,
    pub username: String,
    /// Never filled: the technician types it into the spreadsheet (or the hub's form).
    pub password: String,
    pub transport: &'static str,
    pub detect_fps: f64,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub area_code: String,
    pub grid: String,
    pub asset_code: String,
    pub model: String,
    pub rule: String,
    pub min_persons: String,
}

/// What the technician knows that the device does not.
#[derive(Debug, Clone, Default)]
pub struct EntryDefaults {
    pub gateway_id: String,
    pub username: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

impl DeviceReport {
    /// The main stream (the largest usable profile) and, when there is a smaller one at
    /// another URI, the sub-stream the gateway will analyse.
    pub fn main_and_sub(&self) -> Option<(&Profile, Option<&Profile>)> {
        let usable = || self.profiles.iter().filter(|p| p.usable());
        let main = usable().max_by_key(|p| p.pixels())?;
        let sub = usable()
            .filter(|p| p.pixels() < main.pixels() && p.stream_uri != main.stream_uri)
            .min_by_key(|p| p.pixels());
        Some((main, sub))
    }

    /// The registry entry for this device, or why it cannot be one (no H.264/H.265
    /// stream). The id comes from the serial number (`cam-<serial>`), the name from the
    /// advertised name or the model; location stays for the technician to fill in when
    /// not given.
    pub fn entry(&self, defaults: &EntryDefaults) -> Result<Entry, String> {
        let (main, sub) = self.main_and_sub().ok_or_else(|| {
            format!(
                "{} offers no H.264 or H.265 stream the gateway can analyse ({} profiles: {})",
                self.found.device_url,
                self.profiles.len(),
                self.profiles
                    .iter()
                    .map(|p| format!("{} {}", p.name, p.encoding.as_deref().unwrap_or("?")))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        let stream = |p: &Profile| p.stream_uri.clone().unwrap_or_default();
        let name = self.found.name.clone().unwrap_or_else(|| {
            format!("{} {}", self.manufacturer, self.model)
                .trim()
                .to_owned()
        });
        Ok(Entry {
            id: camera_id(&self.serial, self.found.endpoint.as_deref()),
            gateway_id: defaults.gateway_id.clone(),
            name,
            url: stream(main),
            sub_url: sub.map(stream).unwrap_or_default(),
            username: defaults.username.clone().unwrap_or_default(),
            password: String::new(),
            transport: "tcp",
            detect_fps: 2.0,
            lat: defaults.lat,
            lon: defaults.lon,
            area_code: String::new(),
            grid: String::new(),
            asset_code: String::new(),
            model: String::new(),
            rule: String::new(),
            min_persons: String::new(),
        })
    }
}

/// `cam-` and the serial number (or the discovery endpoint's UUID), lower case, in the
/// letters registry ids allow.
fn camera_id(serial: &str, endpoint: Option<&str>) -> String {
    let source = if serial.trim().is_empty() {
        endpoint
            .map(|e| e.trim_start_matches("urn:").trim_start_matches("uuid:"))
            .unwrap_or("unknown")
    } else {
        serial.trim()
    };
    let mut id = String::from("cam-");
    for c in source.chars() {
        match c {
            'a'..='z' | '0'..='9' | '-' | '_' => id.push(c),
            'A'..='Z' => id.push(c.to_ascii_lowercase()),
            _ if !id.ends_with('-') => id.push('-'),
            _ => {}
        }
    }
    id.truncate(64);
    id.trim_end_matches('-').to_owned()
}

/// The value of an ONVIF scope such as `onvif://www.onvif.org/name/Gate%20East`, decoded.
fn scope(scopes: &[String], kind: &str) -> Option<String> {
    let prefix = format!("onvif://www.onvif.org/{kind}/");
    scopes.iter().find_map(|s| {
        let value = s.strip_prefix(&prefix)?;
        let decoded = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
        Some(decoded.trim().to_owned()).filter(|v| !v.is_empty())
    })
}

impl Found {
    fn from_discovery(device: &DiscoveredDevice) -> Option<Self> {
        // A device may list several addresses (IPv4, IPv6, host names): the first HTTP one.
        let device_url = device
            .xaddrs
            .iter()
            .find(|x| x.starts_with("http://") || x.starts_with("https://"))?;
        Some(Found {
            device_url: device_url.clone(),
            endpoint: Some(device.endpoint.clone()).filter(|e| !e.is_empty()),
            name: scope(&device.scopes, "name"),
            location: scope(&device.scopes, "location"),
        })
    }
}

/// The devices at `target`. WS-Discovery listens for `wait` (in two rounds for multicast,
/// as cameras drop a first probe on busy networks); a device URL is taken as given.
pub async fn find(target: &Target, wait: Duration) -> Result<Vec<Found>, OnvifProblem> {
    let discovered = match target {
        Target::Device(url) => {
            return Ok(vec![Found {
                device_url: url.to_string(),
                endpoint: None,
                name: None,
                location: None,
            }]);
        }
        Target::Host(ip) => discovery::probe_unicast(*ip, wait).await,
        Target::Multicast => {
            let network = |e: std::io::Error| OnvifProblem::Network(e.to_string());
            let mut all = discovery::probe_result(wait / 2).await.map_err(network)?;
            all.extend(discovery::probe_result(wait / 2).await.map_err(network)?);
            all
        }
    };
    let mut found: Vec<Found> = discovered
        .iter()
        .filter_map(Found::from_discovery)
        .collect();
    found.sort_by(|a, b| a.device_url.cmp(&b.device_url));
    found.dedup_by(|a, b| a.device_url == b.device_url);
    Ok(found)
}

/// Every device at `target` that answered, and those that would not, with why.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub devices: Vec<DeviceReport>,
    pub failed: Vec<Failed>,
}

#[derive(Debug, Serialize)]
pub struct Failed {
    #[serde(flatten)]
    pub found: Found,
    pub error: String,
}

/// Finds the devices at `target` and asks each (a few at a time) what it is and streams.
pub async fn discover(
    target: &Target,
    wait: Duration,
    credentials: Option<&(String, SecretString)>,
) -> Result<Outcome, OnvifProblem> {
    let found = find(target, wait).await?;
    let answers: Vec<_> = futures::stream::iter(found)
        .map(|f| async move { (f.clone(), inspect(f, credentials).await) })
        .buffer_unordered(8)
        .collect()
        .await;
    let mut outcome = Outcome {
        devices: Vec::new(),
        failed: Vec::new(),
    };
    for (found, answer) in answers {
        match answer {
            Ok(report) => outcome.devices.push(report),
            Err(e) => outcome.failed.push(Failed {
                found,
                error: e.to_string(),
            }),
        }
    }
    outcome
        .devices
        .sort_by(|a, b| a.found.device_url.cmp(&b.found.device_url));
    outcome
        .failed
        .sort_by(|a, b| a.found.device_url.cmp(&b.found.device_url));
    Ok(outcome)
}

/// Asks one device what it is and what it streams.
pub async fn inspect(
    found: Found,
    credentials: Option<&(String, SecretString)>,
) -> Result<DeviceReport, OnvifProblem> {
    let url = found.device_url.clone();
    let explain = |e: OnvifError| explain(e, &url, credentials.is_some());
    let mut builder = OnvifSession::builder(&url).with_clock_sync();
    if let Some((user, password)) = credentials {
        builder = builder.with_credentials(user, password.expose_secret());
    }
    let session = builder.build().await.map_err(explain)?;
    let info = session.get_device_info().await.map_err(explain)?;
    let mut found = found;
    if found.name.is_none()
        && let Ok(scopes) = session.get_scopes().await
    {
        found.name = scope(&scopes, "name");
        found.location = found.location.or_else(|| scope(&scopes, "location"));
    }
    let mut profiles = Vec::new();
    for p in session.get_profiles().await.map_err(explain)? {
        let encoder = match &p.video_encoder_token {
            Some(token) => session.get_video_encoder_configuration(token).await.ok(),
            None => None,
        };
        // A profile without a stream (an audio-only or metadata profile) is still listed.
        let stream_uri = session.get_stream_uri(&p.token).await.ok().map(|s| s.uri);
        let snapshot_uri = session.get_snapshot_uri(&p.token).await.ok().map(|s| s.uri);
        profiles.push(Profile {
            encoding: encoder.as_ref().map(|e| encoding_name(&e.encoding)),
            width: encoder.as_ref().map(|e| e.resolution.width),
            height: encoder.as_ref().map(|e| e.resolution.height),
            frame_rate: encoder
                .as_ref()
                .and_then(|e| e.rate_control.as_ref())
                .map(|r| r.frame_rate_limit)
                .filter(|&f| f > 0),
            stream_uri: stream_uri.map(|u| strip_credentials(&u)),
            snapshot_uri: snapshot_uri.map(|u| strip_credentials(&u)),
            token: p.token,
            name: p.name,
        });
    }
    Ok(DeviceReport {
        found,
        manufacturer: info.manufacturer,
        model: info.model,
        firmware: info.firmware_version,
        serial: info.serial_number,
        profiles,
    })
}

fn encoding_name(e: &VideoEncoding) -> String {
    match e {
        VideoEncoding::Jpeg => "JPEG".to_owned(),
        VideoEncoding::H264 => "H264".to_owned(),
        VideoEncoding::H265 => "H265".to_owned(),
        VideoEncoding::Other(name) => name.clone(),
    }
}

/// Some devices return stream URIs with `user:password@` in them: never shown or stored.
fn strip_credentials(uri: &str) -> String {
    match Url::parse(uri) {
        Ok(url) if url.scheme().starts_with("rtsp") => split_credentials(url, None, None)
            .map(|(url, _)| url.to_string())
            .unwrap_or_else(|_| uri.to_owned()),
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string()
        }
        Err(_) => uri.to_owned(),
    }
}

fn explain(e: OnvifError, url: &str, credentials_given: bool) -> OnvifProblem {
    let refused = || {
        if credentials_given {
            OnvifProblem::CredentialsRefused
        } else {
            OnvifProblem::CredentialsMissing
        }
    };
    match e {
        OnvifError::Transport(TransportError::HttpStatus { status: 401, .. }) => refused(),
        OnvifError::Soap(SoapError::Fault {
            ref subcode,
            ref reason,
            ..
        }) if is_refusal(subcode.as_deref(), reason) => refused(),
        OnvifError::Transport(TransportError::Http(e)) => OnvifProblem::Unreachable {
            url: url.to_owned(),
            detail: error_chain(&e),
        },
        other => OnvifProblem::Protocol {
            url: url.to_owned(),
            detail: other.to_string(),
        },
    }
}

/// A SOAP fault that means "who are you?": `ter:NotAuthorized`, or a WS-Security failure
/// that devices word in their own way ("Sender not Authorized", "Password digest mismatch").
fn is_refusal(subcode: Option<&str>, reason: &str) -> bool {
    let reason = reason.to_lowercase();
    subcode.is_some_and(|s| s.ends_with("NotAuthorized") || s.ends_with("FailedAuthentication"))
        || ["authoriz", "authentic", "password", "credential"]
            .iter()
            .any(|word| reason.contains(word))
}

/// An error and its causes on one line (reqwest's own message is only "error sending
/// request").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.join(": ")
}

/// A report for a terminal.
pub fn describe(report: &DeviceReport) -> String {
    let mut out = format!(
        "设备 device: {}\n  厂商型号 maker/model: {} {}\n  固件 firmware: {}\n  序列号 serial: {}\n",
        report.found.device_url, report.manufacturer, report.model, report.firmware, report.serial
    );
    if let Some(name) = &report.found.name {
        out += &format!("  名称 name: {name}\n");
    }
    if let Some(location) = &report.found.location {
        out += &format!("  位置 location: {location}\n");
    }
    for p in &report.profiles {
        let size = match (p.width, p.height) {
            (Some(w), Some(h)) => format!("{w}x{h}"),
            _ => "?".to_owned(),
        };
        let fps = p
            .frame_rate
            .map(|f| format!(" {f} fps"))
            .unwrap_or_default();
        out += &format!(
            "  码流 profile {} ({}): {} {size}{fps}\n",
            p.name,
            p.token,
            p.encoding.as_deref().unwrap_or("?")
        );
        if let Some(uri) = &p.stream_uri {
            out += &format!("    stream:   {uri}\n");
        }
        if let Some(uri) = &p.snapshot_uri {
            out += &format!("    snapshot: {uri}\n");
        }
    }
    out
}

/// The entries as CSV with the registry import's header.
pub fn entries_csv(entries: &[Entry]) -> Result<String, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for entry in entries {
        writer.serialize(entry)?;
    }
    let bytes = writer.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8(bytes).expect("CSV of UTF-8 fields is UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(name: &str, encoding: &str, width: u32, height: u32) -> Profile {
        Profile {
            token: format!("tok-{name}"),
            name: name.to_owned(),
            encoding: Some(encoding.to_owned()),
            width: Some(width),
            height: Some(height),
            frame_rate: Some(25),
            stream_uri: Some(format!("rtsp://192.0.2.7:554/{name}")),
            snapshot_uri: None,
        }
    }

    fn report(profiles: Vec<Profile>) -> DeviceReport {
        DeviceReport {
            found: Found {
                device_url: "http://192.0.2.7/onvif/device_service".to_owned(),
                endpoint: Some("urn:uuid:1b2c3d4e-0000-1111-2222-333344445555".to_owned()),
                name: Some("集市东口 Market East".to_owned()),
                location: None,
            },
            manufacturer: "Hikvision".to_owned(),
            model: "DS-2CD2T47G2".to_owned(),
            firmware: "V5.7.3".to_owned(),
            serial: "DS-2CD2T47G2-L20231101AAWRJ12345678".to_owned(),
            profiles,
        }
    }

    #[test]
    fn the_largest_stream_is_main_and_the_smallest_is_analysed() {
        let r = report(vec![
            profile("sub", "H264", 640, 360),
            profile("main", "H265", 2560, 1440),
            profile("third", "H264", 1280, 720),
            profile("mjpeg", "JPEG", 3840, 2160),
        ]);
        let entry = r
            .entry(&EntryDefaults {
                gateway_id: "gw-1".to_owned(),
                username: Some("viewer".to_owned()),
                lat: Some(30.27),
                lon: None,
            })
            .unwrap();
        assert_eq!(entry.url, "rtsp://192.0.2.7:554/main");
        assert_eq!(entry.sub_url, "rtsp://192.0.2.7:554/sub");
        assert_eq!(entry.id, "cam-ds-2cd2t47g2-l20231101aawrj12345678");
        assert_eq!(entry.name, "集市东口 Market East");
        assert_eq!(entry.username, "viewer");
        assert_eq!((entry.lat, entry.lon), (Some(30.27), None));
        assert!(entry.password.is_empty());
        let csv = entries_csv(&[entry]).unwrap();
        assert!(csv.starts_with(
            "id,gateway_id,name,url,sub_url,username,password,transport,detect_fps,lat,lon,area_code,grid,asset_code,model,rule,min_persons\n"
        ));
    }

    #[test]
    fn a_single_stream_has_no_sub_stream_and_none_usable_is_explained() {
        let one = report(vec![profile("only", "H264", 1920, 1080)]);
        let (main, sub) = one.main_and_sub().unwrap();
        assert_eq!((main.name.as_str(), sub), ("only", None));

        let mut same = profile("same", "H264", 640, 360);
        same.stream_uri.clone_from(&one.profiles[0].stream_uri);
        let two = report(vec![one.profiles[0].clone(), same]);
        assert_eq!(
            two.main_and_sub().unwrap().1,
            None,
            "one URI is not two streams"
        );

        let mjpeg = report(vec![profile("mjpeg", "JPEG", 1920, 1080)]);
        let err = mjpeg.entry(&EntryDefaults::default()).unwrap_err();
        assert!(
            err.contains("no H.264 or H.265") && err.contains("mjpeg JPEG"),
            "{err}"
        );
    }

    #[test]
    fn ids_come_from_the_serial_or_else_the_endpoint() {
        assert_eq!(camera_id(" AB 12/x ", None), "cam-ab-12-x");
        assert_eq!(
            camera_id("", Some("urn:uuid:1B2C-33")),
            "cam-1b2c-33",
            "the discovery UUID when the serial is empty"
        );
        assert_eq!(camera_id("", None), "cam-unknown");
        assert!(camera_id(&"x".repeat(200), None).len() <= 64);
    }

    #[test]
    fn scopes_give_the_advertised_name_and_location() {
        let scopes = vec![
            "onvif://www.onvif.org/type/video_encoder".to_owned(),
            "onvif://www.onvif.org/name/Gate%20East".to_owned(),
            "onvif://www.onvif.org/location/city/Hangzhou".to_owned(),
        ];
        assert_eq!(scope(&scopes, "name").as_deref(), Some("Gate East"));
        assert_eq!(scope(&scopes, "location").as_deref(), Some("city/Hangzhou"));
        assert_eq!(scope(&scopes, "hardware"), None);
    }

    #[test]
    fn authentication_faults_are_told_from_other_faults() {
        assert!(is_refusal(
            Some("ter:NotAuthorized"),
            "Sender not Authorized"
        ));
        assert!(is_refusal(None, "Password digest mismatch"));
        assert!(is_refusal(Some("wsse:FailedAuthentication"), ""));
        assert!(!is_refusal(Some("ter:NoProfile"), "Profile not found"));
    }

    #[test]
    fn credentials_in_returned_uris_are_dropped() {
        assert_eq!(
            strip_credentials("rtsp://admin:s3cret@192.0.2.7:554/Streaming/Channels/101"),
            "rtsp://192.0.2.7:554/Streaming/Channels/101"
        );
        assert_eq!(
            strip_credentials("http://admin:s3cret@192.0.2.7/snap.jpg"),
            "http://192.0.2.7/snap.jpg"
        );
        assert_eq!(strip_credentials("not a url"), "not a url");
    }
}
