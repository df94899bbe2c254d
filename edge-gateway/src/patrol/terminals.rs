//! The patrol terminals a gateway serves: their credentials (stored as hashes) and what the
//! gateway last heard from each, for the local API and metrics.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use protocol::check_identifier;
use protocol::patrol::{ErrorCode, Presence, TrackPoint};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::watch;

/// The terminals file: one entry per terminal, written by `edge-gateway terminal add`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminalsFile {
    #[serde(default, rename = "terminal")]
    pub terminals: Vec<TerminalEntry>,
}

/// One terminal of the file: the shape the hub's registry sends too.
pub type TerminalEntry = protocol::device::TerminalSpec;

/// Who may connect: terminal id → hash of its secret. Secrets are 256-bit random values, so
/// one SHA-256 is enough to make a stolen file useless (no dictionary to run).
#[derive(Debug, Default, Clone)]
pub struct Credentials {
    by_id: HashMap<String, [u8; 32]>,
}

impl Credentials {
    /// Reads a terminals file; errors name the entry and the field.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file: TerminalsFile =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::from_entries(&file.terminals).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn from_entries(entries: &[TerminalEntry]) -> Result<Self, String> {
        let mut by_id = HashMap::new();
        for (i, t) in entries.iter().enumerate() {
            check_identifier(&t.id).map_err(|m| format!("terminal[{i}].id: {m}"))?;
            let mut hash = [0u8; 32];
            hex::decode_to_slice(&t.secret_sha256, &mut hash)
                .map_err(|_| format!("terminal[{i}].secret_sha256: must be 64 hex digits"))?;
            if by_id.insert(t.id.clone(), hash).is_some() {
                return Err(format!("terminal[{i}].id: {:?} appears twice", t.id));
            }
        }
        Ok(Self { by_id })
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Whether `secret` is terminal `id`'s.
    pub fn verify(&self, id: &str, secret: &[u8]) -> bool {
        self.holds(id, &Sha256::digest(secret).into())
    }

    /// Whether terminal `id`'s secret has the hash `secret_sha256`.
    pub fn holds(&self, id: &str, secret_sha256: &[u8; 32]) -> bool {
        self.by_id
            .get(id)
            .is_some_and(|want| secret_sha256.ct_eq(want).into())
    }
}

/// Who may connect now: the terminals file's terminals and, on a gateway that follows the
/// hub's registry, the registry's (the registry's entry wins for an id in both). Connections
/// watch it: one whose terminal it no longer admits with the secret it connected with (a
/// terminal removed, or given a new secret) is closed.
#[derive(Debug)]
pub struct Admission {
    file: Credentials,
    now: watch::Sender<Arc<Credentials>>,
}

impl Admission {
    pub fn new(file: Credentials) -> Self {
        let (now, _) = watch::channel(Arc::new(file.clone()));
        Self { file, now }
    }

    pub fn current(&self) -> Arc<Credentials> {
        self.now.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<Credentials>> {
        self.now.subscribe()
    }

    /// The file's terminals with `registry`'s, checked (errors name the registry's entry).
    pub fn with_registry(&self, registry: &[TerminalEntry]) -> Result<Credentials, String> {
        let registry = Credentials::from_entries(registry)
            .map_err(|e| e.replacen("terminal", "terminals", 1))?;
        let mut merged = self.file.clone();
        merged.by_id.extend(registry.by_id);
        Ok(merged)
    }

    /// From now on, admits `credentials`.
    pub fn set(&self, credentials: Credentials) {
        self.now.send_replace(Arc::new(credentials));
    }
}

/// A new random secret for a terminal and the entry that stores its hash.
pub fn new_terminal(id: &str, holder: Option<String>) -> Result<(String, TerminalEntry), String> {
    check_identifier(id)?;
    let secret = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let entry = TerminalEntry {
        id: id.to_owned(),
        holder,
        grid: None,
        secret_sha256: hex::encode(Sha256::digest(secret.as_bytes())),
    };
    Ok((secret, entry))
}

/// What the gateway last heard from one terminal.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TerminalState {
    pub id: String,
    /// `online` or `offline`, once the terminal has said.
    pub presence: Option<Presence>,
    pub presence_since: Option<DateTime<Utc>>,
    pub last_message_at: Option<DateTime<Utc>>,
    pub position: Option<TrackPoint>,
    pub reports: u64,
    pub sos: u64,
    pub refused: u64,
}

/// The terminals seen since start, and intake counters.
#[derive(Debug, Default)]
pub struct Board {
    terminals: Mutex<BTreeMap<String, TerminalState>>,
    counters: Mutex<Counters>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Counters {
    /// Messages read from the broker.
    pub received: u64,
    /// Reports and SOS calls stored in the outbox.
    pub events: u64,
    /// Messages refused, by error code.
    pub refused: BTreeMap<&'static str, u64>,
    /// Messages on topics that name no terminal (only possible with an external broker).
    pub stray: u64,
    /// Replies not sent because the downlink was full.
    pub replies_dropped: u64,
}

impl Board {
    fn update(&self, id: &str, now: DateTime<Utc>, f: impl FnOnce(&mut TerminalState)) {
        let mut all = self.terminals.lock().expect("board lock");
        let t = all.entry(id.to_owned()).or_insert_with(|| TerminalState {
            id: id.to_owned(),
            ..TerminalState::default()
        });
        t.last_message_at = Some(now);
        f(t);
    }

    pub fn received(&self, n: u64) {
        self.counters.lock().expect("board lock").received += n;
    }

    pub fn presence(&self, id: &str, presence: Presence, now: DateTime<Utc>) {
        self.update(id, now, |t| {
            if t.presence != Some(presence) {
                t.presence = Some(presence);
                t.presence_since = Some(now);
            }
        });
    }

    pub fn track(&self, id: &str, last: TrackPoint, now: DateTime<Utc>) {
        self.update(id, now, |t| t.position = Some(last));
    }

    pub fn stored(&self, id: &str, sos: bool, now: DateTime<Utc>) {
        self.update(id, now, |t| {
            if sos {
                t.sos += 1;
            } else {
                t.reports += 1;
            }
        });
        self.counters.lock().expect("board lock").events += 1;
    }

    pub fn refused(&self, id: Option<&str>, code: ErrorCode, now: DateTime<Utc>) {
        match id {
            Some(id) => self.update(id, now, |t| t.refused += 1),
            None => self.counters.lock().expect("board lock").stray += 1,
        }
        *self
            .counters
            .lock()
            .expect("board lock")
            .refused
            .entry(code.as_str())
            .or_default() += 1;
    }

    pub fn replies_dropped(&self, n: u64) {
        self.counters.lock().expect("board lock").replies_dropped += n;
    }

    pub fn terminals(&self) -> Vec<TerminalState> {
        self.terminals
            .lock()
            .expect("board lock")
            .values()
            .cloned()
            .collect()
    }

    pub fn counters(&self) -> Counters {
        self.counters.lock().expect("board lock").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_terminal_verifies_with_its_secret_only() {
        let (secret, entry) = new_terminal("t-1", Some("张三".into())).unwrap();
        let (other, other_entry) = new_terminal("t-2", None).unwrap();
        let creds = Credentials::from_entries(&[entry.clone(), other_entry]).unwrap();
        assert!(creds.verify("t-1", secret.as_bytes()));
        assert!(!creds.verify("t-1", other.as_bytes()));
        assert!(!creds.verify("t-2", secret.as_bytes()));
        assert!(!creds.verify("t-3", secret.as_bytes()));
        assert!(!entry.secret_sha256.contains(&secret));
        assert!(new_terminal("bad id", None).is_err());
    }

    #[test]
    fn a_terminals_file_round_trips_and_bad_entries_are_named() {
        let (_, entry) = new_terminal("t-1", None).unwrap();
        let file = TerminalsFile {
            terminals: vec![entry.clone()],
        };
        let text = toml::to_string(&file).unwrap();
        let back: TerminalsFile = toml::from_str(&text).unwrap();
        assert_eq!(Credentials::from_entries(&back.terminals).unwrap().len(), 1);

        let dup = Credentials::from_entries(&[entry.clone(), entry.clone()]).unwrap_err();
        assert!(dup.contains("terminal[1].id"), "{dup}");
        let mut bad = entry;
        bad.secret_sha256 = "xyz".into();
        let e = Credentials::from_entries(&[bad]).unwrap_err();
        assert!(e.contains("terminal[0].secret_sha256"), "{e}");
    }

    #[test]
    fn the_registry_adds_terminals_and_wins_over_the_file() {
        let (file_secret, file_entry) = new_terminal("t-1", None).unwrap();
        let admission = Admission::new(Credentials::from_entries(&[file_entry]).unwrap());
        let watcher = admission.subscribe();
        let (new_secret, mut moved) = new_terminal("t-1", None).unwrap();
        let (other_secret, other) = new_terminal("t-2", None).unwrap();
        let merged = admission.with_registry(&[moved.clone(), other]).unwrap();
        assert!(merged.verify("t-1", new_secret.as_bytes()));
        assert!(!merged.verify("t-1", file_secret.as_bytes()));
        assert!(merged.verify("t-2", other_secret.as_bytes()));
        admission.set(merged);
        assert!(watcher.has_changed().unwrap());
        assert!(admission.current().verify("t-2", other_secret.as_bytes()));
        // Back to the file's alone when the registry lists none.
        admission.set(admission.with_registry(&[]).unwrap());
        assert!(admission.current().verify("t-1", file_secret.as_bytes()));
        assert!(!admission.current().verify("t-2", other_secret.as_bytes()));

        moved.secret_sha256 = "nope".into();
        let e = admission.with_registry(&[moved]).unwrap_err();
        assert!(e.starts_with("terminals[0].secret_sha256"), "{e}");
    }

    #[test]
    fn the_board_tracks_presence_and_counts() {
        let board = Board::default();
        let t0 = Utc::now();
        board.presence("t-1", Presence::Online, t0);
        board.stored("t-1", false, t0);
        board.stored("t-1", true, t0);
        board.refused(Some("t-1"), ErrorCode::NotJson, t0);
        board.refused(None, ErrorCode::InvalidField, t0);
        let later = t0 + chrono::Duration::seconds(5);
        board.presence("t-1", Presence::Online, later);
        let t = &board.terminals()[0];
        assert_eq!((t.reports, t.sos, t.refused), (1, 1, 1));
        assert_eq!(
            t.presence_since,
            Some(t0),
            "unchanged presence keeps its start"
        );
        let c = board.counters();
        assert_eq!((c.events, c.stray), (2, 1));
        assert_eq!(c.refused["not_json"], 1);
    }
}
