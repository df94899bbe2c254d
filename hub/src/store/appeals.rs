//! Appeals (申诉): a department disputes an assessment of its case, the centre upholds or
//! rejects it, and an upheld one excuses the case in the indicators (the case's
//! `overdue_excused`, `reworks_excused`). One transaction per write, with its timeline entry.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

use super::{Store, StoreError, from_ms, note_on_timeline, to_ms};
use crate::engine::AppealSubject;

#[derive(Debug, Clone, Serialize)]
pub struct AppealRow {
    pub id: String,
    pub case_id: String,
    pub department: String,
    /// `overdue` or `rework`.
    pub subject: String,
    pub reason: String,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    /// `pending`, `upheld` or `rejected`.
    pub state: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_note: Option<String>,
}

const APPEAL_COLUMNS: &str = "id, case_id, department, subject, reason, requested_by, requested_at, state, \
     decided_by, decided_at, decision_note";

fn appeal_row(r: &sqlx::any::AnyRow) -> Result<AppealRow, sqlx::Error> {
    Ok(AppealRow {
        id: r.try_get("id")?,
        case_id: r.try_get("case_id")?,
        department: r.try_get("department")?,
        subject: r.try_get("subject")?,
        reason: r.try_get("reason")?,
        requested_by: r.try_get("requested_by")?,
        requested_at: from_ms(r.try_get("requested_at")?),
        state: r.try_get("state")?,
        decided_by: r.try_get("decided_by")?,
        decided_at: r.try_get::<Option<i64>, _>("decided_at")?.map(from_ms),
        decision_note: r.try_get("decision_note")?,
    })
}

/// A department's appeal, as the store records it.
#[derive(Debug, Clone, Copy)]
pub struct AppealRequest<'a> {
    pub case_id: &'a str,
    pub department: &'a str,
    pub subject: AppealSubject,
    pub reason: &'a str,
    pub by: &'a str,
    pub at: DateTime<Utc>,
}

/// What an appeal on `subject` may still excuse on the case (a condition on `cases`): the
/// overdue finding if not excused yet, or the reworks not excused yet.
fn excusable(subject: AppealSubject) -> &'static str {
    match subject {
        AppealSubject::Overdue => "overdue_at IS NOT NULL AND overdue_excused = 0",
        AppealSubject::Rework => "rework_count > reworks_excused",
    }
}

/// How upholding an appeal on `subject` excuses the case (an assignment on `cases`).
fn excuse(subject: AppealSubject) -> &'static str {
    match subject {
        AppealSubject::Overdue => "overdue_excused = 1",
        AppealSubject::Rework => "reworks_excused = reworks_excused + 1",
    }
}

impl Store {
    /// Records an appeal. `None` when nothing is left to excuse on that subject (never
    /// found overdue, no rework, or already excused) or an appeal on it waits for a
    /// decision.
    pub async fn request_appeal(
        &self,
        r: &AppealRequest<'_>,
    ) -> Result<Option<String>, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "SELECT 1 AS one FROM cases WHERE id = $1 AND {} \
             AND NOT EXISTS (SELECT 1 FROM appeals WHERE case_id = $1 AND subject = $2 AND state = 'pending')",
            excusable(r.subject)
        );
        let open = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(r.case_id)
            .bind(r.subject.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if open.is_none() {
            return Ok(None);
        }
        let id = Uuid::now_v7().to_string();
        sqlx::query(
            "INSERT INTO appeals (id, case_id, department, subject, reason, requested_by, requested_at, state) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending')",
        )
        .bind(&id)
        .bind(r.case_id)
        .bind(r.department)
        .bind(r.subject.as_str())
        .bind(r.reason)
        .bind(r.by)
        .bind(to_ms(r.at))
        .execute(&mut *tx)
        .await?;
        note_on_timeline(
            &mut tx,
            r.case_id,
            to_ms(r.at),
            r.by,
            "appeal_requested",
            &format!("{}申诉: {}", r.subject.label(), r.reason),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    /// Decides a pending appeal; upholding it excuses the case on its subject. `false` when
    /// it was decided meanwhile (or is not the case's).
    pub async fn decide_appeal(
        &self,
        case_id: &str,
        appeal_id: &str,
        uphold: bool,
        note: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let subject: Option<String> = sqlx::query(
            "SELECT subject FROM appeals WHERE id = $1 AND case_id = $2 AND state = 'pending'",
        )
        .bind(appeal_id)
        .bind(case_id)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.try_get("subject"))
        .transpose()?;
        let Some(subject) = subject else {
            return Ok(false);
        };
        let subject: AppealSubject = subject
            .parse()
            .map_err(|e| StoreError::Conflict(format!("a stored appeal's subject {e}")))?;
        sqlx::query(
            "UPDATE appeals SET state = $1, decided_by = $2, decided_at = $3, decision_note = $4 \
             WHERE id = $5 AND state = 'pending'",
        )
        .bind(if uphold { "upheld" } else { "rejected" })
        .bind(by)
        .bind(to_ms(at))
        .bind(note)
        .bind(appeal_id)
        .execute(&mut *tx)
        .await?;
        if uphold {
            let sql = format!(
                "UPDATE cases SET {}, updated_at = $1 WHERE id = $2 AND {}",
                excuse(subject),
                excusable(subject)
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(to_ms(at))
                .bind(case_id)
                .execute(&mut *tx)
                .await?;
        }
        let (action, text) = if uphold {
            ("appeal_upheld", format!("申诉成立: {note}"))
        } else {
            ("appeal_rejected", format!("申诉不成立: {note}"))
        };
        note_on_timeline(&mut tx, case_id, to_ms(at), by, action, &text).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn list_appeals(&self, case_id: &str) -> Result<Vec<AppealRow>, StoreError> {
        let sql = format!(
            "SELECT {APPEAL_COLUMNS} FROM appeals WHERE case_id = $1 ORDER BY requested_at, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(case_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(appeal_row).collect::<Result<_, _>>()?)
    }
}
