//! The uplink exchange: the gateway posts a batch of events, the hub answers with the ids it
//! has committed. The gateway deletes from its outbox only what the ack lists.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::EventEnvelope;

/// `POST /api/v1/events` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UplinkBatch {
    /// Protocol version.
    pub v: u32,
    pub gateway_id: String,
    pub events: Vec<EventEnvelope>,
}

/// The hub's answer to an [`UplinkBatch`], sent only after the transaction that stored the
/// events has committed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UplinkAck {
    pub v: u32,
    /// Events now durably stored at the hub: new ones and ones it already had.
    /// The gateway may delete these.
    pub accepted: Vec<Uuid>,
    /// Events the hub will never accept (they are invalid); the gateway should move them
    /// aside rather than retry them forever.
    #[serde(default)]
    pub rejected: Vec<Rejected>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rejected {
    pub id: Uuid,
    pub reason: String,
}
