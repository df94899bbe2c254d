//! Side records of the closed loop (DOMAIN.md): extensions (延期) a department asks for and
//! the centre decides, and callbacks (回访) after closing. Each write is one transaction with
//! its timeline entry and the case's counters the indicators read.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

use super::{Store, StoreError, from_ms, note_on_timeline, to_ms};

#[derive(Debug, Clone, Serialize)]
pub struct ExtensionRow {
    pub id: String,
    pub case_id: String,
    pub department: String,
    /// The extra time asked for, e.g. `2 working_days`.
    pub extra: String,
    pub reason: String,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    /// `pending`, `approved` or `rejected`.
    pub state: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_note: Option<String>,
    /// The deadline an approval set.
    pub new_due_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CallbackRow {
    pub id: String,
    pub case_id: String,
    /// 1 (very unsatisfied) to 5 (very satisfied).
    pub satisfaction: i64,
    pub result: String,
    pub called_by: String,
    pub called_at: DateTime<Utc>,
}

/// An approval's new deadline and warning time.
#[derive(Debug, Clone, Copy)]
pub struct NewDeadline {
    pub due_at: DateTime<Utc>,
    pub warn_at: DateTime<Utc>,
}

const EXTENSION_COLUMNS: &str = "id, case_id, department, extra, reason, requested_by, requested_at, state, \
     decided_by, decided_at, decision_note, new_due_at";

fn extension_row(r: &sqlx::any::AnyRow) -> Result<ExtensionRow, sqlx::Error> {
    let ms = |c: &str| -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        Ok(r.try_get::<Option<i64>, _>(c)?.map(from_ms))
    };
    Ok(ExtensionRow {
        id: r.try_get("id")?,
        case_id: r.try_get("case_id")?,
        department: r.try_get("department")?,
        extra: r.try_get("extra")?,
        reason: r.try_get("reason")?,
        requested_by: r.try_get("requested_by")?,
        requested_at: from_ms(r.try_get("requested_at")?),
        state: r.try_get("state")?,
        decided_by: r.try_get("decided_by")?,
        decided_at: ms("decided_at")?,
        decision_note: r.try_get("decision_note")?,
        new_due_at: ms("new_due_at")?,
    })
}

impl Store {
    /// Records a department's request for `extra` time. `None` when the case already has a
    /// request waiting for a decision.
    pub async fn request_extension(
        &self,
        case_id: &str,
        department: &str,
        extra: &str,
        reason: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let pending =
            sqlx::query("SELECT 1 AS one FROM extensions WHERE case_id = $1 AND state = 'pending'")
                .bind(case_id)
                .fetch_optional(&mut *tx)
                .await?;
        if pending.is_some() {
            return Ok(None);
        }
        let id = Uuid::now_v7().to_string();
        sqlx::query(
            "INSERT INTO extensions (id, case_id, department, extra, reason, requested_by, requested_at, state) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending')",
        )
        .bind(&id)
        .bind(case_id)
        .bind(department)
        .bind(extra)
        .bind(reason)
        .bind(by)
        .bind(to_ms(at))
        .execute(&mut *tx)
        .await?;
        note_on_timeline(
            &mut tx,
            case_id,
            to_ms(at),
            by,
            "extension_requested",
            &format!("申请延期 {extra}: {reason}"),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    /// The case's request waiting for a decision, if any.
    pub async fn pending_extension(
        &self,
        case_id: &str,
        extension_id: &str,
    ) -> Result<Option<ExtensionRow>, StoreError> {
        let sql = format!(
            "SELECT {EXTENSION_COLUMNS} FROM extensions WHERE case_id = $1 AND id = $2 AND state = 'pending'"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(case_id)
            .bind(extension_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(extension_row).transpose()?)
    }

    /// Decides a pending request: with `approved` set, the case gets that deadline and its
    /// clock starts again (a new warning, a new overdue alarm). `false` when the request
    /// was decided meanwhile.
    pub async fn decide_extension(
        &self,
        case_id: &str,
        extension_id: &str,
        approved: Option<NewDeadline>,
        note: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let decided = sqlx::query(
            "UPDATE extensions SET state = $1, decided_by = $2, decided_at = $3, decision_note = $4, new_due_at = $5 \
             WHERE id = $6 AND case_id = $7 AND state = 'pending'",
        )
        .bind(if approved.is_some() { "approved" } else { "rejected" })
        .bind(by)
        .bind(to_ms(at))
        .bind(note)
        .bind(approved.map(|a| to_ms(a.due_at)))
        .bind(extension_id)
        .bind(case_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if decided == 0 {
            return Ok(false);
        }
        if let Some(a) = approved {
            sqlx::query(
                "UPDATE cases SET due_at = $1, warn_at = $2, warned_at = NULL, overdue_at = NULL, \
                 escalated_to = NULL, escalation_level = 0, next_escalation_at = NULL, \
                 extensions_approved = extensions_approved + 1, updated_at = $3 WHERE id = $4",
            )
            .bind(to_ms(a.due_at))
            .bind(to_ms(a.warn_at))
            .bind(to_ms(at))
            .bind(case_id)
            .execute(&mut *tx)
            .await?;
        }
        let (action, text) = match approved {
            Some(a) => (
                "extension_approved",
                format!("同意延期, due {}: {note}", a.due_at.to_rfc3339()),
            ),
            None => ("extension_rejected", format!("不同意延期: {note}")),
        };
        note_on_timeline(&mut tx, case_id, to_ms(at), by, action, &text).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records a callback on a closed case; the case keeps the latest satisfaction.
    pub async fn add_callback(
        &self,
        case_id: &str,
        satisfaction: i64,
        result: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let id = Uuid::now_v7().to_string();
        sqlx::query(
            "INSERT INTO callbacks (id, case_id, satisfaction, result, called_by, called_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(case_id)
        .bind(satisfaction)
        .bind(result)
        .bind(by)
        .bind(to_ms(at))
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE cases SET satisfaction = $1 WHERE id = $2")
            .bind(satisfaction)
            .bind(case_id)
            .execute(&mut *tx)
            .await?;
        note_on_timeline(
            &mut tx,
            case_id,
            to_ms(at),
            by,
            "callback",
            &format!("回访 satisfaction {satisfaction}/5: {result}"),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn list_extensions(&self, case_id: &str) -> Result<Vec<ExtensionRow>, StoreError> {
        let sql = format!(
            "SELECT {EXTENSION_COLUMNS} FROM extensions WHERE case_id = $1 ORDER BY requested_at, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(case_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(extension_row).collect::<Result<_, _>>()?)
    }

    pub async fn list_callbacks(&self, case_id: &str) -> Result<Vec<CallbackRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, case_id, satisfaction, result, called_by, called_at FROM callbacks \
             WHERE case_id = $1 ORDER BY called_at, id",
        )
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CallbackRow {
                    id: r.try_get("id")?,
                    case_id: r.try_get("case_id")?,
                    satisfaction: r.try_get("satisfaction")?,
                    result: r.try_get("result")?,
                    called_by: r.try_get("called_by")?,
                    called_at: from_ms(r.try_get("called_at")?),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
