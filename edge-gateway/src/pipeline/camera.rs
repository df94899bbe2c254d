//! One task per camera: open the RTSP session (`crate::rtsp`), pass encoded frames to the
//! camera's decoder, and reconnect with capped exponential backoff and jitter when the
//! stream fails, ends or stalls.

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
use crate::rtsp::{self, Opened};
use protocol::gateway::CameraState;

/// A camera that sends nothing for this long is treated as hung (retina alone would wait
/// for its 30 s keepalive).
const FRAME_TIMEOUT: Duration = Duration::from_secs(10);
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
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    loop {
        health.update(|h| h.state = CameraState::Connecting);
        let started = tokio::time::Instant::now();
        let result = tokio::select! {
            r = run_once(&camera, &health, &decoder) => r,
            () = shutdown.cancelled() => return,
        };
        let reason = match result {
            Ok(()) => "the server ended the stream".to_owned(),
            Err(e) => e,
        };
        if decoder.is_closed() {
            return;
        }
        if started.elapsed() >= HEALTHY_AFTER {
            backoff.reset();
        }
        let delay = backoff.next_delay();
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
) -> Result<(), String> {
    let Opened {
        mut stream, codec, ..
    } = rtsp::open(
        &camera.url,
        camera.credentials.as_ref(),
        camera.tcp,
        FRAME_TIMEOUT,
    )
    .await
    .map_err(|e| e.to_string())?;
    decoder
        .send(DecoderInput::Start(codec))
        .await
        .map_err(|_| "decoder stopped".to_owned())?;
    tracing::info!(camera = %camera.id, ?codec, "camera streaming");
    health.update(|h| {
        h.state = CameraState::Streaming;
        h.codec = Some(format!("{codec:?}"));
    });
    loop {
        let item = tokio::time::timeout(FRAME_TIMEOUT, stream.next())
            .await
            .map_err(|_| format!("no data for {} s", FRAME_TIMEOUT.as_secs()))?;
        match item {
            None => return Ok(()),
            Some(Err(e)) => return Err(format!("stream error: {e}")),
            Some(Ok(CodecItem::VideoFrame(frame))) => {
                let at = Utc::now();
                health.update(|h| {
                    h.frames_received += 1;
                    h.last_frame_at = Some(at);
                });
                let input = DecoderInput::Frame {
                    data: frame.into_data(),
                    at,
                };
                decoder
                    .send(input)
                    .await
                    .map_err(|_| "decoder stopped".to_owned())?;
            }
            Some(Ok(_)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
