//! Deferrals (缓办, 挂账): a department asks, the centre decides, and an approved one parks
//! the case's deadline until it ends (on its date, by hand, or when the case is dispatched
//! anew). Each write is one transaction with its timeline entry; where the parked deadline
//! lands on resuming is [`crate::engine::deferral::resume`]'s to say.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

use super::{Store, StoreError, from_ms, note_on_timeline, to_ms};
use crate::engine::DeferralKind;

#[derive(Debug, Clone, Serialize)]
pub struct DeferralRow {
    pub id: String,
    pub case_id: String,
    pub department: String,
    /// `defer` (缓办) or `ledger` (挂账).
    pub kind: String,
    /// When a `defer` ends by itself.
    pub until: Option<DateTime<Utc>>,
    pub reason: String,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    /// `pending`, `approved` (in effect), `rejected` or `ended`.
    pub state: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_note: Option<String>,
    pub ended_by: Option<String>,
    pub ended_at: Option<DateTime<Utc>>,
    pub end_note: Option<String>,
}

/// A case's deadline as parked by the deferral in effect.
#[derive(Debug, Clone)]
pub struct ParkedClock {
    pub case_id: String,
    pub department: Option<String>,
    pub state: String,
    pub time_limit: Option<String>,
    pub deferred_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub warn_at: Option<DateTime<Utc>>,
}

/// The deadline a case gets back when its deferral ends.
#[derive(Debug, Clone, Copy)]
pub struct Restored {
    pub due_at: DateTime<Utc>,
    pub warn_at: Option<DateTime<Utc>>,
}

const DEFERRAL_COLUMNS: &str = "id, case_id, department, kind, until_at, reason, requested_by, requested_at, state, \
     decided_by, decided_at, decision_note, ended_by, ended_at, end_note";

fn deferral_row(r: &sqlx::any::AnyRow) -> Result<DeferralRow, sqlx::Error> {
    let ms = |c: &str| -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        Ok(r.try_get::<Option<i64>, _>(c)?.map(from_ms))
    };
    Ok(DeferralRow {
        id: r.try_get("id")?,
        case_id: r.try_get("case_id")?,
        department: r.try_get("department")?,
        kind: r.try_get("kind")?,
        until: ms("until_at")?,
        reason: r.try_get("reason")?,
        requested_by: r.try_get("requested_by")?,
        requested_at: from_ms(r.try_get("requested_at")?),
        state: r.try_get("state")?,
        decided_by: r.try_get("decided_by")?,
        decided_at: ms("decided_at")?,
        decision_note: r.try_get("decision_note")?,
        ended_by: r.try_get("ended_by")?,
        ended_at: ms("ended_at")?,
        end_note: r.try_get("end_note")?,
    })
}

fn parked_clock(r: &sqlx::any::AnyRow) -> Result<ParkedClock, sqlx::Error> {
    Ok(ParkedClock {
        case_id: r.try_get("id")?,
        department: r.try_get("department")?,
        state: r.try_get("state")?,
        time_limit: r.try_get("time_limit")?,
        deferred_at: from_ms(r.try_get("deferred_at")?),
        due_at: from_ms(r.try_get("paused_due_at")?),
        warn_at: r.try_get::<Option<i64>, _>("paused_warn_at")?.map(from_ms),
    })
}

/// A department's request, as the store records it.
#[derive(Debug, Clone, Copy)]
pub struct DeferralRequest<'a> {
    pub case_id: &'a str,
    pub department: &'a str,
    pub kind: DeferralKind,
    pub until: Option<DateTime<Utc>>,
    pub reason: &'a str,
    pub by: &'a str,
    pub at: DateTime<Utc>,
}

const PARKED_COLUMNS: &str =
    "id, department, state, time_limit, deferred_at, paused_due_at, paused_warn_at";

impl Store {
    /// Records a department's request. `None` when the case already has one waiting for a
    /// decision or a deferral in effect.
    pub async fn request_deferral(
        &self,
        r: &DeferralRequest<'_>,
    ) -> Result<Option<String>, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let busy = sqlx::query(
            "SELECT 1 AS one FROM deferrals WHERE case_id = $1 AND state IN ('pending', 'approved')",
        )
        .bind(r.case_id)
        .fetch_optional(&mut *tx)
        .await?;
        if busy.is_some() {
            return Ok(None);
        }
        let id = Uuid::now_v7().to_string();
        sqlx::query(
            "INSERT INTO deferrals (id, case_id, department, kind, until_at, reason, requested_by, requested_at, state) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending')",
        )
        .bind(&id)
        .bind(r.case_id)
        .bind(r.department)
        .bind(r.kind.as_str())
        .bind(r.until.map(to_ms))
        .bind(r.reason)
        .bind(r.by)
        .bind(to_ms(r.at))
        .execute(&mut *tx)
        .await?;
        let until = r
            .until
            .map(|u| format!(" until {}", u.to_rfc3339()))
            .unwrap_or_default();
        note_on_timeline(
            &mut tx,
            r.case_id,
            to_ms(r.at),
            r.by,
            "deferral_requested",
            &format!("申请{}{until}: {}", r.kind.label(), r.reason),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    /// One of the case's deferrals.
    pub async fn deferral(
        &self,
        case_id: &str,
        deferral_id: &str,
    ) -> Result<Option<DeferralRow>, StoreError> {
        let sql =
            format!("SELECT {DEFERRAL_COLUMNS} FROM deferrals WHERE case_id = $1 AND id = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(case_id)
            .bind(deferral_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(deferral_row).transpose()?)
    }

    /// Decides a pending request. An approval parks the case's deadline (it must have one
    /// and no deferral in effect). `false` when the request was decided meanwhile or the
    /// case no longer has a deadline to park.
    pub async fn decide_deferral(
        &self,
        case_id: &str,
        deferral_id: &str,
        approve: bool,
        note: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let decided = sqlx::query(
            "UPDATE deferrals SET state = $1, decided_by = $2, decided_at = $3, decision_note = $4 \
             WHERE id = $5 AND case_id = $6 AND state = 'pending'",
        )
        .bind(if approve { "approved" } else { "rejected" })
        .bind(by)
        .bind(to_ms(at))
        .bind(note)
        .bind(deferral_id)
        .bind(case_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if decided == 0 {
            return Ok(false);
        }
        if approve {
            let parked = sqlx::query(
                "UPDATE cases SET deferral_kind = (SELECT kind FROM deferrals WHERE id = $1), \
                 deferred_until = (SELECT until_at FROM deferrals WHERE id = $1), deferred_at = $2, \
                 paused_due_at = due_at, paused_warn_at = warn_at, due_at = NULL, warn_at = NULL, \
                 deferrals_approved = deferrals_approved + 1, updated_at = $2 \
                 WHERE id = $3 AND due_at IS NOT NULL AND deferred_at IS NULL",
            )
            .bind(deferral_id)
            .bind(to_ms(at))
            .bind(case_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if parked == 0 {
                return Ok(false);
            }
        }
        let (action, text) = if approve {
            ("deferral_approved", format!("同意缓办/挂账: {note}"))
        } else {
            ("deferral_rejected", format!("不同意缓办/挂账: {note}"))
        };
        note_on_timeline(&mut tx, case_id, to_ms(at), by, action, &text).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The parked deadline of the case's deferral in effect, if any.
    pub async fn parked_clock(&self, case_id: &str) -> Result<Option<ParkedClock>, StoreError> {
        let sql =
            format!("SELECT {PARKED_COLUMNS} FROM cases WHERE id = $1 AND deferred_at IS NOT NULL");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(case_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(parked_clock).transpose()?)
    }

    /// Deferrals (缓办) whose date has come by `now`, at most `limit`.
    pub async fn deferrals_due(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<ParkedClock>, StoreError> {
        let sql = format!(
            "SELECT {PARKED_COLUMNS} FROM cases WHERE deferred_until IS NOT NULL AND deferred_until <= $1 \
             ORDER BY deferred_until LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(to_ms(now))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(parked_clock).collect::<Result<_, _>>()?)
    }

    /// Ends the deferral `clock` describes: the case gets `restored` as its deadline. `false`
    /// when that deferral is no longer in effect (ended meanwhile).
    pub async fn end_deferral(
        &self,
        clock: &ParkedClock,
        restored: Restored,
        note: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let resumed = sqlx::query(
            // The next escalation of a case that was overdue waits as long as the case did.
            "UPDATE cases SET due_at = $1, warn_at = $2, deferral_kind = NULL, deferred_at = NULL, \
             deferred_until = NULL, paused_due_at = NULL, paused_warn_at = NULL, updated_at = $3, \
             next_escalation_at = next_escalation_at + ($3 - $5) \
             WHERE id = $4 AND deferred_at = $5",
        )
        .bind(to_ms(restored.due_at))
        .bind(restored.warn_at.map(to_ms))
        .bind(to_ms(at))
        .bind(&clock.case_id)
        .bind(to_ms(clock.deferred_at))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if resumed == 0 {
            return Ok(false);
        }
        end_deferral_record(&mut tx, &clock.case_id, note, by, at).await?;
        note_on_timeline(
            &mut tx,
            &clock.case_id,
            to_ms(at),
            by,
            "deferral_ended",
            &format!("恢复办理, due {}: {note}", restored.due_at.to_rfc3339()),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn list_deferrals(&self, case_id: &str) -> Result<Vec<DeferralRow>, StoreError> {
        let sql = format!(
            "SELECT {DEFERRAL_COLUMNS} FROM deferrals WHERE case_id = $1 ORDER BY requested_at, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(case_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(deferral_row).collect::<Result<_, _>>()?)
    }
}

/// How a deferral ends with a move of its case.
pub(super) struct DeferralEnd<'a> {
    /// Give the case back the deadline the deferral parked (as it was, not moved on).
    pub restore_parked: bool,
    pub note: &'a str,
    pub by: &'a str,
    pub at: DateTime<Utc>,
}

/// Ends the case's deferral in effect, if any, in the caller's transaction.
pub(super) async fn drop_deferral(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    case_id: &str,
    end: &DeferralEnd<'_>,
) -> Result<(), sqlx::Error> {
    let dropped = sqlx::query(
        "UPDATE cases SET due_at = CASE WHEN $1 = 1 THEN COALESCE(due_at, paused_due_at) ELSE due_at END, \
         warn_at = CASE WHEN $1 = 1 THEN COALESCE(warn_at, paused_warn_at) ELSE warn_at END, \
         deferral_kind = NULL, deferred_at = NULL, deferred_until = NULL, paused_due_at = NULL, \
         paused_warn_at = NULL WHERE id = $2 AND deferred_at IS NOT NULL",
    )
    .bind(i64::from(end.restore_parked))
    .bind(case_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if dropped > 0 {
        end_deferral_record(tx, case_id, end.note, end.by, end.at).await?;
    }
    Ok(())
}

/// Marks the case's deferral in effect ended (the case's own columns are the caller's).
async fn end_deferral_record(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    case_id: &str,
    note: &str,
    by: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE deferrals SET state = 'ended', ended_by = $1, ended_at = $2, end_note = $3 \
         WHERE case_id = $4 AND state = 'approved'",
    )
    .bind(by)
    .bind(to_ms(at))
    .bind(note)
    .bind(case_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
