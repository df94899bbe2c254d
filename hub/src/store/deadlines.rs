//! The deadline clock's storage, and supervision notices (督办).
//!
//! Alarms: cases whose warning time or deadline has come are found, and each alarm is
//! raised once, in one transaction with its timeline entry (and for an overdue case the
//! supervision notice and the escalation). On PostgreSQL the due cases are claimed with
//! `FOR UPDATE SKIP LOCKED`, so several hub replicas on one database share the sweep and
//! none raises an alarm twice; on SQLite one writer at a time does the same.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

use super::{Backend, Store, StoreError, from_ms, note_on_timeline, to_ms};
use crate::engine::{Alarm, CaseState, Clock, deadline};

/// An alarm raised, for the live feed and the log.
#[derive(Debug, Clone)]
pub struct AlarmRaised {
    pub case_id: String,
    pub alarm: Alarm,
    pub state: CaseState,
    pub department: Option<String>,
    /// For an overdue case: the supervising department it was escalated to.
    pub escalated_to: Option<String>,
}

/// A supervision notice and its reply.
#[derive(Debug, Clone, Serialize)]
pub struct SupervisionRow {
    pub id: String,
    pub case_id: String,
    /// `timeout` (raised by the deadline clock), `leader` or `important`.
    pub kind: String,
    pub department: String,
    pub message: String,
    pub issued_by: String,
    pub issued_at: DateTime<Utc>,
    pub reply: Option<String>,
    pub replied_by: Option<String>,
    pub replied_at: Option<DateTime<Utc>>,
}

/// A notice to issue.
#[derive(Debug)]
pub struct NewNotice<'a> {
    pub case_id: &'a str,
    pub kind: &'a str,
    pub department: &'a str,
    pub message: &'a str,
    pub issued_by: &'a str,
    pub at: DateTime<Utc>,
}

type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// The clock presses the department holding an overdue case: a `timeout` supervision notice
/// saying `message`, and the alarm's timeline entry saying `note`.
async fn press(
    tx: &mut Tx,
    case_id: &str,
    department: &str,
    alarm: Alarm,
    message: &str,
    note: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    insert_notice(
        tx,
        &NewNotice {
            case_id,
            kind: "timeout",
            department,
            message,
            issued_by: CLOCK_ACTOR,
            at: now,
        },
    )
    .await?;
    note_on_timeline(tx, case_id, to_ms(now), CLOCK_ACTOR, alarm.as_str(), note).await?;
    Ok(())
}

async fn insert_notice(tx: &mut Tx, n: &NewNotice<'_>) -> Result<String, StoreError> {
    let id = Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO supervision (id, case_id, kind, department, message, issued_by, issued_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(n.case_id)
    .bind(n.kind)
    .bind(n.department)
    .bind(n.message)
    .bind(n.issued_by)
    .bind(to_ms(n.at))
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// Who raises deadline alarms, in timelines and notices.
const CLOCK_ACTOR: &str = "system:deadlines";

/// The rows `sql` selects (with `$1` = `now`, `$2` = `limit`), claimed for this
/// transaction: on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so another replica's
/// sweep passes them by; SQLite has one writer at a time anyway.
async fn claim_due(
    backend: Backend,
    tx: &mut Tx,
    sql: &str,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<sqlx::any::AnyRow>, sqlx::Error> {
    let sql = match backend {
        Backend::Postgres => format!("{sql} FOR UPDATE SKIP LOCKED"),
        Backend::Sqlite => sql.to_owned(),
    };
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(to_ms(now))
        .bind(limit)
        .fetch_all(&mut **tx)
        .await
}

impl Store {
    /// Raises the alarms due at `now` on at most `limit` cases; returns what it raised. An
    /// overdue case without a supervising department escalates to `escalate_default`.
    pub async fn raise_due_alarms(
        &self,
        now: DateTime<Utc>,
        escalate_default: &str,
        limit: i64,
    ) -> Result<Vec<AlarmRaised>, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        // Cases held whose warning or deadline has come, the nearest deadline first.
        const DUE: &str = "SELECT id, state, department, supervisor, time_limit, warn_at, due_at, warned_at, overdue_at, dispatched_at \
         FROM cases WHERE state IN ('dispatched', 'handling') \
         AND ((warned_at IS NULL AND overdue_at IS NULL AND warn_at <= $1) \
              OR (overdue_at IS NULL AND due_at <= $1)) \
         ORDER BY due_at LIMIT $2";
        let rows = claim_due(self.backend, &mut tx, DUE, now, limit).await?;
        let ms = |r: &sqlx::any::AnyRow, c: &str| -> Result<Option<DateTime<Utc>>, sqlx::Error> {
            Ok(r.try_get::<Option<i64>, _>(c)?.map(from_ms))
        };
        let mut raised = Vec::new();
        for row in &rows {
            let id: String = row.try_get("id")?;
            let state_text: String = row.try_get("state")?;
            let Ok(state) = state_text.parse::<CaseState>() else {
                continue;
            };
            let department: Option<String> = row.try_get("department")?;
            let supervisor: Option<String> = row.try_get("supervisor")?;
            let limit_text: Option<String> = row.try_get("time_limit")?;
            let clock = Clock {
                state,
                warn_at: ms(row, "warn_at")?,
                due_at: ms(row, "due_at")?,
                warned_at: ms(row, "warned_at")?,
                overdue_at: ms(row, "overdue_at")?,
            };
            let due = clock.due_at.map(|d| d.to_rfc3339()).unwrap_or_default();
            let limit_text = limit_text.unwrap_or_default();
            let dept = department.clone().unwrap_or_default();
            for alarm in deadline::alarms(&clock, now) {
                let escalated_to = match alarm {
                    Alarm::DeadlineWarning => {
                        sqlx::query("UPDATE cases SET warned_at = $1 WHERE id = $2")
                            .bind(to_ms(now))
                            .bind(&id)
                            .execute(&mut *tx)
                            .await?;
                        note_on_timeline(
                            &mut tx,
                            &id,
                            to_ms(now),
                            CLOCK_ACTOR,
                            alarm.as_str(),
                            &format!("临期预警 the deadline approaches: {limit_text}, due {due}"),
                        )
                        .await?;
                        None
                    }
                    Alarm::Overdue => {
                        let up = supervisor
                            .clone()
                            .unwrap_or_else(|| escalate_default.to_owned());
                        let next = clock.due_at.map(|due| {
                            deadline::next_escalation(
                                now,
                                ms(row, "dispatched_at").ok().flatten(),
                                due,
                            )
                        });
                        sqlx::query(
                            "UPDATE cases SET overdue_at = $1, escalated_to = $2, escalation_level = 1, \
                             next_escalation_at = $3, updated_at = $1 WHERE id = $4",
                        )
                        .bind(to_ms(now))
                        .bind(&up)
                        .bind(next.map(to_ms))
                        .bind(&id)
                        .execute(&mut *tx)
                        .await?;
                        press(
                            &mut tx,
                            &id,
                            &dept,
                            alarm,
                            &format!(
                                "超期督办: the time limit ({limit_text}) ran out at {due}; give the reason for the delay and keep going"
                            ),
                            &format!("overdue since {due}: supervision notice to {dept}, escalated to {up}"),
                            now,
                        )
                        .await?;
                        Some(up)
                    }
                    Alarm::Escalated => continue,
                };
                raised.push(AlarmRaised {
                    case_id: id.clone(),
                    alarm,
                    state,
                    department: department.clone(),
                    escalated_to,
                });
            }
        }
        tx.commit().await?;
        Ok(raised)
    }

    /// Takes each case still held and overdue past its next escalation time one level
    /// further up: from the department it was escalated to, to `parent_of` that one, with a
    /// supervision notice to the department and a timeline entry. A case at the top stays
    /// there. At most `limit` cases per call; replicas share the work as in
    /// [`Self::raise_due_alarms`].
    pub async fn escalate_overdue(
        &self,
        now: DateTime<Utc>,
        parent_of: &(dyn Fn(&str) -> Option<String> + Sync),
        limit: i64,
    ) -> Result<Vec<AlarmRaised>, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        // Cases held, still overdue, whose next level is due, the longest waiting first.
        const ESCALATING: &str = "SELECT id, state, department, escalated_to, escalation_level, due_at, dispatched_at \
             FROM cases WHERE state IN ('dispatched', 'handling') AND due_at <= $1 \
             AND next_escalation_at <= $1 ORDER BY next_escalation_at LIMIT $2";
        let rows = claim_due(self.backend, &mut tx, ESCALATING, now, limit).await?;
        let mut raised = Vec::new();
        for row in &rows {
            let id: String = row.try_get("id")?;
            let state_text: String = row.try_get("state")?;
            let department: Option<String> = row.try_get("department")?;
            let from: Option<String> = row.try_get("escalated_to")?;
            let level: i64 = row.try_get("escalation_level")?;
            let Some(up) = from.as_deref().and_then(parent_of) else {
                // The top (or a department the list does not know): no further level.
                sqlx::query("UPDATE cases SET next_escalation_at = NULL WHERE id = $1")
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                continue;
            };
            let due = from_ms(row.try_get("due_at")?);
            let dispatched = row.try_get::<Option<i64>, _>("dispatched_at")?.map(from_ms);
            let next = deadline::next_escalation(now, dispatched, due);
            sqlx::query(
                "UPDATE cases SET escalated_to = $1, escalation_level = $2, next_escalation_at = $3, \
                 updated_at = $4 WHERE id = $5",
            )
            .bind(&up)
            .bind(level + 1)
            .bind(to_ms(next))
            .bind(to_ms(now))
            .bind(&id)
            .execute(&mut *tx)
            .await?;
            press(
                &mut tx,
                &id,
                department.as_deref().unwrap_or_default(),
                Alarm::Escalated,
                &format!(
                    "持续超期，已逐级上报至 {up}: still overdue since {}; report the reason and keep going",
                    due.to_rfc3339()
                ),
                &format!(
                    "still overdue: escalated from {} to {up} (level {})",
                    from.unwrap_or_default(),
                    level + 1
                ),
                now,
            )
            .await?;
            if let Ok(state) = state_text.parse::<CaseState>() {
                raised.push(AlarmRaised {
                    case_id: id,
                    alarm: Alarm::Escalated,
                    state,
                    department,
                    escalated_to: Some(up),
                });
            }
        }
        tx.commit().await?;
        Ok(raised)
    }

    /// Issues a supervision notice with its timeline entry.
    pub async fn issue_notice(&self, n: &NewNotice<'_>) -> Result<String, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let id = insert_notice(&mut tx, n).await?;
        note_on_timeline(
            &mut tx,
            n.case_id,
            to_ms(n.at),
            n.issued_by,
            "supervise",
            &format!("督办 ({}) to {}: {}", n.kind, n.department, n.message),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Records `department`'s reply to notice `notice_id` of case `case_id`. `false` when
    /// there is no such unanswered notice to that department.
    pub async fn reply_notice(
        &self,
        case_id: &str,
        notice_id: &str,
        department: &str,
        reply: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let changed = sqlx::query(
            "UPDATE supervision SET reply = $1, replied_by = $2, replied_at = $3 \
             WHERE id = $4 AND case_id = $5 AND department = $6 AND replied_at IS NULL",
        )
        .bind(reply)
        .bind(by)
        .bind(to_ms(at))
        .bind(notice_id)
        .bind(case_id)
        .bind(department)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Ok(false);
        }
        note_on_timeline(&mut tx, case_id, to_ms(at), by, "supervision_reply", reply).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A case's supervision notices, oldest first.
    pub async fn list_notices(&self, case_id: &str) -> Result<Vec<SupervisionRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, case_id, kind, department, message, issued_by, issued_at, reply, replied_by, replied_at \
             FROM supervision WHERE case_id = $1 ORDER BY issued_at, id",
        )
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SupervisionRow {
                    id: r.try_get("id")?,
                    case_id: r.try_get("case_id")?,
                    kind: r.try_get("kind")?,
                    department: r.try_get("department")?,
                    message: r.try_get("message")?,
                    issued_by: r.try_get("issued_by")?,
                    issued_at: from_ms(r.try_get("issued_at")?),
                    reply: r.try_get("reply")?,
                    replied_by: r.try_get("replied_by")?,
                    replied_at: r.try_get::<Option<i64>, _>("replied_at")?.map(from_ms),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
