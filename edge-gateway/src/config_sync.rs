//! Cameras and patrol terminals from the hub's device registry (`[hub] camera_registry =
//! true`): the gateway long-polls `GET /api/v1/gateway/config`, checks a new document as it
//! checks its own settings file, applies it camera by camera (`Cameras::apply`: the cameras
//! that did not change keep streaming), admits its terminals besides the terminals file's
//! (`Admission`: a terminal removed or given a new secret is disconnected), and keeps it on
//! disk as the last good one, which runs at the next start until the hub answers. A
//! document it cannot apply is refused whole: what runs stays, and the reason goes to the
//! hub with the next report.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocol::PROTOCOL_VERSION;
use protocol::device::GatewayConfig;
use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_NONE_MATCH};
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::cameras::Cameras;
use crate::config::cameras_from_specs;
use crate::patrol::Admission;
use crate::pipeline::camera::Backoff;

/// Seconds the hub may hold a request open waiting for a change.
const WAIT_S: u64 = 20;

/// What the gateway tells the hub about the registry's configuration.
#[derive(Debug, Default)]
pub struct ConfigStatus(Mutex<(Option<i64>, Option<String>)>);

impl ConfigStatus {
    /// The revision running, and why a newer one was refused.
    pub fn get(&self) -> (Option<i64>, Option<String>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn applied(&self, revision: i64) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = (Some(revision), None);
    }

    fn refused(&self, reason: String) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).1 = Some(reason);
    }
}

pub struct ConfigSync {
    pub hub_url: Url,
    pub token: SecretString,
    pub gateway_id: String,
    /// The last good document (`data_dir/cameras.json`).
    pub file: PathBuf,
    /// The names of the models the gateway has (`[models]`).
    pub models: HashSet<String>,
    pub cameras: Arc<tokio::sync::Mutex<Cameras>>,
    /// Who may connect to the embedded broker, when the gateway runs one: the document's
    /// terminals join the terminals file's.
    pub admission: Option<Arc<Admission>>,
    pub status: Arc<ConfigStatus>,
}

impl ConfigSync {
    /// Runs the last good document kept on disk, if there is one.
    pub async fn resume(&self) {
        let doc = match std::fs::read(&self.file) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                tracing::warn!(file = %self.file.display(), error = %e, "cannot read the last camera configuration");
                return;
            }
        };
        let applied = serde_json::from_slice::<GatewayConfig>(&doc)
            .map_err(|e| format!("{}: {e}", self.file.display()));
        let applied = match applied {
            Ok(doc) => self.apply(doc, false).await,
            Err(e) => Err(e),
        };
        if let Err(reason) = applied {
            tracing::warn!(%reason, "the last camera configuration on disk does not run; waiting for the hub");
        }
    }

    /// Follows the hub's registry until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let client = crate::uplink::hub_client();
        let url = match self
            .hub_url
            .join(&format!("api/v1/gateway/config?wait_s={WAIT_S}"))
        {
            Ok(u) => u,
            Err(e) => {
                tracing::error!(error = %e, "camera registry: bad hub URL");
                return;
            }
        };
        // The newest revision seen, applied or refused: the hub is asked for anything newer.
        let mut seen = self.status.get().0;
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        loop {
            let fetched = tokio::select! {
                f = self.fetch(&client, &url, seen) => f,
                () = shutdown.cancelled() => return,
            };
            match fetched {
                Ok(None) => backoff.reset(),
                Ok(Some((revision, doc))) => {
                    backoff.reset();
                    seen = Some(revision);
                    let applied = match doc {
                        Ok(doc) => self.apply(doc, true).await,
                        Err(e) => Err(e),
                    };
                    if let Err(reason) = applied {
                        tracing::warn!(revision, %reason, "camera configuration refused; the cameras running stay");
                        self.status
                            .refused(format!("revision {revision}: {reason}"));
                    }
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %e, retry_in = ?delay, "camera registry unreachable; the cameras running stay");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = shutdown.cancelled() => return,
                    }
                }
            }
        }
    }

    /// `None` while nothing changed after `seen`; else the revision with the document, or
    /// why it cannot be read.
    async fn fetch(
        &self,
        client: &reqwest::Client,
        url: &Url,
        seen: Option<i64>,
    ) -> Result<Option<(i64, Result<GatewayConfig, String>)>, String> {
        let mut req = client
            .get(url.clone())
            .bearer_auth(self.token.expose_secret());
        if let Some(revision) = seen {
            req = req.header(IF_NONE_MATCH, format!("\"{revision}\""));
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        match resp.status() {
            StatusCode::NOT_MODIFIED => return Ok(None),
            StatusCode::OK => {}
            other => return Err(format!("the hub answered {other}")),
        }
        let revision = resp
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim_matches('"').parse::<i64>().ok())
            .ok_or("the hub's answer has no revision (ETag)")?;
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        let doc = serde_json::from_slice::<GatewayConfig>(&body)
            .map_err(|e| format!("the document does not read: {e}"))
            .and_then(|doc| {
                if doc.v != PROTOCOL_VERSION {
                    Err(format!(
                        "protocol version {} (this gateway reads {PROTOCOL_VERSION})",
                        doc.v
                    ))
                } else if doc.gateway_id != self.gateway_id {
                    Err(format!("the document is for gateway {:?}", doc.gateway_id))
                } else {
                    Ok(doc)
                }
            });
        Ok(Some((revision, doc)))
    }

    /// Checks and runs `doc`; `keep` writes it to disk as the last good one.
    async fn apply(&self, doc: GatewayConfig, keep: bool) -> Result<(), String> {
        let names: HashSet<&str> = self.models.iter().map(String::as_str).collect();
        let cameras = cameras_from_specs(doc.cameras.clone(), &names, "cameras")
            .map_err(|e| format!("{}: {}", e.path, e.message))?;
        let terminals = match &self.admission {
            Some(admission) => Some(admission.with_registry(&doc.terminals)?),
            None if doc.terminals.is_empty() => None,
            None => {
                return Err(format!(
                    "the registry lists {} patrol terminals for this gateway, but it serves none ([patrol] is off or uses an external broker)",
                    doc.terminals.len()
                ));
            }
        };
        let applied = self.cameras.lock().await.apply(cameras).await?;
        if let (Some(admission), Some(terminals)) = (&self.admission, terminals) {
            admission.set(terminals);
        }
        tracing::info!(
            revision = doc.revision,
            started = applied.started,
            replaced = applied.replaced,
            stopped = applied.stopped,
            unchanged = applied.unchanged,
            terminals = doc.terminals.len(),
            "configuration applied"
        );
        if keep && let Err(e) = write_private(&self.file, &doc) {
            tracing::warn!(file = %self.file.display(), error = %e, "cannot keep the camera configuration on disk");
        }
        self.status.applied(doc.revision);
        Ok(())
    }
}

/// Writes `doc` whole or not at all (temporary file, fsync, rename), readable only by the
/// gateway's user: it holds camera passwords.
fn write_private(file: &Path, doc: &GatewayConfig) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = file.with_extension("json.tmp");
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    out.write_all(&serde_json::to_vec(doc).expect("a configuration is always JSON"))?;
    out.sync_all()?;
    std::fs::rename(&tmp, file)
}
