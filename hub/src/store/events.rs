//! Storing events, and the cases they open, in one transaction per batch.

use chrono::{DateTime, Utc};
use protocol::EventEnvelope;
use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

use super::{Store, StoreError, from_ms, to_ms};
use crate::engine::NewCase;

/// What a committed batch did.
#[derive(Debug, Default)]
pub struct IngestOutcome {
    /// Every event of the batch now stored at the hub (new or already there).
    pub accepted: Vec<Uuid>,
    /// Cases opened for the events that were new.
    pub opened: Vec<Uuid>,
}

/// An event as listed by the API.
#[derive(Debug, Serialize)]
pub struct EventRow {
    pub id: String,
    pub gateway_id: String,
    pub source_kind: String,
    pub source_id: String,
    pub rule: String,
    pub category: String,
    pub severity: String,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub case_id: String,
}

impl Store {
    /// Stores `events` from gateway `gateway_id`. Each event not seen before opens the case
    /// that `open_case` returns for it. Duplicates (same id) are accepted and change nothing.
    /// Returns only after the transaction has committed, so an ack built from the outcome
    /// never names an event that could still be lost.
    pub async fn ingest(
        &self,
        gateway_id: &str,
        events: &[EventEnvelope],
        mut open_case: impl FnMut(&EventEnvelope) -> NewCase,
    ) -> Result<IngestOutcome, StoreError> {
        let mut outcome = IngestOutcome::default();
        let mut tx = self.begin_write().await?;
        let received_at = to_ms(Utc::now());
        for event in events {
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
            let case = open_case(event);
            let route = case.route.as_ref();
            sqlx::query(
                "INSERT INTO cases (id, title, category, state, queue, severity, department, supervisor, time_limit, \
                 condition_text, closing_condition, due_at, lat, lon, area_code, grid, opened_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17)",
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
            .execute(&mut *tx)
            .await?;
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
            .bind(case.id.to_string())
            .execute(&mut *tx)
            .await?;
            for evidence in &event.evidence {
                sqlx::query(
                    "INSERT INTO event_evidence (event_id, sha256, kind) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(&id)
                .bind(&evidence.sha256)
                .bind(evidence.kind.as_str())
                .execute(&mut *tx)
                .await?;
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
            "SELECT id, gateway_id, source_kind, source_id, rule, category, severity, occurred_at, received_at, case_id \
             FROM events ORDER BY received_at DESC, id DESC LIMIT $1 OFFSET $2",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .iter()
            .map(|r| {
                Ok(EventRow {
                    id: r.try_get("id")?,
                    gateway_id: r.try_get("gateway_id")?,
                    source_kind: r.try_get("source_kind")?,
                    source_id: r.try_get("source_id")?,
                    rule: r.try_get("rule")?,
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
