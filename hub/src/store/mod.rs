//! Persistence: one `sqlx::Any` pool over SQLite (the zero-setup default) or PostgreSQL (the
//! production store), with embedded migrations per backend chosen from the URL.
//!
//! Queries are written once with `$N` placeholders where the backends agree; times are
//! stored as unix milliseconds and ids/JSON as text, which is what `Any` carries on both.
//! Many rows go to one statement as a single JSON parameter (`json_rows`).

mod appeals;
mod blobs;
mod cases;
mod deadlines;
mod deferrals;
mod episodes;
mod events;
mod json_rows;
mod principals;
mod reference;
mod registry;
mod reinspections;
mod sessions;
mod side_records;
mod stats;
mod terminal_registry;
mod terminals;
mod users;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Connection, Executor};

pub use appeals::{AppealRequest, AppealRow};
pub use blobs::{AttachmentRow, Blob, NewAttachment};
pub use cases::{
    Assignment, CaseDetail, CaseEventRow, CaseFilter, CaseRow, CaseSort, CaseVisibility,
    TimelineRow, Transition,
};
pub use deadlines::{AlarmRaised, NewNotice, SupervisionRow};
pub use deferrals::{DeferralRequest, DeferralRow, ParkedClock, Restored};
pub use episodes::EpisodeRow;
pub use events::{EventRow, IngestOutcome};
pub use principals::{GatewayRow, Principal, Role, TokenIssued};
pub use reference::{ReferenceImport, SetInfo};
pub use registry::{
    AuditRow, CaseAsset, Entered, NewCamera, NewGateway, PasswordChange, RegistryCamera,
};
pub use reinspections::ReinspectionRow;
pub use sessions::{LoginRecord, SessionIssued};
pub use side_records::{CallbackRow, ExtensionRow, NewDeadline};
pub use terminal_registry::{NewTerminal, RegistryTerminal, TerminalEntered};
pub use terminals::{CameraRow, NewTask, TaskRow, TerminalRow};
pub use users::{NewUser, RosterChange, UserRow};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL {0:?}: use sqlite:PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("{0}")]
    Conflict(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The hub's database.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite has one writer at a time; writers of this process queue here, first come
    /// first served, instead of in SQLite's busy handler, which sleeps and is not fair.
    write_gate: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// The database URL, for connections outside the pool (a PostgreSQL listener).
    url: String,
}

impl std::fmt::Debug for Store {
    /// Never shows the URL: it may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .field("url", &redact(&self.url))
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects and brings the schema up to date. `sqlite:PATH` creates the file if needed.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if url.starts_with("sqlite:") {
            let sep = if url.contains('?') { '&' } else { '?' };
            let url = if url.contains("mode=") {
                url.to_owned()
            } else {
                format!("{url}{sep}mode=rwc")
            };
            (Backend::Sqlite, url)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_owned())
        } else {
            return Err(StoreError::UnsupportedUrl(redact(url)));
        };
        let options: AnyConnectOptions = url.parse()?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 16 })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the writer; NORMAL is durable across
                        // process crashes (a power cut may lose the last commits, not corrupt).
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        Ok(Self {
            pool,
            backend,
            write_gate: Default::default(),
            url,
        })
    }

    /// Waits for this process's turn to write (SQLite only); hold the guard until commit.
    async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.write_gate.lock().await),
            Backend::Postgres => None,
        }
    }

    /// Starts a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads first cannot upgrade its lock
    /// while another writer holds it, and SQLite answers BUSY at once instead of waiting.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Sends each of `payloads`, in order, to every connection listening on `channel`
    /// (PostgreSQL `NOTIFY`, one transaction for them all; at most 8,000 bytes each;
    /// PostgreSQL delivers identical payloads of one transaction once). The payloads travel
    /// as one text, separated by the ASCII record separator, which none may hold (JSON
    /// never holds it raw).
    pub async fn notify(&self, channel: &str, payloads: &[String]) -> Result<(), StoreError> {
        const SEPARATOR: char = '\u{1e}';
        debug_assert!(payloads.iter().all(|p| !p.contains(SEPARATOR)));
        sqlx::query(
            "SELECT pg_notify($1, payload) FROM unnest(string_to_array($2, chr(30))) AS payload",
        )
        .bind(channel)
        .bind(payloads.join(&SEPARATOR.to_string()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A connection of its own listening on `channel` (PostgreSQL only).
    pub async fn listen(&self, channel: &str) -> Result<sqlx::postgres::PgListener, StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect(&self.url).await?;
        listener.listen(channel).await?;
        Ok(listener)
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.pool.acquire().await?.ping().await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A database URL without its password, for error messages and logs.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Appends a timeline entry that leaves the case's state as it is (a note, a task, a
/// deadline alarm, a supervision notice); `at` in unix milliseconds.
async fn note_on_timeline(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    case_id: &str,
    at: i64,
    actor: &str,
    action: &str,
    note: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO case_timeline (id, case_id, at, actor, action, from_state, to_state, note) \
         SELECT $1, id, $2, $3, $4, state, state, $5 FROM cases WHERE id = $6",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(at)
    .bind(actor)
    .bind(action)
    .bind(note)
    .bind(case_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}
