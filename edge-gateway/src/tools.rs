//! The on-site tools on the gateway's local API, for a technician's laptop or phone on the
//! township network: the RTSP probe and ONVIF discovery of the command line (`probe`,
//! `onvif`), run by the gateway itself, where the cameras are reachable.
//! - `POST /api/v1/tools/probe` `{url, username?, password?, tcp?, seconds?}`: the probe's
//!   report with the snapshot as base64 JPEG; 502 with the reason when the camera fails;
//! - `POST /api/v1/tools/discover` `{host?, device?, username?, password?, seconds?}`: the
//!   devices found, those that would not answer, and each as a registry import row for this
//!   gateway (`entries`).
//!
//! Both make the gateway connect where it is told, so they need the technician's bearer
//! token (`[api] token`, better `EDGE_API__TOKEN`); without one set they are off (403).
//! Passwords come in the body, never in a URL, and are in no answer or log. Two tool runs at
//! a time; more wait.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use url::Url;

use crate::onvif::{self, EntryDefaults, Target};
use crate::probe::{self, ProbeRequest};

/// The longest a probe may watch a stream.
const MAX_WATCH_S: u64 = 30;
/// The longest discovery may listen.
const MAX_LISTEN_S: u64 = 10;

pub struct Tools {
    pub gateway_id: String,
    /// The technician's token; `None`: the tools are off.
    pub token: Option<SecretString>,
    running: Semaphore,
}

impl Tools {
    pub fn new(gateway_id: String, token: Option<SecretString>) -> Self {
        Self {
            gateway_id,
            token,
            running: Semaphore::new(2),
        }
    }
}

pub fn router(tools: Arc<Tools>) -> Router {
    Router::new()
        .route("/api/v1/tools/probe", post(probe_camera))
        .route("/api/v1/tools/discover", post(discover))
        .with_state(tools)
}

/// A tool's refusal or failure: the status and what to tell the technician.
pub struct ToolError(StatusCode, String);

impl ToolError {
    fn invalid(message: impl Into<String>) -> Self {
        Self(StatusCode::UNPROCESSABLE_ENTITY, message.into())
    }
}

impl IntoResponse for ToolError {
    fn into_response(self) -> Response {
        let mut resp = (self.0, Json(json!({ "error": self.1 }))).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

/// The caller holds the technician's token.
fn authorise(tools: &Tools, headers: &HeaderMap) -> Result<(), ToolError> {
    let Some(token) = &tools.token else {
        return Err(ToolError(
            StatusCode::FORBIDDEN,
            "the on-site tools are off on this gateway: set [api] token (EDGE_API__TOKEN)".into(),
        ));
    };
    if crate::api::bearer_matches(headers, token) {
        Ok(())
    } else {
        Err(ToolError(
            StatusCode::UNAUTHORIZED,
            "a technician's bearer token is needed (Authorization: Bearer …)".into(),
        ))
    }
}

/// A JSON body, or 422 naming what is wrong with it.
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ToolError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de)
        .map_err(|e| ToolError::invalid(format!("{}: {}", e.path(), e.inner())))
}

/// The body's `seconds` (3 when not given), at most `max`.
fn seconds(given: Option<u64>, max: u64) -> Result<Duration, ToolError> {
    let seconds = given.unwrap_or(3);
    if !(1..=max).contains(&seconds) {
        return Err(ToolError::invalid(format!("seconds: must be 1..={max}")));
    }
    Ok(Duration::from_secs(seconds))
}

fn credentials(
    username: Option<String>,
    password: Option<String>,
) -> Result<Option<(String, SecretString)>, ToolError> {
    match (username, password) {
        (Some(user), Some(password)) => Ok(Some((user, SecretString::from(password)))),
        (None, None) => Ok(None),
        _ => Err(ToolError::invalid("username and password go together")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbeBody {
    url: String,
    username: Option<String>,
    password: Option<String>,
    #[serde(default)]
    tcp: bool,
    seconds: Option<u64>,
}

async fn probe_camera(
    State(tools): State<Arc<Tools>>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Result<Json<Value>, ToolError> {
    authorise(&tools, &headers)?;
    let request = probe_request(&bytes)?;
    let _turn = tools.running.acquire().await;
    ffmpeg_next::init()
        .map_err(|e| ToolError(StatusCode::INTERNAL_SERVER_ERROR, format!("FFmpeg: {e}")))?;
    // A failure is the camera's answer, not the caller's mistake: 502.
    let report = probe::probe(&request)
        .await
        .map_err(|e| ToolError(StatusCode::BAD_GATEWAY, e.to_string()))?;
    let snapshot = report.snapshot.as_deref().map(|jpeg| STANDARD.encode(jpeg));
    Ok(Json(
        json!({ "report": report, "snapshot_jpeg_base64": snapshot }),
    ))
}

fn probe_request(bytes: &[u8]) -> Result<ProbeRequest, ToolError> {
    let b: ProbeBody = body(bytes)?;
    let url = Url::parse(&b.url).map_err(|e| ToolError::invalid(format!("url: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ToolError::invalid(
            "url: give the user name and password as username and password, not in the URL",
        ));
    }
    let watch = seconds(b.seconds, MAX_WATCH_S)?;
    let credentials = credentials(b.username, b.password)?;
    let (url, _) = probe::split_credentials(url, None, None)
        .map_err(|m| ToolError::invalid(format!("url: {m}")))?;
    Ok(ProbeRequest {
        url,
        credentials,
        tcp: b.tcp,
        watch,
        timeout: Duration::from_secs(10),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiscoverBody {
    host: Option<IpAddr>,
    device: Option<String>,
    username: Option<String>,
    password: Option<String>,
    seconds: Option<u64>,
}

async fn discover(
    State(tools): State<Arc<Tools>>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Result<Json<Value>, ToolError> {
    authorise(&tools, &headers)?;
    let b: DiscoverBody = body(&bytes)?;
    let target = match (b.device, b.host) {
        (Some(_), Some(_)) => {
            return Err(ToolError::invalid(
                "host and device: give one, or neither for the whole network",
            ));
        }
        (Some(url), None) => match Url::parse(&url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Target::Device(url),
            _ => {
                return Err(ToolError::invalid(format!(
                    "device: {url:?} is not an http(s) device service URL"
                )));
            }
        },
        (None, Some(ip)) => Target::Host(ip),
        (None, None) => Target::Multicast,
    };
    let listen = seconds(b.seconds, MAX_LISTEN_S)?;
    let credentials = credentials(b.username, b.password)?;
    let _turn = tools.running.acquire().await;
    let outcome = onvif::discover(&target, listen, credentials.as_ref())
        .await
        .map_err(|e| ToolError(StatusCode::BAD_GATEWAY, e.to_string()))?;
    // The cameras' places are the technician's to fill in, not guessed.
    let defaults = EntryDefaults {
        gateway_id: tools.gateway_id.clone(),
        username: credentials.map(|(user, _)| user),
        lat: None,
        lon: None,
    };
    let entries: Vec<_> = outcome
        .devices
        .iter()
        .map(|d| match d.entry(&defaults) {
            Ok(entry) => json!({ "device_url": d.found.device_url, "entry": entry }),
            Err(why) => json!({ "device_url": d.found.device_url, "error": why }),
        })
        .collect();
    Ok(Json(json!({
        "devices": outcome.devices,
        "failed": outcome.failed,
        "entries": entries,
    })))
}
