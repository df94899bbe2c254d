//! Storing events, and the cases they open, in one transaction per batch: what the batch
//! touches is read, the pure [`ingest::place`] decides, and the result is written with a
//! few set-based statements ([`json_rows`]).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use protocol::EventEnvelope;
use serde::Serialize;
use serde_json::json;
use sqlx::{AssertSqlSafe, Row};
use uuid::Uuid;

use super::json_rows::{self, Column};
use super::{Backend, Store, StoreError, from_ms, to_ms};
use crate::engine::ingest::{self, CaseNow, EpisodeNow, Known, Placed, Placement};
use crate::engine::{CorrelationConfig, NewCase};

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
    pub fresh: Vec<Placed>,
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
    /// Stores `events` from gateway `gateway_id`. Each event not seen before joins its
    /// episode's case, or the open case of its category that `correlation` picks, or opens
    /// the case that `open_case` returns for it (see [`ingest::place`]). Duplicates (same
    /// id) are accepted and change nothing. The batch is read and written with a handful of
    /// set-based statements, whatever its size. Returns only after the transaction has
    /// committed, so an ack built from the outcome never names an event that could still
    /// be lost.
    pub async fn ingest(
        &self,
        gateway_id: &str,
        events: &[EventEnvelope],
        correlation: &CorrelationConfig,
        open_case: impl FnMut(&EventEnvelope) -> NewCase,
    ) -> Result<IngestOutcome, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            lock_correlation_scopes(&mut tx, events, correlation).await?;
        }
        // Times are stored in milliseconds; the batch works in what will be stored.
        let now = from_ms(to_ms(Utc::now()));
        let known = read_known(&mut tx, self.backend, gateway_id, events, correlation).await?;
        let placement = ingest::place(events, known, correlation, now, open_case);
        write(&mut tx, self.backend, gateway_id, events, &placement, now).await?;
        tx.commit().await?;
        Ok(IngestOutcome {
            attached: placement.placed.len() - placement.opened.len(),
            accepted: placement.accepted,
            opened: placement.opened.iter().map(|(_, case)| case.id).collect(),
            fresh: placement.placed,
        })
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

const ID: &[Column] = &[("id", "text")];

/// What is stored that the batch's events touch: which of them are stored already, their
/// episodes with the episodes' cases, and the open cases they could correlate with (per
/// category, in the box around all its events and since the earliest one's window).
async fn read_known(
    tx: &mut Tx,
    backend: Backend,
    gateway_id: &str,
    events: &[EventEnvelope],
    correlation: &CorrelationConfig,
) -> Result<Known, StoreError> {
    let mut known = Known::default();
    let ids: Vec<_> = events.iter().map(|e| [e.id]).collect();
    let sql = format!(
        "SELECT id FROM events WHERE id IN ({})",
        json_rows::select(backend, 1, ID)
    );
    for row in sqlx::query(AssertSqlSafe(sql))
        .bind(json_rows::param(&ids))
        .fetch_all(&mut **tx)
        .await?
    {
        let id: String = row.try_get("id")?;
        known.events.extend(id.parse::<Uuid>().ok());
    }
    let fresh: Vec<&EventEnvelope> = events
        .iter()
        .filter(|e| !known.events.contains(&e.id))
        .collect();
    let episodes: Vec<_> = fresh
        .iter()
        .filter_map(|e| e.episode.map(|ep| [ep.id]))
        .collect();
    if !episodes.is_empty() {
        let sql = format!(
            "SELECT e.id AS episode_id, e.last_seq, e.severity AS episode_severity, e.started_at, \
             e.updated_at, e.ended_at, {CASE_COLUMNS} FROM episodes e JOIN cases c ON c.id = e.case_id \
             WHERE e.gateway_id = $2 AND e.id IN ({})",
            json_rows::select(backend, 1, ID)
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(json_rows::param(&episodes))
            .bind(gateway_id)
            .fetch_all(&mut **tx)
            .await?;
        for row in rows {
            let case = case_now(&row)?;
            let id: String = row.try_get("episode_id")?;
            let Ok(id) = id.parse::<Uuid>() else { continue };
            known.episodes.push(EpisodeNow {
                id,
                case_id: case.id.clone(),
                last_seq: u32::try_from(row.try_get::<i64, _>("last_seq")?).unwrap_or(u32::MAX),
                severity: row.try_get("episode_severity")?,
                started_at: row.try_get::<Option<i64>, _>("started_at")?.map(from_ms),
                updated_at: from_ms(row.try_get("updated_at")?),
                ended_at: row.try_get::<Option<i64>, _>("ended_at")?.map(from_ms),
            });
            known.cases.push(case);
        }
    }
    let mut scopes: BTreeMap<&str, (f64, f64, f64, f64, DateTime<Utc>)> = BTreeMap::new();
    for e in &fresh {
        let (min_lat, max_lat, min_lon, max_lon) =
            correlation.bounding_box(e.location.lat, e.location.lon);
        let since = e.occurred_at - correlation.window();
        scopes
            .entry(e.category.as_str())
            .and_modify(|s| {
                *s = (
                    s.0.min(min_lat),
                    s.1.max(max_lat),
                    s.2.min(min_lon),
                    s.3.max(max_lon),
                    s.4.min(since),
                );
            })
            .or_insert((min_lat, max_lat, min_lon, max_lon, since));
    }
    for (category, (min_lat, max_lat, min_lon, max_lon, since)) in scopes {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CASE_COLUMNS} FROM cases c WHERE category = $1 \
             AND state NOT IN ('void', 'closed', 'force_closed') AND last_event_at >= $2 \
             AND lat BETWEEN $3 AND $4 AND lon BETWEEN $5 AND $6"
        )))
        .bind(category)
        .bind(to_ms(since))
        .bind(min_lat)
        .bind(max_lat)
        .bind(min_lon)
        .bind(max_lon)
        .fetch_all(&mut **tx)
        .await?;
        for row in rows {
            known.cases.push(case_now(&row)?);
        }
    }
    Ok(known)
}

/// The case columns [`case_now`] reads, of a query whose `cases` are `c`.
const CASE_COLUMNS: &str =
    "c.id, c.category, c.state, c.severity, c.department, c.lat, c.lon, c.last_event_at";

fn case_now(row: &sqlx::any::AnyRow) -> Result<CaseNow, sqlx::Error> {
    Ok(CaseNow {
        id: row.try_get("id")?,
        category: row.try_get("category")?,
        state: row.try_get("state")?,
        severity: row.try_get("severity")?,
        department: row.try_get("department")?,
        lat: row.try_get("lat")?,
        lon: row.try_get("lon")?,
        last_event_at: from_ms(row.try_get("last_event_at")?),
    })
}

const NEW_CASE: &[Column] = &[
    ("id", "text"),
    ("title", "text"),
    ("category", "text"),
    ("state", "text"),
    ("queue", "text"),
    ("severity", "text"),
    ("department", "text"),
    ("supervisor", "text"),
    ("time_limit", "text"),
    ("condition_text", "text"),
    ("closing_condition", "text"),
    ("due_at", "bigint"),
    ("lat", "double precision"),
    ("lon", "double precision"),
    ("area_code", "text"),
    ("grid", "text"),
    ("opened_at", "bigint"),
    ("updated_at", "bigint"),
    ("last_event_at", "bigint"),
    ("warn_at", "bigint"),
    ("dispatched_at", "bigint"),
    ("first_dispatched_at", "bigint"),
    ("dispatch_due_at", "bigint"),
];

const NEW_EVENT: &[Column] = &[
    ("id", "text"),
    ("gateway_id", "text"),
    ("source_kind", "text"),
    ("source_id", "text"),
    ("rule", "text"),
    ("kind", "text"),
    ("category", "text"),
    ("severity", "text"),
    ("occurred_at", "bigint"),
    ("received_at", "bigint"),
    ("body", "text"),
    ("case_id", "text"),
];

const NEW_EVIDENCE: &[Column] = &[("event_id", "text"), ("sha256", "text"), ("kind", "text")];

const CASE_CHANGE: &[Column] = &[
    ("id", "text"),
    ("last_event_at", "bigint"),
    ("severity", "text"),
    ("updated_at", "bigint"),
];

const TIMELINE_ENTRY: &[Column] = &[
    ("id", "text"),
    ("case_id", "text"),
    ("at", "bigint"),
    ("actor", "text"),
    ("action", "text"),
    ("from_state", "text"),
    ("to_state", "text"),
    ("note", "text"),
];

const NEW_EPISODE: &[Column] = &[
    ("gateway_id", "text"),
    ("id", "text"),
    ("source_kind", "text"),
    ("source_id", "text"),
    ("rule", "text"),
    ("case_id", "text"),
    ("last_seq", "bigint"),
    ("severity", "text"),
    ("started_at", "bigint"),
    ("updated_at", "bigint"),
    ("ended_at", "bigint"),
    ("refresh_s", "bigint"),
];

const EPISODE_CHANGE: &[Column] = &[
    ("id", "text"),
    ("case_id", "text"),
    ("last_seq", "bigint"),
    ("severity", "text"),
    ("started_at", "bigint"),
    ("updated_at", "bigint"),
    ("ended_at", "bigint"),
];

/// Writes what placing the batch changed: the cases it opened first (its events refer to
/// them), then its events and their evidence, the cases it changed, their timelines and
/// the episodes.
async fn write(
    tx: &mut Tx,
    backend: Backend,
    gateway_id: &str,
    events: &[EventEnvelope],
    placement: &Placement,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let ms = |t: Option<DateTime<Utc>>| t.map(to_ms);
    let cases: Vec<_> = placement
        .opened
        .iter()
        .map(|(index, case)| {
            let event = &events[*index];
            let route = case.route.as_ref();
            json!([
                case.id.to_string(),
                case.title,
                event.category.as_str(),
                case.state.as_str(),
                case.queue.as_str(),
                case.severity.as_str(),
                route.map(|r| &r.department),
                route.and_then(|r| r.supervisor.as_ref()),
                route.map(|r| r.time_limit.to_string()),
                route.and_then(|r| r.condition.as_ref()),
                route.and_then(|r| r.closing.as_ref()),
                ms(case.due_at),
                event.location.lat,
                event.location.lon,
                event.location.area_code,
                event.location.grid,
                to_ms(case.opened_at),
                to_ms(case.opened_at),
                to_ms(event.occurred_at),
                ms(case.warn_at),
                route.map(|_| to_ms(case.opened_at)),
                route.map(|_| to_ms(case.opened_at)),
                to_ms(case.dispatch_due_at),
            ])
        })
        .collect();
    insert(tx, backend, "cases", NEW_CASE, &cases, "").await?;
    let received_at = to_ms(now);
    let mut evidence = Vec::new();
    let new_events = placement
        .placed
        .iter()
        .map(|placed| {
            let event = &events[placed.index];
            for e in &event.evidence {
                evidence.push((event.id, &e.sha256, e.kind.as_str()));
            }
            (
                event.id,
                gateway_id,
                event.source.kind(),
                event.source.id(),
                &event.rule,
                event.kind.as_str(),
                event.category.as_str(),
                event.severity.as_str(),
                to_ms(event.occurred_at),
                received_at,
                serde_json::to_string(event).expect("an event always serialises"),
                &placed.case_id,
            )
        })
        .collect::<Vec<_>>();
    insert(tx, backend, "events", NEW_EVENT, &new_events, "").await?;
    insert(
        tx,
        backend,
        "event_evidence",
        NEW_EVIDENCE,
        &evidence,
        "ON CONFLICT DO NOTHING",
    )
    .await?;
    let changes: Vec<_> = placement
        .changed_cases
        .iter()
        .map(|c| (&c.id, to_ms(c.last_event_at), &c.severity, received_at))
        .collect();
    if !changes.is_empty() {
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE cases SET last_event_at = r.last_event_at, severity = r.severity, \
             updated_at = r.updated_at FROM ({}) AS r WHERE cases.id = r.id",
            json_rows::select(backend, 1, CASE_CHANGE)
        )))
        .bind(json_rows::param(&changes))
        .execute(&mut **tx)
        .await?;
    }
    let actor = format!("gateway:{gateway_id}");
    let timeline = placement
        .timeline
        .iter()
        .map(|t| {
            (
                t.id,
                &t.case_id,
                to_ms(t.at),
                &actor,
                t.action,
                &t.from_state,
                &t.to_state,
                &t.note,
            )
        })
        .collect::<Vec<_>>();
    insert(tx, backend, "case_timeline", TIMELINE_ENTRY, &timeline, "").await?;
    let episodes = placement
        .new_episodes
        .iter()
        .map(|new| {
            let (event, e) = (&events[new.index], &new.state);
            (
                gateway_id,
                e.id,
                event.source.kind(),
                event.source.id(),
                &event.rule,
                &e.case_id,
                e.last_seq,
                &e.severity,
                ms(e.started_at),
                to_ms(e.updated_at),
                ms(e.ended_at),
                event.episode.and_then(|ep| ep.refresh_s),
            )
        })
        .collect::<Vec<_>>();
    insert(tx, backend, "episodes", NEW_EPISODE, &episodes, "").await?;
    let changes: Vec<_> = placement
        .changed_episodes
        .iter()
        .map(|e| {
            (
                e.id,
                &e.case_id,
                e.last_seq,
                &e.severity,
                ms(e.started_at),
                to_ms(e.updated_at),
                ms(e.ended_at),
            )
        })
        .collect();
    if !changes.is_empty() {
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE episodes SET case_id = r.case_id, last_seq = r.last_seq, severity = r.severity, \
             started_at = r.started_at, updated_at = r.updated_at, ended_at = r.ended_at \
             FROM ({}) AS r WHERE episodes.gateway_id = $2 AND episodes.id = r.id",
            json_rows::select(backend, 1, EPISODE_CHANGE)
        )))
        .bind(json_rows::param(&changes))
        .bind(gateway_id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// `INSERT INTO table` the `rows` (none: nothing to do), then `tail`.
async fn insert(
    tx: &mut Tx,
    backend: Backend,
    table: &str,
    columns: &[Column],
    rows: &[impl serde::Serialize],
    tail: &str,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    // `WHERE true` keeps SQLite from reading an `ON CONFLICT` tail as a join's `ON`.
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {table} ({}) {} WHERE true {tail}",
        json_rows::names(columns),
        json_rows::select(backend, 1, columns)
    )))
    .bind(json_rows::param(rows))
    .execute(&mut **tx)
    .await?;
    Ok(())
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
    // A batch's events mostly share a few scopes: each is hashed once.
    let scopes: BTreeSet<(&str, i64, i64)> = events
        .iter()
        .flat_map(|e| {
            correlation
                .lock_cells(e.location.lat, e.location.lon)
                .into_iter()
                .map(move |(y, x)| (e.category.as_str(), y, x))
        })
        .collect();
    let mut keys: Vec<i64> = scopes
        .into_iter()
        .map(|(category, y, x)| lock_key(&format!("{category}:{y}:{x}")))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    // The keys' rows come out of the JSON array in its order, so they are locked in order.
    sqlx::query(AssertSqlSafe(format!(
        "SELECT pg_advisory_xact_lock(k) FROM ({}) AS keys",
        json_rows::select(Backend::Postgres, 1, &[("k", "bigint")])
    )))
    .bind(json_rows::param(
        &keys.into_iter().map(|k| [k]).collect::<Vec<_>>(),
    ))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A stable 64-bit advisory-lock key for a correlation scope.
fn lock_key(scope: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("correlate:{scope}").as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("a SHA-256 has 32 bytes"))
}
