//! The on-site RTSP probe: connect to a camera as the gateway would, watch its stream for a
//! few seconds and report what a technician needs — codec, resolution, frame rate, key
//! frame interval, transport, time to first frame — with a JPEG snapshot, or say in plain
//! words why it failed (unreachable, wrong credentials, wrong path, unsupported codec, no
//! frames). `FrameStats` is the pure core; `probe` does the I/O.

use std::time::{Duration, Instant};

use futures::StreamExt;
use retina::codec::{CodecItem, ParametersRef};
use secrecy::SecretString;
use serde::Serialize;
use url::Url;

use crate::pipeline::decode::{self, Codec};
use crate::pipeline::snapshot;
use crate::rtsp::{self, OpenError, first_line};

/// What to probe and for how long.
pub struct ProbeRequest {
    /// Without credentials in it (see `split_credentials`).
    pub url: Url,
    pub credentials: Option<(String, SecretString)>,
    pub tcp: bool,
    /// How long to watch the stream after its first frame.
    pub watch: Duration,
    /// The limit for each RTSP step and for the first frame.
    pub timeout: Duration,
}

#[derive(Debug, Serialize)]
pub struct ProbeReport {
    /// The URL probed, without credentials.
    pub url: String,
    /// The user name given to the camera, if any.
    pub user: Option<String>,
    /// `tcp` (interleaved) or `udp`.
    pub transport: &'static str,
    pub codec: &'static str,
    pub width: u32,
    pub height: u32,
    /// Frames per second measured from the stream's timestamps.
    pub frame_rate: Option<f64>,
    /// The frame rate the stream's parameters declare, when they do.
    pub declared_frame_rate: Option<f64>,
    pub keyframe_interval: Option<KeyframeInterval>,
    pub time_to_first_frame_ms: u64,
    /// Frames received while watching.
    pub frames: u64,
    /// The first decoded picture as JPEG.
    #[serde(skip)]
    pub snapshot: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KeyframeInterval {
    pub frames: f64,
    pub seconds: f64,
}

/// Why a probe failed, in the words a technician on site needs.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(
        "cannot reach the camera at {address}: {detail} (check the address, the port — 554 unless the camera says otherwise — and that the camera is powered and on this network)"
    )]
    Unreachable { address: String, detail: String },
    #[error(
        "the camera asks for a user name and password (401) and none were given (--user, or in the URL)"
    )]
    CredentialsMissing,
    #[error("the camera refused the user name or password (401)")]
    CredentialsRefused,
    #[error(
        "the camera has no stream at this path (404) — Hikvision: /Streaming/Channels/101 (main) or 102 (sub); Dahua: /cam/realmonitor?channel=1&subtype=0 (main) or 1 (sub)"
    )]
    NotFound,
    #[error("the camera answered {status} to {step}: {detail}")]
    Refused {
        step: &'static str,
        status: u16,
        detail: String,
    },
    #[error(
        "the camera offers no H.264 or H.265 video (offered: {}); set the camera's encoder to H.264 or H.265",
        .offered.join(", ")
    )]
    UnsupportedCodec { offered: Vec<String> },
    #[error(
        "connected, but no video frame arrived within {} s{}",
        .waited.as_secs(),
        if *.tcp { "" } else { " (UDP may be blocked on the way: try TCP)" }
    )]
    NoFrames { waited: Duration, tcp: bool },
    #[error("{step} timed out after {} s (the camera accepted the connection but did not answer)", .after.as_secs())]
    Timeout { step: &'static str, after: Duration },
    #[error("the stream failed: {0}")]
    Stream(String),
}

impl ProbeError {
    fn from_open(e: OpenError, url: &Url, credentials_given: bool) -> Self {
        match e {
            OpenError::Timeout { step, after } => Self::Timeout { step, after },
            OpenError::NoVideo { offered } => Self::UnsupportedCodec { offered },
            OpenError::Rtsp { step, source } => match source.status_code() {
                Some(401) if credentials_given => Self::CredentialsRefused,
                Some(401) => Self::CredentialsMissing,
                Some(404) => Self::NotFound,
                Some(status) => Self::Refused {
                    step,
                    status,
                    detail: first_line(&source),
                },
                None if source.to_string().starts_with("Unable to connect") => Self::Unreachable {
                    address: format!(
                        "{}:{}",
                        url.host_str().unwrap_or("?"),
                        url.port().unwrap_or(554)
                    ),
                    detail: first_line(&source)
                        .trim_start_matches("Unable to connect to RTSP server: ")
                        .to_owned(),
                },
                None => Self::Stream(first_line(&source)),
            },
        }
    }
}

/// Moves a user name and password written into the URL (`rtsp://user:pass@host/…`, as
/// vendors document them) out of it; `user` and `password` given separately win.
pub fn split_credentials(
    mut url: Url,
    user: Option<String>,
    password: Option<SecretString>,
) -> Result<(Url, Option<(String, SecretString)>), String> {
    if url.scheme() != "rtsp" && url.scheme() != "rtsps" {
        return Err(format!(
            "not an RTSP URL (scheme {:?}); it starts rtsp://",
            url.scheme()
        ));
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| "the URL's user name or password is not UTF-8".to_owned())
    };
    let in_url_user = Some(url.username()).filter(|u| !u.is_empty()).map(decode);
    let in_url_password = url.password().map(decode);
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let user = match (user, in_url_user) {
        (Some(u), _) => Some(u),
        (None, Some(u)) => Some(u?),
        (None, None) => None,
    };
    let password = match (password, in_url_password) {
        (Some(p), _) => Some(p),
        (None, Some(p)) => Some(SecretString::from(p?)),
        (None, None) => None,
    };
    match (user, password) {
        (Some(u), p) => {
            let p = p.unwrap_or_else(|| SecretString::from(""));
            Ok((url, Some((u, p))))
        }
        (None, Some(_)) => Err("a password was given without a user name".into()),
        (None, None) => Ok((url, None)),
    }
}

fn without_credentials(url: &Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.into()
}

/// Frame timing and key frames seen on a stream, by RTP timestamp (seconds).
#[derive(Debug, Default)]
pub struct FrameStats {
    first: Option<f64>,
    last: Option<f64>,
    frames: u64,
    /// Positions (frame number, time) of the key frames.
    keyframes: Vec<(u64, f64)>,
}

impl FrameStats {
    pub fn push(&mut self, at_secs: f64, keyframe: bool) {
        self.first.get_or_insert(at_secs);
        self.last = Some(at_secs);
        if keyframe {
            self.keyframes.push((self.frames, at_secs));
        }
        self.frames += 1;
    }

    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Frames per second over the span watched; needs two frames with time between them.
    pub fn frame_rate(&self) -> Option<f64> {
        let span = self.last? - self.first?;
        (self.frames >= 2 && span > 0.0).then(|| (self.frames - 1) as f64 / span)
    }

    /// The mean distance between consecutive key frames; needs two key frames.
    pub fn keyframe_interval(&self) -> Option<KeyframeInterval> {
        let (first, last) = (self.keyframes.first()?, self.keyframes.last()?);
        let gaps = (self.keyframes.len() - 1) as f64;
        (gaps > 0.0).then(|| KeyframeInterval {
            frames: (last.0 - first.0) as f64 / gaps,
            seconds: (last.1 - first.1) / gaps,
        })
    }
}

/// Connects, watches the stream for `request.watch` after its first frame and decodes one
/// picture for the snapshot.
pub async fn probe(request: &ProbeRequest) -> Result<ProbeReport, ProbeError> {
    let started = Instant::now();
    let credentials_given = request.credentials.is_some();
    let opened = rtsp::open(
        &request.url,
        request.credentials.as_ref(),
        request.tcp,
        request.timeout,
    )
    .await
    .map_err(|e| ProbeError::from_open(e, &request.url, credentials_given))?;
    let (mut stream, codec, index) = (opened.stream, opened.codec, opened.index);

    let mut stats = FrameStats::default();
    let mut first_frame_at = None;
    // Access units from the first key frame until a picture decodes (the snapshot).
    let mut for_snapshot: Vec<Vec<u8>> = Vec::new();
    let mut snapshot_done = false;
    let mut snapshot = None;
    loop {
        let limit = match first_frame_at {
            None => request.timeout,
            Some(at) => match request.watch.checked_sub(Instant::now().duration_since(at)) {
                Some(left) if !left.is_zero() => left,
                _ => break,
            },
        };
        let item = match tokio::time::timeout(limit, stream.next()).await {
            Err(_) if first_frame_at.is_none() => {
                return Err(ProbeError::NoFrames {
                    waited: request.timeout,
                    tcp: request.tcp,
                });
            }
            Err(_) | Ok(None) => break,
            Ok(Some(Err(e))) if first_frame_at.is_none() => {
                return Err(ProbeError::Stream(first_line(&e)));
            }
            Ok(Some(Err(_))) => break,
            Ok(Some(Ok(item))) => item,
        };
        let CodecItem::VideoFrame(frame) = item else {
            continue;
        };
        first_frame_at.get_or_insert_with(Instant::now);
        let keyframe = frame.is_random_access_point();
        stats.push(frame.timestamp().elapsed_secs(), keyframe);
        if !snapshot_done && (keyframe || !for_snapshot.is_empty()) {
            for_snapshot.push(frame.into_data());
            if let Some(picture) = decode_picture(codec, &for_snapshot).await {
                snapshot = Some(picture);
                snapshot_done = true;
                for_snapshot.clear();
            } else if for_snapshot.len() > 300 {
                snapshot_done = true;
                for_snapshot.clear();
            }
        }
    }
    let time_to_first_frame = first_frame_at
        .map(|at| at.duration_since(started))
        .unwrap_or_default();

    let params = stream.streams()[index].parameters();
    let (declared_size, declared_frame_rate) = match params {
        Some(ParametersRef::Video(v)) => (
            Some(v.pixel_dimensions()),
            v.frame_rate()
                .filter(|(num, _)| *num > 0)
                .map(|(num, den)| den as f64 / num as f64),
        ),
        _ => (None, None),
    };
    let (width, height) = snapshot
        .as_ref()
        .map(|(w, h, _)| (*w, *h))
        .or(declared_size)
        .unwrap_or_default();
    let jpeg = match snapshot {
        Some((w, h, bgr)) => snapshot::render(&bgr, w, h, &[]).map(|blob| blob.data).ok(),
        None => None,
    };
    Ok(ProbeReport {
        url: without_credentials(&request.url),
        user: request.credentials.as_ref().map(|(u, _)| u.clone()),
        transport: if request.tcp { "tcp" } else { "udp" },
        codec: match codec {
            Codec::H264 => "H.264",
            Codec::H265 => "H.265",
        },
        width,
        height,
        frame_rate: stats.frame_rate(),
        declared_frame_rate,
        keyframe_interval: stats.keyframe_interval(),
        time_to_first_frame_ms: time_to_first_frame.as_millis() as u64,
        frames: stats.frames(),
        snapshot: jpeg,
    })
}

/// The report as lines for a terminal, Chinese first with English.
pub fn describe(report: &ProbeReport) -> String {
    let fps = |f: Option<f64>| f.map_or_else(|| "unknown".to_owned(), |f| format!("{f:.1} fps"));
    let keyframes = report.keyframe_interval.map_or_else(
        || "not seen twice while watching".to_owned(),
        |k| format!("every {:.0} frames ({:.1} s)", k.frames, k.seconds),
    );
    format!(
        "地址 URL: {}{}\n\
         传输 transport: {}\n\
         编码 codec: {}\n\
         分辨率 resolution: {}x{}\n\
         帧率 frame rate: {} (declared {})\n\
         关键帧间隔 keyframe interval: {}\n\
         首帧时间 time to first frame: {} ms\n\
         帧数 frames watched: {}\n",
        report.url,
        report
            .user
            .as_ref()
            .map_or_else(String::new, |u| format!(" (user {u})")),
        report.transport.to_uppercase(),
        report.codec,
        report.width,
        report.height,
        fps(report.frame_rate),
        fps(report.declared_frame_rate),
        keyframes,
        report.time_to_first_frame_ms,
        report.frames,
    )
}

/// Tries to decode a picture from the access units so far (on a blocking thread).
async fn decode_picture(codec: Codec, frames: &[Vec<u8>]) -> Option<(u32, u32, Vec<u8>)> {
    let frames = frames.to_vec();
    tokio::task::spawn_blocking(move || decode::first_picture(codec, &frames))
        .await
        .ok()?
        .ok()?
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn frame_rate_and_keyframe_interval_come_from_timestamps() {
        let mut stats = FrameStats::default();
        // 25 fps, a key frame every 50 frames, 4 s.
        for i in 0..=100u64 {
            stats.push(i as f64 / 25.0, i % 50 == 0);
        }
        assert_eq!(stats.frames(), 101);
        assert!((stats.frame_rate().unwrap() - 25.0).abs() < 1e-9);
        let kf = stats.keyframe_interval().unwrap();
        assert_eq!(kf.frames, 50.0);
        assert!((kf.seconds - 2.0).abs() < 1e-9);
    }

    #[test]
    fn too_little_stream_gives_no_figures() {
        let mut stats = FrameStats::default();
        assert_eq!(stats.frame_rate(), None);
        stats.push(1.0, true);
        assert_eq!(stats.frame_rate(), None);
        assert_eq!(
            stats.keyframe_interval(),
            None,
            "one key frame has no interval"
        );
        stats.push(1.0, false);
        assert_eq!(stats.frame_rate(), None, "no time between the frames");
    }

    #[test]
    fn the_description_names_every_figure() {
        let report = ProbeReport {
            url: "rtsp://cam/x".into(),
            user: Some("admin".into()),
            transport: "tcp",
            codec: "H.264",
            width: 1920,
            height: 1080,
            frame_rate: Some(24.96),
            declared_frame_rate: None,
            keyframe_interval: Some(KeyframeInterval {
                frames: 50.0,
                seconds: 2.0,
            }),
            time_to_first_frame_ms: 820,
            frames: 125,
            snapshot: None,
        };
        let text = describe(&report);
        for expected in [
            "rtsp://cam/x (user admin)",
            "TCP",
            "H.264",
            "1920x1080",
            "25.0 fps (declared unknown)",
            "every 50 frames (2.0 s)",
            "820 ms",
            "125",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from:\n{text}"
            );
        }
    }

    #[test]
    fn credentials_move_out_of_the_url() {
        let url = Url::parse("rtsp://admin:p%40ss@10.0.0.5:554/Streaming/Channels/101").unwrap();
        let (url, creds) = split_credentials(url, None, None).unwrap();
        assert_eq!(url.as_str(), "rtsp://10.0.0.5:554/Streaming/Channels/101");
        let (user, password) = creds.unwrap();
        assert_eq!(user, "admin");
        assert_eq!(password.expose_secret(), "p@ss");

        let url = Url::parse("rtsp://admin:old@cam/x").unwrap();
        let (_, creds) =
            split_credentials(url, Some("op".into()), Some(SecretString::from("new"))).unwrap();
        let (user, password) = creds.unwrap();
        assert_eq!((user.as_str(), password.expose_secret()), ("op", "new"));

        let plain = Url::parse("rtsp://cam/x").unwrap();
        assert!(
            split_credentials(plain.clone(), None, None)
                .unwrap()
                .1
                .is_none()
        );
        let err = split_credentials(plain, None, Some(SecretString::from("x"))).unwrap_err();
        assert!(err.contains("without a user name"), "{err}");
        let http = Url::parse("http://cam/x").unwrap();
        assert!(
            split_credentials(http, None, None)
                .unwrap_err()
                .contains("rtsp://")
        );
    }
}
