//! Storing events, and the cases they open, in one transaction per batch.

use chrono::{DateTime, Utc};
use protocol::EventEnvelope;
use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

use super::episodes::{self, max_severity};
use super::{Backend, Store, StoreError, from_ms, note_on_timeline, to_ms};
use crate::engine::{Candidate, CorrelationConfig, NewCase};

/// What a committed batch did.
#[derive(Debug, Default)]
pub struct IngestOutcome {
    /// Every event of the batch now stored at the hub (new or already there).
    pub accepted: Vec<Uuid>,
    /// Cases opened for the events that were new.
    pub opened: Vec<Uuid>,
    /// New events that joined a case already open.
    pub attached: usize,
    /// Each event that was new, in batch order, with the case it is now part of.
    pub fresh: Vec<FreshEvent>,
}

/// A newly stored event and its case, for the live feed.
#[derive(Debug)]
pub struct FreshEvent {
    /// Its position in the batch given to [`Store::ingest`].
    pub index: usize,
    pub case_id: String,
    /// Whether the event opened the case (or joined one already open).
    pub opened: bool,
    /// The case's department, if it has one.
    pub department: Option<String>,
}

/// An event as listed by the API.
#[derive(Debug, Serialize)]
pub struct EventRow {
    pub id: String,
    pub gateway_id: String,
    pub source_kind: String,
    pub source_id: String,
    pub rule: String,
    /// `raised`, `update` or `ended` (see `protocol::EventKind`).
    pub kind: String,
    pub category: String,
    pub severity: String,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub case_id: String,
    /// Where it happened, as the gateway reported it.
    pub location: serde_json::Value,
    /// Its snapshots and photos (`sha256`, `kind`, …), served by `/api/v1/blobs/{sha256}`.
    pub evidence: serde_json::Value,
    pub description: Option<String>,
}

impl Store {
    /// Stores `events` from gateway `gateway_id`. Each event not seen before joins the open
    /// case of its category that `correlation` picks, or opens the case that `open_case`
    /// returns for it. Duplicates (same id) are accepted and change nothing.
    /// Returns only after the transaction has committed, so an ack built from the outcome
    /// never names an event that could still be lost.
    pub async fn ingest(
        &self,
        gateway_id: &str,
        events: &[EventEnvelope],
        correlation: &CorrelationConfig,
        mut open_case: impl FnMut(&EventEnvelope) -> NewCase,
    ) -> Result<IngestOutcome, StoreError> {
        let mut outcome = IngestOutcome::default();
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            lock_correlation_scopes(&mut tx, events, correlation).await?;
        }
        let received_at = to_ms(Utc::now());
        for (index, event) in events.iter().enumerate() {
            let id = event.id.to_string();
            let known = sqlx::query("SELECT 1 AS one FROM events WHERE id = $1")
                .bind(&id)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            outcome.accepted.push(event.id);
            if known {
                continue;
            }
            let followed = match event.episode {
                Some(episode) => episodes::find(&mut tx, gateway_id, episode).await?,
                None => None,
            };
            if let (Some(episode), Some(followed)) = (event.episode, &followed)
                && !followed.outlived_its_case(event, episode)
            {
                let case_id = &followed.case_id;
                insert_event(&mut tx, gateway_id, event, received_at, case_id).await?;
                episodes::apply(&mut tx, gateway_id, event, episode, followed, received_at).await?;
                outcome.attached += 1;
                outcome.fresh.push(FreshEvent {
                    index,
                    case_id: case_id.clone(),
                    opened: false,
                    department: followed.department.clone(),
                });
                continue;
            }
            // A one-off event, the first of an episode, or an update that outlived its case.
            let moved = followed.is_some();
            if let Some((case_id, department)) =
                attach(&mut tx, gateway_id, event, correlation, received_at).await?
            {
                insert_event(&mut tx, gateway_id, event, received_at, &case_id).await?;
                if let Some(episode) = event.episode {
                    episodes::record(&mut tx, gateway_id, event, episode, &case_id, moved).await?;
                }
                outcome.attached += 1;
                outcome.fresh.push(FreshEvent {
                    index,
                    case_id,
                    opened: false,
                    department,
                });
                continue;
            }
            let case = open_case(event);
            let route = case.route.as_ref();
            sqlx::query(
                "INSERT INTO cases (id, title, category, state, queue, severity, department, supervisor, time_limit, \
                 condition_text, closing_condition, due_at, lat, lon, area_code, grid, opened_at, updated_at, last_event_at, warn_at, \
                 dispatched_at, first_dispatched_at, dispatch_due_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17, $18, $19, $20, $20, $21)",
            )
            .bind(case.id.to_string())
            .bind(&case.title)
            .bind(event.category.as_str())
            .bind(case.state.as_str())
            .bind(case.queue.as_str())
            .bind(case.severity.as_str())
            .bind(route.map(|r| r.department.clone()))
            .bind(route.and_then(|r| r.supervisor.clone()))
            .bind(route.map(|r| r.time_limit.to_string()))
            .bind(route.and_then(|r| r.condition.clone()))
            .bind(route.and_then(|r| r.closing.clone()))
            .bind(case.due_at.map(to_ms))
            .bind(event.location.lat)
            .bind(event.location.lon)
            .bind(event.location.area_code.as_deref())
            .bind(event.location.grid.as_deref())
            .bind(to_ms(case.opened_at))
            .bind(to_ms(event.occurred_at))
            .bind(case.warn_at.map(to_ms))
            .bind(route.map(|_| to_ms(case.opened_at)))
            .bind(to_ms(case.dispatch_due_at))
            .execute(&mut *tx)
            .await?;
            let case_id = case.id.to_string();
            insert_event(&mut tx, gateway_id, event, received_at, &case_id).await?;
            if let Some(episode) = event.episode {
                episodes::record(&mut tx, gateway_id, event, episode, &case_id, moved).await?;
            }
            sqlx::query(
                "INSERT INTO case_timeline (id, case_id, at, actor, action, from_state, to_state, note) \
                 VALUES ($1, $2, $3, $4, $5, NULL, $6, $7)",
            )
            .bind(Uuid::now_v7().to_string())
            .bind(case.id.to_string())
            .bind(to_ms(case.opened_at))
            .bind(format!("gateway:{gateway_id}"))
            .bind("open")
            .bind(case.state.as_str())
            .bind(&case.note)
            .execute(&mut *tx)
            .await?;
            outcome.opened.push(case.id);
            outcome.fresh.push(FreshEvent {
                index,
                case_id: case.id.to_string(),
                opened: true,
                department: case.route.as_ref().map(|r| r.department.clone()),
            });
        }
        tx.commit().await?;
        Ok(outcome)
    }

    /// The newest events first, and how many there are in all.
    pub async fn list_events(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<EventRow>), StoreError> {
        let total: i64 = sqlx::query("SELECT COUNT(*) AS n FROM events")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        let rows = sqlx::query(
            "SELECT id, gateway_id, source_kind, source_id, rule, kind, category, severity, occurred_at, received_at, case_id, body \
             FROM events ORDER BY received_at DESC, id DESC LIMIT $1 OFFSET $2",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .iter()
            .map(|r| {
                let body: String = r.try_get("body")?;
                let mut body: serde_json::Value =
                    serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
                Ok(EventRow {
                    location: body["location"].take(),
                    evidence: body["evidence"].take(),
                    description: body["description"].as_str().map(str::to_owned),
                    id: r.try_get("id")?,
                    gateway_id: r.try_get("gateway_id")?,
                    source_kind: r.try_get("source_kind")?,
                    source_id: r.try_get("source_id")?,
                    rule: r.try_get("rule")?,
                    kind: r.try_get("kind")?,
                    category: r.try_get("category")?,
                    severity: r.try_get("severity")?,
                    occurred_at: from_ms(r.try_get("occurred_at")?),
                    received_at: from_ms(r.try_get("received_at")?),
                    case_id: r.try_get("case_id")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok((total, items))
    }
}

type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// Inserts a new event of case `case_id`, with its evidence links.
async fn insert_event(
    tx: &mut Tx,
    gateway_id: &str,
    event: &EventEnvelope,
    received_at: i64,
    case_id: &str,
) -> Result<(), StoreError> {
    let id = event.id.to_string();
    sqlx::query(
        "INSERT INTO events (id, gateway_id, source_kind, source_id, rule, kind, category, severity, \
         occurred_at, received_at, body, case_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&id)
    .bind(gateway_id)
    .bind(event.source.kind())
    .bind(event.source.id())
    .bind(&event.rule)
    .bind(event.kind.as_str())
    .bind(event.category.as_str())
    .bind(event.severity.as_str())
    .bind(to_ms(event.occurred_at))
    .bind(received_at)
    .bind(serde_json::to_string(event).expect("an event always serialises"))
    .bind(case_id)
    .execute(&mut **tx)
    .await?;
    for evidence in &event.evidence {
        sqlx::query("INSERT INTO event_evidence (event_id, sha256, kind) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(&id)
            .bind(&evidence.sha256)
            .bind(evidence.kind.as_str())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Finds the open case `event` belongs to and updates it (latest event time, severity if
/// higher, a timeline entry) and returns its id and department. `None` when the event
/// should open a case of its own.
async fn attach(
    tx: &mut Tx,
    gateway_id: &str,
    event: &EventEnvelope,
    correlation: &CorrelationConfig,
    now: i64,
) -> Result<Option<(String, Option<String>)>, StoreError> {
    let loc = &event.location;
    let (min_lat, max_lat, min_lon, max_lon) = correlation.bounding_box(loc.lat, loc.lon);
    let since = to_ms(event.occurred_at - correlation.window());
    let rows = sqlx::query(
        "SELECT id, lat, lon, last_event_at, severity, department FROM cases WHERE category = $1 \
         AND state NOT IN ('void', 'closed', 'force_closed') AND last_event_at >= $2 \
         AND lat BETWEEN $3 AND $4 AND lon BETWEEN $5 AND $6",
    )
    .bind(event.category.as_str())
    .bind(since)
    .bind(min_lat)
    .bind(max_lat)
    .bind(min_lon)
    .bind(max_lon)
    .fetch_all(&mut **tx)
    .await?;
    let candidates = rows
        .iter()
        .map(|r| {
            Ok(Candidate {
                id: r.try_get("id")?,
                lat: r.try_get("lat")?,
                lon: r.try_get("lon")?,
                last_event_at: from_ms(r.try_get("last_event_at")?),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let Some(chosen) = correlation.pick(loc.lat, loc.lon, event.occurred_at, &candidates) else {
        return Ok(None);
    };
    let row = rows
        .iter()
        .find(|r| r.try_get::<String, _>("id").ok().as_deref() == Some(&chosen.id))
        .expect("picked from these rows");
    let severity = max_severity(&row.try_get::<String, _>("severity")?, event.severity);
    let last = chosen.last_event_at.max(event.occurred_at);
    sqlx::query(
        "UPDATE cases SET last_event_at = $1, severity = $2, updated_at = $3 WHERE id = $4",
    )
    .bind(to_ms(last))
    .bind(severity.as_str())
    .bind(now)
    .bind(&chosen.id)
    .execute(&mut **tx)
    .await?;
    note_on_timeline(
        tx,
        &chosen.id,
        now,
        &format!("gateway:{gateway_id}"),
        "attach_event",
        &format!(
            "event {} from {} {} joined the case",
            event.id,
            event.source.kind(),
            event.source.id()
        ),
    )
    .await?;
    Ok(Some((chosen.id.clone(), row.try_get("department")?)))
}

/// Concurrent batches must not both miss each other's new case and open two for one place:
/// one transaction at a time correlates a category in a patch of ground. The locks of the
/// whole batch are taken at once, in one order, so two batches cannot deadlock; they are
/// held until commit. (SQLite needs none: `BEGIN IMMEDIATE` lets one writer in at a time.)
async fn lock_correlation_scopes(
    tx: &mut Tx,
    events: &[EventEnvelope],
    correlation: &CorrelationConfig,
) -> Result<(), StoreError> {
    let mut keys: Vec<i64> = events
        .iter()
        .flat_map(|e| {
            correlation
                .lock_cells(e.location.lat, e.location.lon)
                .into_iter()
                .map(move |(y, x)| lock_key(&format!("{}:{y}:{x}", e.category)))
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(key)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// A stable 64-bit advisory-lock key for a correlation scope.
fn lock_key(scope: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("correlate:{scope}").as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("a SHA-256 has 32 bytes"))
}
