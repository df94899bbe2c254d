//! Episodes: the start, updates and end of one lasting condition a gateway's rule follows
//! (`protocol::Episode`). Within an ingest transaction, an event of a known episode joins
//! that episode's case; it is applied only when its `seq` is the highest seen yet, so
//! events that arrive late or twice never undo a later one.

use chrono::{DateTime, Utc};
use protocol::{Episode, EventEnvelope, EventKind, Severity};
use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError, from_ms, note_on_timeline, to_ms};

type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// A known episode, as an incoming event of it finds it.
#[derive(Debug)]
pub(super) struct Followed {
    pub case_id: String,
    pub last_seq: u32,
    pub case_open: bool,
    pub case_severity: String,
    pub department: Option<String>,
}

impl Followed {
    /// Whether `episode` comes after everything applied so far.
    pub fn is_newer(&self, episode: Episode) -> bool {
        episode.seq > self.last_seq
    }

    /// Whether `event` should open or join another case: it says the condition goes on
    /// while the episode's case is already closed.
    pub fn outlived_its_case(&self, event: &EventEnvelope, episode: Episode) -> bool {
        !self.case_open && event.kind == EventKind::Update && self.is_newer(episode)
    }
}

/// An episode as the case shows it.
#[derive(Debug, Serialize)]
pub struct EpisodeRow {
    pub id: String,
    pub gateway_id: String,
    pub source_kind: String,
    pub source_id: String,
    pub rule: String,
    /// The risk level of its latest applied event.
    pub severity: String,
    /// The `seq` of its latest applied event.
    pub last_seq: i64,
    /// When it started, once its start has arrived.
    pub started_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// When it ended; `None` while it goes on.
    pub ended_at: Option<DateTime<Utc>>,
    /// The longest its rule stays silent while it lasts, if the gateway said.
    pub refresh_s: Option<i64>,
    /// Going on, yet no event for twice its refresh time: its gateway may have restarted
    /// (forgetting it) or lost the camera; what is on site is not known.
    pub silent: bool,
}

impl EpisodeRow {
    /// Whether an episode last heard of at `updated_at` has gone quiet by `now`.
    pub fn is_silent(
        ended_at: Option<DateTime<Utc>>,
        updated_at: DateTime<Utc>,
        refresh_s: Option<i64>,
        now: DateTime<Utc>,
    ) -> bool {
        ended_at.is_none()
            && refresh_s.is_some_and(|r| now - updated_at > chrono::Duration::seconds(2 * r))
    }
}

/// The higher of a stored risk level and `new`.
pub(super) fn max_severity(stored: &str, new: Severity) -> Severity {
    [Severity::High, Severity::Medium, Severity::Low]
        .into_iter()
        .find(|s| s.as_str() == stored)
        .map_or(new, |s| s.max(new))
}

pub(super) async fn find(
    tx: &mut Tx,
    gateway_id: &str,
    episode: Episode,
) -> Result<Option<Followed>, StoreError> {
    let row = sqlx::query(
        "SELECT e.case_id, e.last_seq, c.state, c.severity, c.department FROM episodes e \
         JOIN cases c ON c.id = e.case_id WHERE e.gateway_id = $1 AND e.id = $2",
    )
    .bind(gateway_id)
    .bind(episode.id.to_string())
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let state: String = row.try_get("state")?;
    Ok(Some(Followed {
        case_id: row.try_get("case_id")?,
        last_seq: u32::try_from(row.try_get::<i64, _>("last_seq")?).unwrap_or(u32::MAX),
        case_open: !matches!(state.as_str(), "void" | "closed" | "force_closed"),
        case_severity: row.try_get("severity")?,
        department: row.try_get("department")?,
    }))
}

/// Records that `event`'s episode now belongs to case `case_id`: its first event seen, or
/// (`moved`) an update that outlived the episode's closed case.
pub(super) async fn record(
    tx: &mut Tx,
    gateway_id: &str,
    event: &EventEnvelope,
    episode: Episode,
    case_id: &str,
    moved: bool,
) -> Result<(), StoreError> {
    if moved {
        sqlx::query(
            "UPDATE episodes SET case_id = $1, last_seq = $2, severity = $3, updated_at = $4 \
             WHERE gateway_id = $5 AND id = $6",
        )
        .bind(case_id)
        .bind(i64::from(episode.seq))
        .bind(event.severity.as_str())
        .bind(to_ms(event.occurred_at))
        .bind(gateway_id)
        .bind(episode.id.to_string())
        .execute(&mut **tx)
        .await?;
        return Ok(());
    }
    let at = to_ms(event.occurred_at);
    sqlx::query(
        "INSERT INTO episodes (gateway_id, id, source_kind, source_id, rule, case_id, last_seq, \
         severity, started_at, updated_at, ended_at, refresh_s) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(gateway_id)
    .bind(episode.id.to_string())
    .bind(event.source.kind())
    .bind(event.source.id())
    .bind(&event.rule)
    .bind(case_id)
    .bind(i64::from(episode.seq))
    .bind(event.severity.as_str())
    .bind((event.kind == EventKind::Raised).then_some(at))
    .bind(at)
    .bind((event.kind == EventKind::Ended).then_some(at))
    .bind(episode.refresh_s.map(i64::from))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Applies `event` of a known episode, already stored on the episode's case: a newer event
/// moves the episode on (and, while the case is open, the case's latest event time and risk
/// level, with a timeline entry); an older one only fills in when the episode started.
pub(super) async fn apply(
    tx: &mut Tx,
    gateway_id: &str,
    event: &EventEnvelope,
    episode: Episode,
    followed: &Followed,
    now: i64,
) -> Result<(), StoreError> {
    let at = to_ms(event.occurred_at);
    if event.kind == EventKind::Raised {
        sqlx::query(
            "UPDATE episodes SET started_at = $1 WHERE gateway_id = $2 AND id = $3 AND started_at IS NULL",
        )
        .bind(at)
        .bind(gateway_id)
        .bind(episode.id.to_string())
        .execute(&mut **tx)
        .await?;
    }
    if !followed.is_newer(episode) {
        return Ok(());
    }
    sqlx::query(
        "UPDATE episodes SET last_seq = $1, severity = $2, updated_at = $3, \
         ended_at = $4 WHERE gateway_id = $5 AND id = $6",
    )
    .bind(i64::from(episode.seq))
    .bind(event.severity.as_str())
    .bind(at)
    .bind((event.kind == EventKind::Ended).then_some(at))
    .bind(gateway_id)
    .bind(episode.id.to_string())
    .execute(&mut **tx)
    .await?;
    if !followed.case_open {
        return Ok(());
    }
    let severity = max_severity(&followed.case_severity, event.severity);
    sqlx::query(
        "UPDATE cases SET last_event_at = CASE WHEN last_event_at > $1 THEN last_event_at ELSE $1 END, \
         severity = $2, updated_at = $3 WHERE id = $4",
    )
    .bind(at)
    .bind(severity.as_str())
    .bind(now)
    .bind(&followed.case_id)
    .execute(&mut **tx)
    .await?;
    let action = match event.kind {
        EventKind::Ended => "episode_ended",
        EventKind::Update | EventKind::Raised => "episode_update",
    };
    let note = event.description.clone().unwrap_or_else(|| {
        format!(
            "{} {} {}: {}",
            event.source.kind(),
            event.source.id(),
            event.rule,
            event.kind.as_str()
        )
    });
    note_on_timeline(
        tx,
        &followed.case_id,
        now,
        &format!("gateway:{gateway_id}"),
        action,
        &note,
    )
    .await?;
    Ok(())
}

impl Store {
    /// The episodes of case `case_id`, the earliest first.
    pub async fn case_episodes(&self, case_id: &str) -> Result<Vec<EpisodeRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, gateway_id, source_kind, source_id, rule, severity, last_seq, started_at, \
             updated_at, ended_at, refresh_s FROM episodes WHERE case_id = $1 ORDER BY id",
        )
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?;
        let now = Utc::now();
        let rows = rows
            .iter()
            .map(|r| {
                let updated_at = from_ms(r.try_get("updated_at")?);
                let ended_at = r.try_get::<Option<i64>, _>("ended_at")?.map(from_ms);
                let refresh_s: Option<i64> = r.try_get("refresh_s")?;
                Ok(EpisodeRow {
                    silent: EpisodeRow::is_silent(ended_at, updated_at, refresh_s, now),
                    refresh_s,
                    id: r.try_get("id")?,
                    gateway_id: r.try_get("gateway_id")?,
                    source_kind: r.try_get("source_kind")?,
                    source_id: r.try_get("source_id")?,
                    rule: r.try_get("rule")?,
                    severity: r.try_get("severity")?,
                    last_seq: r.try_get("last_seq")?,
                    started_at: r.try_get::<Option<i64>, _>("started_at")?.map(from_ms),
                    updated_at,
                    ended_at,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    #[test]
    fn an_episode_goes_silent_after_twice_its_refresh_time_unless_ended() {
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let at = |s: i64| t0 + Duration::seconds(s);
        assert!(!EpisodeRow::is_silent(None, t0, Some(600), at(1200)));
        assert!(EpisodeRow::is_silent(None, t0, Some(600), at(1201)));
        assert!(!EpisodeRow::is_silent(
            Some(at(10)),
            t0,
            Some(600),
            at(5000)
        ));
        assert!(
            !EpisodeRow::is_silent(None, t0, None, at(5000)),
            "no refresh time, no judgement"
        );
    }
}
