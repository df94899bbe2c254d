//! Spawning a hub on port 0 against a fresh database, with a gateway and users registered.

use hub::store::Role;
use hub::{Config, RawConfig, Store};
use tokio_util::sync::CancellationToken;

pub const OWNERSHIP: &str = r#"
[[item]]
category = "event:0407"
department = "police"
time_limit = "2 urgent_hours"
closing = "crowd dispersed"
"#;

/// The key the test hubs seal camera passwords with.
pub const REGISTRY_KEY: &str = "5f0e7a2c9b1d4e3f8a6b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f";

/// The dashboard password of users `op` and `police-1`.
pub const PASSWORD: &str = "correct horse battery staple";

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestHub {
    pub url: String,
    /// The hub's database, for driving its workers with a simulated clock.
    pub store: Store,
    pub database_url: String,
    pub client: reqwest::Client,
    pub gateway_token: String,
    pub admin_token: String,
    pub operator_token: String,
    pub police_token: String,
    pub fire_token: String,
    pub technician_token: String,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for TestHub {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn spawn(backend: Backend) -> Option<TestHub> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let database_url = match backend {
        Backend::Sqlite => format!("sqlite:{}", dir.path().join("hub.db").display()),
        Backend::Postgres => system_tests::fresh_postgres("hub_it").await?,
    };
    let ownership = dir.path().join("ownership.toml");
    std::fs::write(&ownership, OWNERSHIP).unwrap();
    let raw = RawConfig {
        database_url: database_url.clone(),
        ownership_list: Some(ownership.into()),
        areas: Some(
            system_tests::repo()
                .join("deploy/areas.example.geojson")
                .into(),
        ),
        ..RawConfig::default()
    };
    let mut config = Config::try_from(raw).unwrap();
    config.registry_key = Some(hub::sealing::SealKey::from_hex(REGISTRY_KEY).unwrap());
    config.limits.max_batch_bytes = 64 * 1024;
    config.limits.max_blob_bytes = 64 * 1024;
    let store = Store::connect(&database_url).await.unwrap();
    let gateway_token = store
        .add_gateway("gw-test", "test gateway", false)
        .await
        .unwrap()
        .token;
    let user = |name: &'static str, role, dept: Option<&'static str>| {
        let store = store.clone();
        async move { store.add_user(name, role, dept).await.unwrap().token }
    };
    let admin_token = user("admin-1", Role::Admin, None).await;
    let operator_token = user("op", Role::Operator, None).await;
    let police_token = user("police-1", Role::Department, Some("police")).await;
    let fire_token = user("fire-1", Role::Department, Some("fire")).await;
    let technician_token = user("tech-1", Role::Technician, None).await;
    let hash = hub::password::hash(PASSWORD).unwrap();
    for name in ["op", "police-1"] {
        assert!(store.set_password_hash(name, &hash, false).await.unwrap());
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    tokio::spawn(hub::run(config, store.clone(), listener, shutdown.clone()));
    Some(TestHub {
        url,
        store,
        database_url,
        client: reqwest::Client::new(),
        gateway_token,
        admin_token,
        operator_token,
        police_token,
        fire_token,
        technician_token,
        shutdown,
        _dir: dir,
    })
}

impl TestHub {
    pub fn get(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client
            .get(format!("{}{path}", self.url))
            .bearer_auth(token)
    }

    pub fn post_json(
        &self,
        path: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.url))
            .bearer_auth(token)
            .json(body)
    }

    /// The status GET `path` as `token` answers.
    pub async fn get_status(&self, path: &str, token: &str) -> reqwest::StatusCode {
        self.get(path, token).send().await.unwrap().status()
    }

    /// The status DELETE `path` as `token` answers.
    pub async fn delete_status(&self, path: &str, token: &str) -> reqwest::StatusCode {
        self.client
            .delete(format!("{}{path}", self.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// GET `path` as `token`, expecting 200; the body as JSON.
    pub async fn get_json(&self, path: &str, token: &str) -> serde_json::Value {
        let resp = self.get(path, token).send().await.unwrap();
        assert_eq!(resp.status(), reqwest::StatusCode::OK, "GET {path}");
        resp.json().await.unwrap()
    }

    /// Posts `events` in one batch from the test gateway, expecting the batch stored.
    pub async fn post_events(&self, events: Vec<serde_json::Value>) {
        let resp = self
            .post_json("/api/v1/events", &self.gateway_token, &batch(events))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), reqwest::StatusCode::OK);
    }

    /// Posts `csv` (`text/csv`) to `path`; the status and the JSON answer (`null` if none).
    pub async fn post_csv(
        &self,
        path: &str,
        token: &str,
        csv: &str,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let resp = self
            .client
            .post(format!("{}{path}", self.url))
            .bearer_auth(token)
            .header("content-type", "text/csv")
            .body(csv.to_owned())
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub fn put(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client
            .put(format!("{}{path}", self.url))
            .bearer_auth(token)
    }
}

pub use system_tests::fixtures::{batch, event};

/// `n` events of `category` 0.01° (about a kilometre) apart: never one case.
pub fn events_apart(category: &str, n: usize) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| {
            let mut e = event(category);
            e["location"]["lat"] = serde_json::json!(20.0 + 0.01 * i as f64);
            e
        })
        .collect()
}

/// Departments in three levels, for escalation: police → county-centre → city-centre.
pub fn department_levels() -> hub::reference::Shared {
    use hub::reference::{Format, Kind, Reference, Set, Shared};
    let departments = "id,name,level,parent\n\
        city-centre,市指挥中心,county,\n\
        county-centre,县指挥中心,county,city-centre\n\
        police,县公安局,county,county-centre\n";
    Shared::new(
        Reference::default()
            .with(Set::parse(Kind::Departments, Format::Csv, departments).unwrap())
            .unwrap(),
    )
}

/// Runs an async test body against a hub on each backend.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                let hub = $crate::support::spawn($crate::support::Backend::Sqlite)
                    .await
                    .unwrap();
                ($body)(hub).await;
            }
            #[tokio::test]
            async fn postgres() {
                if let Some(hub) = $crate::support::spawn($crate::support::Backend::Postgres).await
                {
                    ($body)(hub).await;
                }
            }
        }
    };
}
