//! Episodes: the start, updates and end of one lasting condition a gateway's rule follows
//! (`protocol::Episode`), as a case shows them. How events move them on is decided by
//! `engine::ingest`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError, from_ms};

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
