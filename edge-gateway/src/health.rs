//! What the gateway knows about its own state, shared between the stages that update it and
//! the local API that shows it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use protocol::gateway::CameraState;
use serde::Serialize;

/// A frame analysed later than this after it was received is counted as late.
pub const LATE: std::time::Duration = std::time::Duration::from_secs(1);

/// One camera's health, as the local API shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CameraStatus {
    pub id: String,
    pub name: String,
    pub state: CameraState,
    pub codec: Option<String>,
    /// What decodes the stream: `software`, `vaapi` or `cuda`.
    pub decoder: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub frames_received: u64,
    pub frames_decoded: u64,
    pub frames_analysed: u64,
    /// Frames converted for analysis but replaced by a newer one before the detector got
    /// to them (frames are perishable: the latest wins).
    pub frames_dropped: u64,
    /// Frames due for analysis skipped by motion gating: nothing moved since the last one
    /// analysed.
    pub frames_still: u64,
    /// Frames whose analysis began more than [`LATE`] after they were received: the
    /// detector is falling behind its cameras.
    pub frames_late: u64,
    /// From receipt to the start of analysis, for the last frame analysed.
    pub analysis_lag_ms: Option<u64>,
    pub decode_errors: u64,
    pub reconnects: u64,
    pub last_frame_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub events_raised: u64,
    pub last_event_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
pub struct CameraHealth(Mutex<CameraStatus>);

impl CameraHealth {
    pub fn new(id: &str, name: &str) -> Self {
        Self(Mutex::new(CameraStatus {
            id: id.to_owned(),
            name: name.to_owned(),
            state: CameraState::Connecting,
            decoder: "software".into(),
            ..CameraStatus::default()
        }))
    }

    pub fn update(&self, f: impl FnOnce(&mut CameraStatus)) {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }

    pub fn snapshot(&self) -> CameraStatus {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Gateway-wide counters.
#[derive(Debug, Default)]
pub struct GatewayStats {
    pub events_created: AtomicU64,
    pub events_delivered: AtomicU64,
    pub events_rejected: AtomicU64,
    /// Evidence files and events the full outbox let go.
    pub evicted_blobs: AtomicU64,
    pub evicted_events: AtomicU64,
    pub uplink: Mutex<UplinkStatus>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct UplinkStatus {
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub consecutive_failures: u64,
    /// Failed delivery attempts since the gateway started.
    pub retries: u64,
}

impl GatewayStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn uplink(&self, f: impl FnOnce(&mut UplinkStatus)) {
        f(&mut self.uplink.lock().unwrap_or_else(|e| e.into_inner()));
    }
}
