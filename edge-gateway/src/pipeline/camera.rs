//! One task per camera: open the RTSP session (`crate::rtsp`), pass encoded frames to the
//! camera's decoder, and reconnect when the stream fails, ends or stalls: soon (backoff
//! with jitter, capped at 2 s, so a camera is back within seconds of its server) after a
//! network fault, a minute after a wrong path or codec, and five minutes after refused
//! credentials, so a wrong password does not lock the camera's account.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use retina::codec::CodecItem;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::decode::DecoderInput;
use crate::config::CameraConfig;
use crate::health::CameraHealth;
use crate::rtsp::{self, OpenError, Opened, first_line};
use protocol::gateway::CameraState;

/// A camera that sends nothing for this long is treated as hung (retina alone would wait
/// for its 30 s keepalive).
const FRAME_TIMEOUT: Duration = Duration::from_secs(4);
/// Each RTSP step (DESCRIBE, SETUP, PLAY) within this.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// After the camera refused the credentials (many lock an account after a few failures).
const AFTER_REFUSAL: Duration = Duration::from_secs(300);
/// After a wrong path or an unsupported stream: settings, not the network, must change.
const AFTER_MISCONFIGURATION: Duration = Duration::from_secs(60);

/// Why a session ended, which decides how soon to try again.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// The network, a hung or restarted server, the stream ended: try again soon.
    Fault(String),
    /// The camera refused the credentials (401).
    Refused(String),
    /// No such path (404) or nothing the gateway can decode.
    Misconfigured(String),
}

impl Ended {
    fn from_open(e: OpenError) -> Self {
        let status = match &e {
            OpenError::Rtsp { source, .. } => source.status_code(),
            _ => None,
        };
        let reason = first_line(&e);
        match (&e, status) {
            (_, Some(401)) => Ended::Refused(reason),
            (OpenError::NoVideo { .. }, _) | (_, Some(400..=499)) => Ended::Misconfigured(reason),
            _ => Ended::Fault(reason),
        }
    }

    /// How long to wait before the next attempt.
    fn delay(&self, backoff: &mut Backoff) -> Duration {
        match self {
            Ended::Fault(_) => backoff.next_delay(),
            Ended::Refused(_) => AFTER_REFUSAL,
            Ended::Misconfigured(_) => AFTER_MISCONFIGURATION,
        }
    }

    fn reason(self) -> String {
        match self {
            Ended::Fault(r) | Ended::Refused(r) | Ended::Misconfigured(r) => r,
        }
    }
}
/// A session that streamed this long resets the backoff.
const HEALTHY_AFTER: Duration = Duration::from_secs(30);

/// Capped exponential backoff with full jitter.
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            attempt: 0,
        }
    }

    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1 << self.attempt.min(16))
            .min(self.cap);
        self.attempt += 1;
        // Between half the ceiling and the ceiling, so cameras that failed together spread out.
        ceiling.mul_f64(0.5 + rand::random::<f64>() * 0.5)
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Runs the camera until `shutdown`.
pub async fn run(
    camera: Arc<CameraConfig>,
    health: Arc<CameraHealth>,
    decoder: mpsc::Sender<DecoderInput>,
    shutdown: CancellationToken,
) {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(2));
    loop {
        health.update(|h| h.state = CameraState::Connecting);
        let started = tokio::time::Instant::now();
        let result = tokio::select! {
            r = run_once(&camera, &health, &decoder) => r,
            () = shutdown.cancelled() => return,
        };
        let ended = match result {
            Ok(()) => Ended::Fault("the server ended the stream".to_owned()),
            Err(e) => e,
        };
        if decoder.is_closed() {
            return;
        }
        if started.elapsed() >= HEALTHY_AFTER {
            backoff.reset();
        }
        let delay = ended.delay(&mut backoff);
        let reason = ended.reason();
        tracing::warn!(camera = %camera.id, %reason, retry_in = ?delay, "camera disconnected");
        health.update(|h| {
            h.state = CameraState::Retrying;
            h.reconnects += 1;
            h.last_error = Some(reason);
        });
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

async fn run_once(
    camera: &CameraConfig,
    health: &CameraHealth,
    decoder: &mpsc::Sender<DecoderInput>,
) -> Result<(), Ended> {
    let Opened {
        mut stream, codec, ..
    } = rtsp::open(
        &camera.url,
        camera.credentials.as_ref(),
        camera.tcp,
        STEP_TIMEOUT,
    )
    .await
    .map_err(Ended::from_open)?;
    let stopped = || Ended::Fault("decoder stopped".to_owned());
    decoder
        .send(DecoderInput::Start(codec))
        .await
        .map_err(|_| stopped())?;
    tracing::info!(camera = %camera.id, ?codec, "camera streaming");
    health.update(|h| {
        h.state = CameraState::Streaming;
        h.codec = Some(format!("{codec:?}"));
    });
    loop {
        let item = tokio::time::timeout(FRAME_TIMEOUT, stream.next())
            .await
            .map_err(|_| Ended::Fault(format!("no data for {} s", FRAME_TIMEOUT.as_secs())))?;
        match item {
            None => return Ok(()),
            Some(Err(e)) => {
                return Err(Ended::Fault(format!("stream error: {}", first_line(&e))));
            }
            Some(Ok(CodecItem::VideoFrame(frame))) => {
                let at = Utc::now();
                health.update(|h| {
                    h.frames_received += 1;
                    h.last_frame_at = Some(at);
                });
                decoder
                    .send(DecoderInput::Frame(rtsp::access_unit(frame, at)))
                    .await
                    .map_err(|_| stopped())?;
            }
            Some(Ok(_)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_and_misconfigurations_wait_longer_than_faults() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(2));
        let no_video = Ended::from_open(OpenError::NoVideo {
            offered: vec!["audio/PCMA".into()],
        });
        assert!(matches!(no_video, Ended::Misconfigured(_)), "{no_video:?}");
        assert_eq!(no_video.delay(&mut b), AFTER_MISCONFIGURATION);
        let hung = Ended::from_open(OpenError::Timeout {
            step: "DESCRIBE",
            after: STEP_TIMEOUT,
        });
        assert!(matches!(hung, Ended::Fault(_)), "{hung:?}");
        for _ in 0..10 {
            assert!(hung.delay(&mut b) <= Duration::from_secs(2));
        }
        assert_eq!(Ended::Refused("401".into()).delay(&mut b), AFTER_REFUSAL);
    }

    #[test]
    fn backoff_grows_to_its_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let delays: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        for (i, d) in delays.iter().enumerate() {
            let ceiling = Duration::from_millis(100 * (1 << i)).min(Duration::from_secs(2));
            assert!(
                *d >= ceiling / 2 && *d <= ceiling,
                "attempt {i}: {d:?} not in [{:?}, {ceiling:?}]",
                ceiling / 2
            );
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
