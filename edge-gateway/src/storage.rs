//! Keeps the outbox within its size budget while the hub is out of reach, and tells the hub
//! when it had to let something go (a `storage_pressure` event from the gateway itself).

use std::sync::Arc;
use std::time::Duration;

use protocol::{
    CategoryCode, EventEnvelope, EventKind, Location, PROTOCOL_VERSION, Severity, Source,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::event::NewEvent;
use crate::health::GatewayStats;
use crate::outbox::{Eviction, Outbox};

/// The `rule` of the event raised when the outbox had to evict.
pub const STORAGE_PRESSURE_RULE: &str = "storage_pressure";
/// How often the outbox's size is checked.
const INTERVAL: Duration = Duration::from_secs(10);

pub struct StorageGuard {
    pub outbox: Outbox,
    pub max_bytes: u64,
    pub gateway_id: String,
    /// Where the gateway stands; without it the event cannot be raised (only logged).
    pub location: Option<Location>,
    pub category: CategoryCode,
    pub stats: Arc<GatewayStats>,
    pub wake: Arc<Notify>,
}

impl StorageGuard {
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            match self.outbox.enforce_budget(self.max_bytes).await {
                Ok(Some(eviction)) => self.raise(&eviction).await,
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "cannot check the outbox's size"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(INTERVAL) => {}
            }
        }
    }

    async fn raise(&self, eviction: &Eviction) {
        GatewayStats::add(&self.stats.evicted_blobs, eviction.blobs);
        GatewayStats::add(&self.stats.evicted_events, eviction.events);
        let Some(location) = &self.location else {
            tracing::error!("storage pressure: set [gateway.location] so the hub can be told");
            return;
        };
        let event = pressure_event(
            &self.gateway_id,
            location,
            &self.category,
            eviction,
            self.max_bytes,
        );
        self.outbox.push_all_retrying(&[event]).await;
        GatewayStats::add(&self.stats.events_created, 1);
        self.wake.notify_one();
    }
}

/// The event that tells the hub what the full outbox let go.
pub fn pressure_event(
    gateway_id: &str,
    location: &Location,
    category: &CategoryCode,
    e: &Eviction,
    budget: u64,
) -> NewEvent {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    NewEvent {
        envelope: EventEnvelope {
            v: PROTOCOL_VERSION,
            id: uuid::Uuid::now_v7(),
            gateway_id: gateway_id.to_owned(),
            source: Source::Device {
                device_id: gateway_id.to_owned(),
            },
            kind: EventKind::Raised,
            episode: None,
            rule: STORAGE_PRESSURE_RULE.into(),
            category: category.clone(),
            occurred_at: chrono::Utc::now(),
            location: location.clone(),
            severity: Severity::High,
            description: Some(format!(
                "网关存储已满 outbox over its {:.0} MiB budget ({:.1} MiB): {} evidence files and {} events evicted",
                mib(budget),
                mib(e.used_before),
                e.blobs,
                e.events
            )),
            detection: None,
            evidence: Vec::new(),
        },
        blobs: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pressure_event_says_what_went_and_passes_the_hubs_checks() {
        let location = Location {
            lat: 30.27,
            lon: 120.15,
            area_code: None,
            grid: None,
        };
        let e = Eviction {
            used_before: 3 << 20,
            used_after: 1 << 20,
            blobs: 12,
            events: 3,
        };
        let event = pressure_event(
            "gw-1",
            &location,
            &"event:9901".parse().unwrap(),
            &e,
            2 << 20,
        );
        let env = &event.envelope;
        env.validate("").unwrap();
        assert_eq!(env.rule, STORAGE_PRESSURE_RULE);
        assert_eq!(env.severity, Severity::High);
        assert_eq!(
            env.source,
            Source::Device {
                device_id: "gw-1".into()
            }
        );
        let d = env.description.as_deref().unwrap();
        assert!(d.contains("12 evidence files and 3 events"), "{d}");
        assert!(d.contains("2 MiB budget"), "{d}");
    }
}
