//! Keeping the outbox within its size budget when the hub stays out of reach: evidence goes
//! before events, and low-risk before high-risk.
//!
//! Order of eviction, until the outbox is back under 90% of its budget:
//! 1. evidence blobs, those of the lowest-priority events first, oldest first (the events
//!    stay, their references to the evicted evidence removed);
//! 2. whole events, lowest priority first, oldest first.

use sqlx::{Row, Sqlite, Transaction};

use super::{Outbox, OutboxError};

/// What one enforcement removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Eviction {
    pub used_before: u64,
    pub used_after: u64,
    pub blobs: u64,
    pub events: u64,
}

/// Blobs or events removed per step before measuring again.
const STEP: i64 = 50;

impl Outbox {
    /// Bytes the outbox's database holds (pages in use).
    pub async fn used_bytes(&self) -> Result<u64, OutboxError> {
        let page = |q: &'static str| async move {
            sqlx::query_scalar::<_, i64>(q).fetch_one(&self.pool).await
        };
        let (count, free, size) = (
            page("PRAGMA page_count").await?,
            page("PRAGMA freelist_count").await?,
            page("PRAGMA page_size").await?,
        );
        Ok(((count - free).max(0) * size) as u64)
    }

    /// Brings the outbox under 90% of `max_bytes` if it is over `max_bytes`; `None` when
    /// it was within budget.
    pub async fn enforce_budget(&self, max_bytes: u64) -> Result<Option<Eviction>, OutboxError> {
        let used_before = self.used_bytes().await?;
        if used_before <= max_bytes {
            return Ok(None);
        }
        let target = max_bytes / 10 * 9;
        let mut ev = Eviction {
            used_before,
            ..Eviction::default()
        };
        let mut used = used_before;
        while used > target {
            let mut tx = self.pool.begin().await?;
            let excess = used - target;
            let blobs = evict_blobs(&mut tx, excess).await?;
            let events = if blobs == 0 {
                evict_events(&mut tx, excess).await?
            } else {
                0
            };
            tx.commit().await?;
            if blobs == 0 && events == 0 {
                break; // nothing left to evict
            }
            ev.blobs += blobs;
            ev.events += events;
            used = self.used_bytes().await?;
        }
        ev.used_after = used;
        tracing::warn!(
            used_before = ev.used_before,
            used_after = ev.used_after,
            budget = max_bytes,
            blobs = ev.blobs,
            events = ev.events,
            "the outbox is over its size budget: evidence and low-risk events were evicted"
        );
        Ok(Some(ev))
    }
}

/// The first of `rows` (key, size) whose sizes add up to `excess` (at least one).
fn enough(rows: Vec<(String, i64)>, excess: u64) -> Vec<String> {
    let mut freed = 0u64;
    let mut out = Vec::new();
    for (key, size) in rows {
        if freed >= excess {
            break;
        }
        freed += size.max(0) as u64;
        out.push(key);
    }
    out
}

/// Removes blobs worth about `excess` bytes (up to `STEP`), those of the lowest-priority
/// events first, and the references to them from the events that carried them.
async fn evict_blobs(tx: &mut Transaction<'_, Sqlite>, excess: u64) -> Result<u64, OutboxError> {
    let rows = sqlx::query(
        "SELECT ob.sha256, MAX(o.priority) AS p, MIN(o.seq) AS s, LENGTH(b.data) AS n \
         FROM outbox_blobs ob JOIN outbox o ON o.id = ob.event_id JOIN blobs b ON b.sha256 = ob.sha256 \
         GROUP BY ob.sha256 ORDER BY p, s LIMIT $1",
    )
    .bind(STEP)
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(|r| Ok((r.try_get("sha256")?, r.try_get("n")?)))
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let victims = enough(rows, excess);
    for sha in &victims {
        let events = sqlx::query(
            "SELECT o.id, o.body FROM outbox o JOIN outbox_blobs ob ON ob.event_id = o.id WHERE ob.sha256 = $1",
        )
        .bind(sha)
        .fetch_all(&mut **tx)
        .await?;
        for e in events {
            let id: String = e.try_get("id")?;
            let body: String = e.try_get("body")?;
            if let Some(rewritten) = without_evidence(&body, sha) {
                sqlx::query("UPDATE outbox SET body = $1 WHERE id = $2")
                    .bind(rewritten)
                    .bind(&id)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        sqlx::query("DELETE FROM outbox_blobs WHERE sha256 = $1")
            .bind(sha)
            .execute(&mut **tx)
            .await?;
        sqlx::query("DELETE FROM blobs WHERE sha256 = $1")
            .bind(sha)
            .execute(&mut **tx)
            .await?;
    }
    Ok(victims.len() as u64)
}

/// Removes events worth about `excess` bytes (up to `STEP`), lowest priority first,
/// oldest first.
async fn evict_events(tx: &mut Transaction<'_, Sqlite>, excess: u64) -> Result<u64, OutboxError> {
    let rows =
        sqlx::query("SELECT id, LENGTH(body) AS n FROM outbox ORDER BY priority, seq LIMIT $1")
            .bind(STEP)
            .fetch_all(&mut **tx)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("n")?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let ids = enough(rows, excess);
    for id in &ids {
        tracing::warn!(event = %id, "evicted from the full outbox");
    }
    super::remove(tx, &ids).await?;
    Ok(ids.len() as u64)
}

/// The event body without its reference to blob `sha`; `None` when it has none.
fn without_evidence(body: &str, sha: &str) -> Option<String> {
    let mut v: serde_json::Value = serde_json::from_str(body).ok()?;
    let list = v.get_mut("evidence")?.as_array_mut()?;
    let before = list.len();
    list.retain(|e| e.get("sha256").and_then(|s| s.as_str()) != Some(sha));
    (list.len() != before).then(|| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_evicted_reference_goes() {
        let body = r#"{"id":"x","evidence":[{"sha256":"aa"},{"sha256":"bb"}]}"#;
        let out = without_evidence(body, "aa").unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["evidence"], serde_json::json!([{"sha256": "bb"}]));
        assert_eq!(without_evidence(body, "cc"), None);
    }
}
