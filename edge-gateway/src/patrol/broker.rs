//! The embedded MQTT broker (`rumqttd`), listening on loopback only. Terminals reach it
//! through the front door (`front.rs`); the gateway's own client connects to it directly.
//! It carries the downlink (replies, tasks) with per-terminal sessions and QoS 1 retries.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

/// A started broker: where it listens and the secret every connection to it must present.
#[derive(Debug, Clone)]
pub struct Embedded {
    pub addr: SocketAddr,
    pub secret: String,
}

/// Starts the broker on its own thread (it has no shutdown: it ends with the process).
pub fn start(max_connections: usize, max_payload: usize) -> anyhow::Result<Embedded> {
    // rumqttd takes a fixed address: pick a free loopback port.
    let addr = TcpListener::bind(("127.0.0.1", 0))?.local_addr()?;
    let secret = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let mut connections = ConnectionSettings {
        connection_timeout_ms: 10_000,
        max_payload_size: max_payload,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let expected = secret.clone();
    connections.set_auth_handler(move |_client, _user, pass: String| {
        let ok = pass == expected;
        async move { ok }
    });
    let server = ServerSettings {
        name: "patrol".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 0,
        connections,
    };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections,
            max_outgoing_packet_count: 200,
            max_segment_size: 16 * 1024 * 1024,
            max_segment_count: 10,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("patrol".to_owned(), server)])),
        ..Config::default()
    };
    let mut broker = Broker::new(config);
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "the embedded MQTT broker stopped");
            }
        })?;
    Ok(Embedded { addr, secret })
}
