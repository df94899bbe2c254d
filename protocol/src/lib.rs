//! Wire types shared by the edge gateway and the hub.
//!
//! Everything here is plain data with serde and JSON Schema derives; there is no I/O.
//! The gateway produces [`EventEnvelope`]s, sends them to the hub in an [`UplinkBatch`] and
//! deletes from its outbox only the ids the hub lists in the [`UplinkAck`].
//!
//! Versioning: every top-level document carries `v`, the protocol version it was written
//! with. A receiver rejects a version it does not know instead of guessing.
//! The JSON Schemas generated from these types are kept in `docs/schema/`; a test fails when
//! they drift from the code.

mod category;
pub mod device;
mod event;
pub mod gateway;
pub mod patrol;
mod uplink;

pub use category::{CategoryCode, CategoryError};
pub use event::{
    BoundingBox, DetectedObject, Detection, Episode, EventEnvelope, EventKind, EvidenceKind,
    EvidenceRef, FieldError, Location, Severity, Source, check_area_code, check_identifier,
};
pub use uplink::{Rejected, UplinkAck, UplinkBatch};

/// The protocol version this build writes and the only one it accepts.
pub const PROTOCOL_VERSION: u32 = 1;

/// The JSON Schemas of the top-level documents, by file name, as kept in `docs/schema/`.
pub fn schemas() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        ("uplink-batch.schema.json", schema_value::<UplinkBatch>()),
        ("uplink-ack.schema.json", schema_value::<UplinkAck>()),
        (
            "event-envelope.schema.json",
            schema_value::<EventEnvelope>(),
        ),
        (
            "patrol-report.schema.json",
            schema_value::<patrol::PatrolReport>(),
        ),
        ("patrol-sos.schema.json", schema_value::<patrol::SosAlert>()),
        (
            "patrol-location.schema.json",
            schema_value::<patrol::LocationUpdate>(),
        ),
        (
            "patrol-status.schema.json",
            schema_value::<patrol::TerminalStatus>(),
        ),
        ("patrol-reply.schema.json", schema_value::<patrol::Reply>()),
        ("patrol-task.schema.json", schema_value::<patrol::Task>()),
        (
            "patrol-task-ack.schema.json",
            schema_value::<patrol::TaskAck>(),
        ),
        (
            "gateway-report.schema.json",
            schema_value::<gateway::GatewayReport>(),
        ),
        (
            "gateway-report-ack.schema.json",
            schema_value::<gateway::GatewayReportAck>(),
        ),
        (
            "gateway-config.schema.json",
            schema_value::<device::GatewayConfig>(),
        ),
    ]
}

fn schema_value<T: schemars::JsonSchema>() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(T)).expect("a schema is always valid JSON")
}

#[cfg(test)]
mod schema_tests {
    use std::path::PathBuf;

    /// The schemas in `docs/schema/` must be exactly what the types generate. Run with
    /// `BLESS=1` to rewrite them after an intended change of the wire format.
    #[test]
    fn docs_schemas_match_the_types() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/schema");
        let bless = std::env::var_os("BLESS").is_some();
        for (name, schema) in super::schemas() {
            let want = serde_json::to_string_pretty(&schema).unwrap() + "\n";
            let path = dir.join(name);
            if bless {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &want).unwrap();
                continue;
            }
            let have = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}; run the tests with BLESS=1", path.display()));
            assert!(
                have == want,
                "{} differs from the types; if the change is intended, run the tests with BLESS=1",
                path.display()
            );
        }
    }
}
