//! Patrol terminals as their gateways report them, and the tasks the centre sends them.
//!
//! A task is delivered through whichever gateway last reported its terminal; it stays open
//! (and is handed to that gateway with every report) until the terminal says it is done.

use chrono::{DateTime, Utc};
use protocol::PROTOCOL_VERSION;
use protocol::gateway::{AssignedTask, GatewayReport, GatewayReportAck};
use protocol::patrol::{Task, TaskKind, TaskState};
use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

use super::{Store, StoreError, from_ms, note_on_timeline, to_ms};

/// A terminal as its gateway last reported it.
#[derive(Debug, Serialize)]
pub struct TerminalRow {
    pub id: String,
    pub gateway_id: String,
    /// `online` or `offline`.
    pub presence: String,
    pub since: DateTime<Utc>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub position_at: Option<DateTime<Utc>>,
    pub reported_at: DateTime<Utc>,
}

/// A camera as its gateway last reported it.
#[derive(Debug, Serialize)]
pub struct CameraRow {
    pub gateway_id: String,
    pub camera_id: String,
    pub name: String,
    /// `connecting`, `streaming` or `retrying`.
    pub state: String,
    /// Frames decoded per second over the gateway's last report interval.
    pub fps: f64,
    pub last_frame_at: Option<DateTime<Utc>>,
    pub reconnects: i64,
    pub events_raised: i64,
    pub last_event_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub reported_at: DateTime<Utc>,
}

/// A task, as operators see it.
#[derive(Debug, Serialize)]
pub struct TaskRow {
    pub id: String,
    pub case_id: String,
    pub terminal_id: String,
    pub kind: String,
    pub title: String,
    pub note: Option<String>,
    /// `pending` (not yet on the terminal), `received` or `done`.
    pub state: String,
    /// What the worker answered.
    pub reply: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A task to create.
#[derive(Debug)]
pub struct NewTask<'a> {
    pub case_id: &'a str,
    pub terminal_id: &'a str,
    pub kind: TaskKind,
    pub title: &'a str,
    pub note: Option<&'a str>,
    pub actor: String,
}

fn kind_str(kind: TaskKind) -> &'static str {
    match kind {
        TaskKind::Verify => "verify",
        TaskKind::Check => "check",
    }
}

fn parse_kind(s: &str) -> TaskKind {
    if s == "check" {
        TaskKind::Check
    } else {
        TaskKind::Verify
    }
}

/// Whether a task in state `from` may move to `to`: forward only.
fn advances(from: &str, to: TaskState) -> bool {
    match to {
        TaskState::Received => from == "pending",
        TaskState::Done => from != "done",
    }
}

impl Store {
    /// Records gateway `gateway_id`'s report and returns what waits for it: the open tasks
    /// of its terminals and the unanswered re-inspections of its cameras.
    pub async fn apply_gateway_report(
        &self,
        gateway_id: &str,
        report: &GatewayReport,
    ) -> Result<GatewayReportAck, StoreError> {
        let now = to_ms(Utc::now());
        {
            let _turn = self.write_turn().await;
            let mut tx = self.begin_write().await?;
            sqlx::query(
                "UPDATE gateways SET version = $1, outbox_pending = $2, reported_at = $3, \
                 config_applied = $4, config_error = $5 WHERE id = $6",
            )
            .bind(&report.version)
            .bind(i64::try_from(report.outbox_pending).unwrap_or(i64::MAX))
            .bind(now)
            .bind(report.config_revision)
            .bind(report.config_error.as_deref())
            .bind(gateway_id)
            .execute(&mut *tx)
            .await?;
            for c in &report.cameras {
                sqlx::query(
                    "INSERT INTO cameras (gateway_id, camera_id, name, state, fps, last_frame_at, reconnects, \
                     events_raised, last_error, reported_at, last_event_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                     ON CONFLICT (gateway_id, camera_id) DO UPDATE SET name = excluded.name, state = excluded.state, \
                     fps = excluded.fps, last_frame_at = excluded.last_frame_at, reconnects = excluded.reconnects, \
                     events_raised = excluded.events_raised, last_error = excluded.last_error, \
                     reported_at = excluded.reported_at, last_event_at = excluded.last_event_at",
                )
                .bind(gateway_id)
                .bind(&c.camera_id)
                .bind(&c.name)
                .bind(c.state.as_str())
                .bind(f64::from(c.fps))
                .bind(c.last_frame_at.map(to_ms))
                .bind(i64::try_from(c.reconnects).unwrap_or(i64::MAX))
                .bind(i64::try_from(c.events_raised).unwrap_or(i64::MAX))
                .bind(c.last_error.as_deref())
                .bind(now)
                .bind(c.last_event_at.map(to_ms))
                .execute(&mut *tx)
                .await?;
            }
            for t in &report.terminals {
                let presence = match t.presence {
                    protocol::patrol::Presence::Online => "online",
                    protocol::patrol::Presence::Offline => "offline",
                };
                sqlx::query(
                    "INSERT INTO terminals (id, gateway_id, presence, since, lat, lon, position_at, reported_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (id) DO UPDATE SET gateway_id = excluded.gateway_id, presence = excluded.presence, \
                     since = excluded.since, lat = excluded.lat, lon = excluded.lon, \
                     position_at = excluded.position_at, reported_at = excluded.reported_at",
                )
                .bind(&t.terminal_id)
                .bind(gateway_id)
                .bind(presence)
                .bind(to_ms(t.since))
                .bind(t.position.as_ref().map(|p| p.lat))
                .bind(t.position.as_ref().map(|p| p.lon))
                .bind(t.position.as_ref().map(|p| to_ms(p.at)))
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            for ack in &report.task_acks {
                // Only a task of one of this gateway's terminals, and only forward.
                let row = sqlx::query(
                    "SELECT t.case_id, t.state FROM tasks t JOIN terminals m ON m.id = t.terminal_id \
                     WHERE t.id = $1 AND t.terminal_id = $2 AND m.gateway_id = $3",
                )
                .bind(ack.task_id.to_string())
                .bind(&ack.terminal_id)
                .bind(gateway_id)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else {
                    tracing::warn!(gateway = gateway_id, task = %ack.task_id, terminal = %ack.terminal_id, "acknowledgement of an unknown task; ignored");
                    continue;
                };
                let (case_id, state): (String, String) =
                    (row.try_get("case_id")?, row.try_get("state")?);
                if !advances(&state, ack.state) {
                    continue;
                }
                sqlx::query("UPDATE tasks SET state = $1, reply = COALESCE($2, reply), updated_at = $3 WHERE id = $4")
                    .bind(ack.state.as_str())
                    .bind(ack.note.as_deref())
                    .bind(now)
                    .bind(ack.task_id.to_string())
                    .execute(&mut *tx)
                    .await?;
                // Timed when the centre learns it, so the timeline stays in order whatever
                // the terminal's clock says.
                let note = match &ack.note {
                    Some(n) => format!("{}: {n}", ack.terminal_id),
                    None => ack.terminal_id.clone(),
                };
                note_on_timeline(
                    &mut tx,
                    &case_id,
                    now,
                    &format!("terminal:{}", ack.terminal_id),
                    &format!("task_{}", ack.state.as_str()),
                    &note,
                )
                .await?;
            }
            super::reinspections::answer(&mut tx, gateway_id, &report.reinspections, now).await?;
            tx.commit().await?;
        }
        let rows = sqlx::query(
            "SELECT t.id, t.case_id, t.terminal_id, t.kind, t.title, t.note, t.lat, t.lon, t.created_at \
             FROM tasks t JOIN terminals m ON m.id = t.terminal_id \
             WHERE m.gateway_id = $1 AND t.state <> 'done' ORDER BY t.created_at LIMIT 1000",
        )
        .bind(gateway_id)
        .fetch_all(&self.pool)
        .await?;
        let tasks = rows
            .iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                let case_id: String = r.try_get("case_id")?;
                let kind: String = r.try_get("kind")?;
                Ok(AssignedTask {
                    terminal_id: r.try_get("terminal_id")?,
                    task: Task {
                        v: PROTOCOL_VERSION,
                        task_id: Uuid::parse_str(&id).unwrap_or_default(),
                        case_id: Uuid::parse_str(&case_id).unwrap_or_default(),
                        kind: parse_kind(&kind),
                        title: r.try_get("title")?,
                        note: r.try_get("note")?,
                        lat: r.try_get("lat")?,
                        lon: r.try_get("lon")?,
                        issued_at: from_ms(r.try_get("created_at")?),
                    },
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(GatewayReportAck {
            v: PROTOCOL_VERSION,
            tasks,
            reinspections: self.open_reinspections(gateway_id).await?,
        })
    }

    /// Creates a task for a known terminal about an existing case; `Err("case")` or
    /// `Err("terminal")` when that one is unknown.
    pub async fn create_task(
        &self,
        t: &NewTask<'_>,
    ) -> Result<Result<TaskRow, &'static str>, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let Some(case) = sqlx::query("SELECT lat, lon FROM cases WHERE id = $1")
            .bind(t.case_id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(Err("case"));
        };
        let known = sqlx::query("SELECT id FROM terminals WHERE id = $1")
            .bind(t.terminal_id)
            .fetch_optional(&mut *tx)
            .await?;
        if known.is_none() {
            return Ok(Err("terminal"));
        }
        let (id, now) = (Uuid::now_v7().to_string(), Utc::now());
        sqlx::query(
            "INSERT INTO tasks (id, case_id, terminal_id, kind, title, note, lat, lon, state, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, $10)",
        )
        .bind(&id)
        .bind(t.case_id)
        .bind(t.terminal_id)
        .bind(kind_str(t.kind))
        .bind(t.title)
        .bind(t.note)
        .bind(case.try_get::<f64, _>("lat")?)
        .bind(case.try_get::<f64, _>("lon")?)
        .bind(&t.actor)
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await?;
        note_on_timeline(
            &mut tx,
            t.case_id,
            to_ms(now),
            &t.actor,
            "task_assigned",
            &format!("{} → {}: {}", kind_str(t.kind), t.terminal_id, t.title),
        )
        .await?;
        tx.commit().await?;
        Ok(Ok(TaskRow {
            id,
            case_id: t.case_id.to_owned(),
            terminal_id: t.terminal_id.to_owned(),
            kind: kind_str(t.kind).to_owned(),
            title: t.title.to_owned(),
            note: t.note.map(str::to_owned),
            state: "pending".into(),
            reply: None,
            created_by: t.actor.clone(),
            created_at: now,
            updated_at: now,
        }))
    }

    /// The tasks of case `case_id`, oldest first.
    pub async fn list_tasks(&self, case_id: &str) -> Result<Vec<TaskRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, case_id, terminal_id, kind, title, note, state, reply, created_by, created_at, updated_at \
             FROM tasks WHERE case_id = $1 ORDER BY created_at, id",
        )
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TaskRow {
                    id: r.try_get("id")?,
                    case_id: r.try_get("case_id")?,
                    terminal_id: r.try_get("terminal_id")?,
                    kind: r.try_get("kind")?,
                    title: r.try_get("title")?,
                    note: r.try_get("note")?,
                    state: r.try_get("state")?,
                    reply: r.try_get("reply")?,
                    created_by: r.try_get("created_by")?,
                    created_at: from_ms(r.try_get("created_at")?),
                    updated_at: from_ms(r.try_get("updated_at")?),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Every camera the gateways have reported, by gateway and camera.
    pub async fn list_cameras(&self) -> Result<Vec<CameraRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT gateway_id, camera_id, name, state, fps, last_frame_at, reconnects, events_raised, \
             last_event_at, last_error, reported_at FROM cameras ORDER BY gateway_id, camera_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CameraRow {
                    gateway_id: r.try_get("gateway_id")?,
                    camera_id: r.try_get("camera_id")?,
                    name: r.try_get("name")?,
                    state: r.try_get("state")?,
                    fps: r.try_get("fps")?,
                    last_frame_at: r.try_get::<Option<i64>, _>("last_frame_at")?.map(from_ms),
                    reconnects: r.try_get("reconnects")?,
                    events_raised: r.try_get("events_raised")?,
                    last_event_at: r.try_get::<Option<i64>, _>("last_event_at")?.map(from_ms),
                    last_error: r.try_get("last_error")?,
                    reported_at: from_ms(r.try_get("reported_at")?),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    pub async fn list_terminals(&self) -> Result<Vec<TerminalRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, gateway_id, presence, since, lat, lon, position_at, reported_at FROM terminals ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TerminalRow {
                    id: r.try_get("id")?,
                    gateway_id: r.try_get("gateway_id")?,
                    presence: r.try_get("presence")?,
                    since: from_ms(r.try_get("since")?),
                    lat: r.try_get("lat")?,
                    lon: r.try_get("lon")?,
                    position_at: r.try_get::<Option<i64>, _>("position_at")?.map(from_ms),
                    reported_at: from_ms(r.try_get("reported_at")?),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_only_move_forward() {
        assert!(advances("pending", TaskState::Received));
        assert!(advances("pending", TaskState::Done));
        assert!(advances("received", TaskState::Done));
        assert!(!advances("received", TaskState::Received));
        assert!(!advances("done", TaskState::Received));
        assert!(!advances("done", TaskState::Done));
    }
}
