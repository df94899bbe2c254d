//! The durable outbox: events and their evidence on local disk (SQLite, WAL,
//! `synchronous = FULL`), until the hub acknowledges them.
//!
//! Guarantee: an event pushed here survives a crash or power cut once `push` has returned,
//! and leaves only when the hub has committed it (or refused it for good, which moves it to
//! `dead_letter`). Delivery is at least once; the hub de-duplicates by event id.
//!
//! The same database keeps the rest of the gateway's durable state: which patrol terminals
//! hold a persistent MQTT session, and the patrol tasks (`patrol::downlink`).

use std::path::Path;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use protocol::{EventEnvelope, EventKind, Severity};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};
use uuid::Uuid;

use crate::event::NewEvent;
use crate::patrol::SOS_RULE;

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("outbox migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

mod budget;
mod wal;

pub use budget::Eviction;
/// Events per INSERT statement (4 parameters each, well under SQLite's limit).
const ROWS_PER_INSERT: usize = 200;

pub use wal::WalTail;

#[derive(Debug, Clone)]
pub struct Outbox {
    pool: SqlitePool,
    /// What a crash left at the end of the write-ahead log when the outbox was opened.
    recovery: WalTail,
}

/// A blob an event needs at the hub before the event itself.
#[derive(Debug, Clone)]
pub struct PendingBlob {
    pub sha256: String,
    pub content_type: String,
    pub uploaded: bool,
}

impl Outbox {
    pub async fn open(path: &Path) -> Result<Self, OutboxError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
        }
        let recovery = check_wal(path);
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool, recovery })
    }

    /// Examines a write-ahead log file without opening the database (for tests and tools).
    pub fn examine_log(wal: &Path) -> WalTail {
        std::fs::read(wal)
            .map(|b| wal::examine(&b))
            .unwrap_or_default()
    }

    /// What the last crash left at the end of the log: the commits replayed and the bytes
    /// of an interrupted write that were skipped.
    pub fn recovery(&self) -> &WalTail {
        &self.recovery
    }

    /// The database, for the other durable state kept beside the events (patrol tasks).
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Stores an event and its blobs; durable when this returns.
    pub async fn push(&self, event: &NewEvent) -> Result<(), OutboxError> {
        self.push_all(std::slice::from_ref(event)).await
    }

    /// Stores events and their blobs in one transaction (one disk sync for all of them);
    /// durable when this returns. An event already stored is left as it is.
    pub async fn push_all(&self, events: &[NewEvent]) -> Result<(), OutboxError> {
        let now = Utc::now().timestamp_millis();
        let mut tx = self.pool.begin().await?;
        // Many rows per statement: the statement, not the row, is what costs.
        for chunk in events.chunks(ROWS_PER_INSERT) {
            let mut insert =
                QueryBuilder::<Sqlite>::new("INSERT INTO outbox (id, priority, body, created_at) ");
            insert.push_values(chunk, |mut row, event| {
                let e = &event.envelope;
                row.push_bind(e.id.to_string())
                    .push_bind(priority(e))
                    .push_bind(serde_json::to_string(e).expect("an event always serialises"))
                    .push_bind(now);
            });
            insert.push(" ON CONFLICT (id) DO NOTHING");
            insert.build().execute(&mut *tx).await?;
        }
        for event in events {
            for blob in &event.blobs {
                sqlx::query("INSERT INTO blobs (sha256, content_type, data) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING")
                    .bind(&blob.sha256)
                    .bind(blob.content_type)
                    .bind(&blob.data)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("INSERT INTO outbox_blobs (event_id, sha256) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(event.envelope.id.to_string())
                    .bind(&blob.sha256)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Stores `events` like [`Outbox::push_all`], retrying (with backoff, logging each
    /// failure) until the outbox takes them: events are never dropped.
    pub async fn push_all_retrying(&self, events: &[NewEvent]) {
        let mut delay = std::time::Duration::from_millis(100);
        while let Err(e) = self.push_all(events).await {
            tracing::error!(error = %e, events = events.len(), "cannot store events; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(std::time::Duration::from_secs(10));
        }
    }

    /// The next events to send, highest priority first, then oldest. A row that no longer
    /// parses (written by an incompatible version, or damaged) is moved to `dead_letter`
    /// with the reason, so it cannot hold up the events behind it.
    pub async fn peek(&self, limit: usize) -> Result<Vec<EventEnvelope>, OutboxError> {
        let rows = sqlx::query("SELECT id, body FROM outbox ORDER BY priority DESC, seq LIMIT $1")
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        let mut events = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: String = r.try_get("id")?;
            let body: String = r.try_get("body")?;
            match serde_json::from_str(&body) {
                Ok(event) => events.push(event),
                Err(e) => {
                    let reason = format!("unreadable in the outbox: {e}");
                    tracing::error!(event = %id, %reason, "moving an unreadable event to the dead-letter table");
                    self.set_aside(&id, &reason).await?;
                }
            }
        }
        Ok(events)
    }

    /// Blobs referenced by `events`, with whether they already reached the hub.
    pub async fn blobs_for(&self, events: &[Uuid]) -> Result<Vec<PendingBlob>, OutboxError> {
        let rows = sqlx::query(
            "SELECT DISTINCT b.sha256, b.content_type, b.uploaded FROM outbox_blobs ob \
             JOIN blobs b ON b.sha256 = ob.sha256 WHERE ob.event_id IN (SELECT value FROM json_each($1))",
        )
        .bind(id_list(events.iter().map(Uuid::to_string)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PendingBlob {
                    sha256: r.try_get("sha256")?,
                    content_type: r.try_get("content_type")?,
                    uploaded: r.try_get::<i64, _>("uploaded")? != 0,
                })
            })
            .collect()
    }

    pub async fn blob_data(&self, sha256: &str) -> Result<Option<Vec<u8>>, OutboxError> {
        Ok(sqlx::query("SELECT data FROM blobs WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get("data"))
            .transpose()?)
    }

    pub async fn mark_uploaded(&self, sha256: &str) -> Result<(), OutboxError> {
        sqlx::query("UPDATE blobs SET uploaded = 1 WHERE sha256 = $1")
            .bind(sha256)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Removes events the hub has committed, and blobs no longer referenced.
    pub async fn ack(&self, ids: &[Uuid]) -> Result<(), OutboxError> {
        let mut tx = self.pool.begin().await?;
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        remove(&mut tx, &ids).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Moves an event the hub refused for good out of the way, keeping it for inspection.
    pub async fn dead_letter(&self, id: Uuid, reason: &str) -> Result<(), OutboxError> {
        self.set_aside(&id.to_string(), reason).await
    }

    async fn set_aside(&self, id: &str, reason: &str) -> Result<(), OutboxError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO dead_letter (id, body, reason, created_at) SELECT id, body, $2, $3 FROM outbox WHERE id = $1 \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(reason)
        .bind(Utc::now().timestamp_millis())
        .execute(&mut *tx)
        .await?;
        remove(&mut tx, &[id.to_owned()]).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Events waiting for the hub.
    pub async fn pending(&self) -> Result<i64, OutboxError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM outbox")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    /// When the oldest event still waiting for the hub was stored; `None` when none waits.
    pub async fn oldest_pending(&self) -> Result<Option<DateTime<Utc>>, OutboxError> {
        let millis: Option<i64> = sqlx::query("SELECT MIN(created_at) AS t FROM outbox")
            .fetch_one(&self.pool)
            .await?
            .try_get("t")?;
        Ok(millis.and_then(DateTime::from_timestamp_millis))
    }

    /// Records that terminal `id` holds a persistent session; returns whether it already did.
    pub async fn remember_session(&self, id: &str) -> Result<bool, OutboxError> {
        let inserted = sqlx::query(
            "INSERT INTO terminal_sessions (terminal_id, since) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(Utc::now().timestamp_millis())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(inserted == 0)
    }

    /// Terminal `id` started a clean session: it holds no state with this gateway.
    pub async fn forget_session(&self, id: &str) -> Result<(), OutboxError> {
        sqlx::query("DELETE FROM terminal_sessions WHERE terminal_id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn dead_letters(&self) -> Result<i64, OutboxError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM dead_letter")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }
}

/// Reads the write-ahead log left by the last run, if any, and logs a write the crash cut
/// off. (SQLite skips such a write by itself; this makes it visible.)
fn check_wal(db: &Path) -> WalTail {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    let tail = match std::fs::read(Path::new(&name)) {
        Ok(bytes) => wal::examine(&bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => WalTail::default(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the outbox's write-ahead log to check it");
            WalTail::default()
        }
    };
    if tail.ignored_bytes > 0 {
        tracing::warn!(
            bytes = tail.ignored_bytes,
            reason = tail.reason.unwrap_or_default(),
            commits_kept = tail.commits,
            "the outbox's log ends in a write a crash interrupted: it is skipped, everything before it is intact"
        );
    }
    tail
}

/// The uplink lane of an event: calls for help first, then by risk; the end of a condition
/// (a crowd dispersed) is news, not an alarm, and waits in the lowest lane (the first to go
/// when the disk is full). Its order against the rest of its episode is kept by the hub.
fn priority(e: &EventEnvelope) -> i64 {
    if e.rule == SOS_RULE {
        return 3;
    }
    if e.kind == EventKind::Ended {
        return 0;
    }
    match e.severity {
        Severity::High => 2,
        Severity::Medium => 1,
        Severity::Low => 0,
    }
}

/// Deletes events `ids`, their blob links, and blobs no event needs any more.
pub(super) async fn remove(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    ids: &[String],
) -> Result<(), OutboxError> {
    let ids = id_list(ids.iter());
    sqlx::query("DELETE FROM outbox WHERE id IN (SELECT value FROM json_each($1))")
        .bind(&ids)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM outbox_blobs WHERE event_id IN (SELECT value FROM json_each($1))")
        .bind(&ids)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM blobs WHERE sha256 NOT IN (SELECT sha256 FROM outbox_blobs)")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Ids as one JSON array, for a statement that takes a whole batch (`json_each`) instead
/// of one statement per id.
fn id_list<S: serde::Serialize>(ids: impl Iterator<Item = S>) -> String {
    serde_json::to_string(&ids.collect::<Vec<_>>()).expect("strings always serialise")
}
