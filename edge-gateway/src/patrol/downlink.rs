//! Tasks from the hub to patrol terminals, kept on disk: published on the terminal's task
//! topic, again every [`RETRY`] until the terminal acknowledges, and the terminals' answers
//! kept until the hub has them.

use std::time::Duration;

use chrono::Utc;
use protocol::gateway::{AssignedTask, TerminalTaskAck};
use protocol::patrol::{Channel, Task, TaskAck, TaskState};
use rumqttc::{AsyncClient, QoS};
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use crate::outbox::{Outbox, OutboxError};

/// How long a terminal has to acknowledge a task before it is published again.
pub const RETRY: Duration = Duration::from_secs(30);
/// How often the sender looks for tasks due.
const TICK: Duration = Duration::from_secs(1);

/// What an acknowledgement from a terminal did.
#[derive(Debug, PartialEq, Eq)]
pub enum AckOutcome {
    Recorded,
    /// No such task for this terminal: a mistake, or a forgery from another terminal.
    UnknownTask,
}

#[derive(Debug, Clone)]
pub struct Downlink {
    outbox: Outbox,
}

impl Downlink {
    pub fn new(outbox: Outbox) -> Self {
        Self { outbox }
    }

    /// Keeps the tasks the hub handed over; ones already known are left as they are.
    pub async fn add(&self, tasks: &[AssignedTask]) -> Result<(), OutboxError> {
        let now = Utc::now().timestamp_millis();
        let mut tx = self.outbox.pool().begin().await?;
        for t in tasks {
            sqlx::query(
                "INSERT INTO downlink_tasks (task_id, terminal_id, body, next_at, created_at) \
                 VALUES ($1, $2, $3, $4, $4) ON CONFLICT (task_id) DO NOTHING",
            )
            .bind(t.task.task_id.to_string())
            .bind(&t.terminal_id)
            .bind(serde_json::to_string(&t.task).expect("a task always serialises"))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Tasks not yet acknowledged whose time to (re)publish has come; marks them as sent.
    pub async fn take_due(&self) -> Result<Vec<(String, Task)>, OutboxError> {
        let now = Utc::now().timestamp_millis();
        let rows = sqlx::query(
            "SELECT task_id, terminal_id, body FROM downlink_tasks \
             WHERE state = 'sending' AND next_at <= $1 ORDER BY next_at LIMIT 200",
        )
        .bind(now)
        .fetch_all(self.outbox.pool())
        .await?;
        let mut due = Vec::with_capacity(rows.len());
        for r in rows {
            let id: String = r.try_get("task_id")?;
            sqlx::query(
                "UPDATE downlink_tasks SET attempts = attempts + 1, next_at = $1 WHERE task_id = $2",
            )
            .bind(now + RETRY.as_millis() as i64)
            .bind(&id)
            .execute(self.outbox.pool())
            .await?;
            let body: String = r.try_get("body")?;
            match serde_json::from_str(&body) {
                Ok(task) => due.push((r.try_get("terminal_id")?, task)),
                Err(e) => {
                    tracing::error!(task = %id, error = %e, "an unreadable task in the outbox")
                }
            }
        }
        Ok(due)
    }

    /// Records terminal `terminal_id`'s answer to a task, and keeps it for the hub.
    pub async fn acknowledge(
        &self,
        terminal_id: &str,
        ack: &TaskAck,
    ) -> Result<AckOutcome, OutboxError> {
        let mut tx = self.outbox.pool().begin().await?;
        let state = match ack.state {
            TaskState::Received => "received",
            TaskState::Done => "done",
        };
        // Forward only: a late `received` after `done` changes nothing here.
        let known = sqlx::query(
            "UPDATE downlink_tasks SET state = CASE WHEN state = 'done' THEN 'done' ELSE $1 END \
             WHERE task_id = $2 AND terminal_id = $3",
        )
        .bind(state)
        .bind(ack.task_id.to_string())
        .bind(terminal_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if known == 0 {
            return Ok(AckOutcome::UnknownTask);
        }
        let report = TerminalTaskAck {
            terminal_id: terminal_id.to_owned(),
            task_id: ack.task_id,
            state: ack.state,
            at: ack.at,
            note: ack.note.clone(),
        };
        sqlx::query("INSERT INTO task_acks (terminal_id, body) VALUES ($1, $2)")
            .bind(terminal_id)
            .bind(serde_json::to_string(&report).expect("an ack always serialises"))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(AckOutcome::Recorded)
    }

    /// Answers not yet reported to the hub, oldest first, with the last one's sequence
    /// number for [`Downlink::reported`].
    pub async fn unreported_acks(&self) -> Result<(Vec<TerminalTaskAck>, i64), OutboxError> {
        let rows = sqlx::query("SELECT seq, body FROM task_acks ORDER BY seq LIMIT 1000")
            .fetch_all(self.outbox.pool())
            .await?;
        let mut last = 0;
        let mut acks = Vec::with_capacity(rows.len());
        for r in rows {
            last = r.try_get("seq")?;
            let body: String = r.try_get("body")?;
            if let Ok(a) = serde_json::from_str(&body) {
                acks.push(a);
            }
        }
        Ok((acks, last))
    }

    /// The hub has every answer up to `seq`.
    pub async fn reported(&self, seq: i64) -> Result<(), OutboxError> {
        sqlx::query("DELETE FROM task_acks WHERE seq <= $1")
            .bind(seq)
            .execute(self.outbox.pool())
            .await?;
        Ok(())
    }

    /// Publishes due tasks until `shutdown`.
    pub async fn run(self, client: AsyncClient, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(TICK) => {}
            }
            let due = match self.take_due().await {
                Ok(due) => due,
                Err(e) => {
                    tracing::error!(error = %e, "patrol: cannot read the tasks");
                    continue;
                }
            };
            for (terminal, task) in due {
                let body = serde_json::to_vec(&task).expect("a task always serialises");
                tracing::info!(%terminal, task = %task.task_id, "patrol: sending a task");
                if let Err(e) = client
                    .publish(
                        Channel::Task.topic(&terminal),
                        QoS::AtLeastOnce,
                        false,
                        body,
                    )
                    .await
                {
                    tracing::warn!(error = %e, "patrol: cannot queue a task; it will be sent again");
                }
            }
        }
    }
}
