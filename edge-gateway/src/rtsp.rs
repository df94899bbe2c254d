//! Opening a camera's RTSP session with `retina`: DESCRIBE, SETUP of the first H.264 or
//! H.265 video stream, PLAY. Shared by the camera tasks and the on-site probe, which
//! explains the failures to a technician (`OpenError` keeps retina's error for that).

use std::time::Duration;

use chrono::{DateTime, Utc};
use retina::client::{
    Demuxed, PlayOptions, Session, SessionOptions, SetupOptions, TcpTransportOptions, Transport,
    UdpTransportOptions,
};
use retina::codec::{FrameFormat, VideoFrame};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::pipeline::decode::{AccessUnit, Codec};

/// A session that is playing.
pub struct Opened {
    pub stream: Demuxed,
    pub codec: Codec,
    /// The stream's index in the session (for its parameters).
    pub index: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{step} timed out after {} s", .after.as_secs())]
    Timeout { step: &'static str, after: Duration },
    #[error("{step} failed: {source}")]
    Rtsp {
        step: &'static str,
        source: retina::Error,
    },
    #[error("no H.264 or H.265 video stream (offered: {})", .offered.join(", "))]
    NoVideo { offered: Vec<String> },
}

/// Retina's errors carry connection context (and hex dumps) on further lines; the first
/// says what happened, which is what a technician's screen needs.
pub fn first_line(e: &impl std::fmt::Display) -> String {
    e.to_string().lines().next().unwrap_or_default().to_owned()
}

/// DESCRIBE, SETUP and PLAY, each within `timeout`; `tcp` carries RTP over the RTSP
/// connection rather than UDP.
pub async fn open(
    url: &Url,
    credentials: Option<&(String, SecretString)>,
    tcp: bool,
    timeout: Duration,
) -> Result<Opened, OpenError> {
    let creds = credentials.map(|(u, p)| retina::client::Credentials {
        username: u.clone(),
        password: p.expose_secret().to_owned(),
    });
    let options = SessionOptions::default()
        .creds(creds)
        .user_agent(format!("edge-gateway/{}", env!("CARGO_PKG_VERSION")));
    let mut session = step("DESCRIBE", timeout, Session::describe(url.clone(), options)).await?;
    let (index, codec) = session
        .streams()
        .iter()
        .enumerate()
        .find_map(|(i, s)| match (s.media(), s.encoding_name()) {
            ("video", "h264") => Some((i, Codec::H264)),
            ("video", "h265") => Some((i, Codec::H265)),
            _ => None,
        })
        .ok_or_else(|| OpenError::NoVideo {
            offered: session
                .streams()
                .iter()
                .map(|s| format!("{}/{}", s.media(), s.encoding_name()))
                .collect(),
        })?;
    let transport = if tcp {
        Transport::Tcp(TcpTransportOptions::default())
    } else {
        Transport::Udp(UdpTransportOptions::default())
    };
    let setup = SetupOptions::default()
        .transport(transport)
        .frame_format(FrameFormat::SIMPLE);
    step("SETUP", timeout, session.setup(index, setup)).await?;
    let playing = step("PLAY", timeout, session.play(PlayOptions::default())).await?;
    let stream = playing.demuxed().map_err(|source| OpenError::Rtsp {
        step: "demuxing",
        source,
    })?;
    Ok(Opened {
        stream,
        codec,
        index,
    })
}

/// A received frame as the decoder takes it: arrived `at`, shown at its RTP time.
pub fn access_unit(frame: VideoFrame, at: DateTime<Utc>) -> AccessUnit {
    let shown = frame.timestamp();
    AccessUnit {
        key: frame.is_random_access_point(),
        pts_ms: shown.elapsed().saturating_mul(1000) / i64::from(shown.clock_rate().get()),
        data: frame.into_data(),
        at,
    }
}

async fn step<T>(
    step: &'static str,
    after: Duration,
    fut: impl Future<Output = Result<T, retina::Error>>,
) -> Result<T, OpenError> {
    tokio::time::timeout(after, fut)
        .await
        .map_err(|_| OpenError::Timeout { step, after })?
        .map_err(|source| OpenError::Rtsp { step, source })
}

/// Camera makers whose RTSP paths follow a fixed pattern, for cameras without ONVIF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Vendor {
    /// `/Streaming/Channels/{channel}01` main, `…02` sub.
    Hikvision,
    /// `/cam/realmonitor?channel={channel}&subtype=0` main, `1` sub.
    Dahua,
}

/// The stream URL of channel `channel` (from 1) on a `vendor` camera or NVR at `host`.
pub fn vendor_url(
    vendor: Vendor,
    host: &str,
    port: Option<u16>,
    channel: u32,
    sub: bool,
) -> Result<Url, String> {
    if channel == 0 {
        return Err("channels are numbered from 1".into());
    }
    let authority = match port {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    let path = match vendor {
        Vendor::Hikvision => format!("/Streaming/Channels/{channel}0{}", if sub { 2 } else { 1 }),
        Vendor::Dahua => format!(
            "/cam/realmonitor?channel={channel}&subtype={}",
            u8::from(sub)
        ),
    };
    Url::parse(&format!("rtsp://{authority}{path}")).map_err(|e| format!("host {host:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_templates_give_main_and_sub_streams() {
        let hik = |ch, sub| vendor_url(Vendor::Hikvision, "10.0.0.5", None, ch, sub).unwrap();
        assert_eq!(
            hik(1, false).as_str(),
            "rtsp://10.0.0.5/Streaming/Channels/101"
        );
        assert_eq!(
            hik(1, true).as_str(),
            "rtsp://10.0.0.5/Streaming/Channels/102"
        );
        assert_eq!(
            hik(12, false).as_str(),
            "rtsp://10.0.0.5/Streaming/Channels/1201"
        );
        let dahua = vendor_url(Vendor::Dahua, "nvr.local", Some(8554), 3, true).unwrap();
        assert_eq!(
            dahua.as_str(),
            "rtsp://nvr.local:8554/cam/realmonitor?channel=3&subtype=1"
        );
        assert!(vendor_url(Vendor::Dahua, "cam", None, 0, false).is_err());
        assert!(vendor_url(Vendor::Hikvision, "bad host", None, 1, false).is_err());
    }
}
