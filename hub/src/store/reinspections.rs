//! Automatic verification (自动核查): re-inspections of camera-detected hazards a department
//! reported handled, asked of the cameras' gateways and answered in their reports.

use chrono::{DateTime, Utc};
use protocol::gateway::{Reinspection, ReinspectionResult};
use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

use super::{Store, StoreError, from_ms, note_on_timeline, to_ms};

/// A re-inspection as the case detail shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ReinspectionRow {
    pub id: String,
    pub gateway_id: String,
    pub camera_id: String,
    pub requested_at: DateTime<Utc>,
    /// `cleared`, `still_present` or `not_checked`; absent while the gateway has not
    /// answered.
    pub outcome: Option<String>,
    pub checked_at: Option<DateTime<Utc>>,
    pub frames: Option<i64>,
    pub score: Option<f64>,
    pub snapshot_url: Option<String>,
    pub note: Option<String>,
}

/// Asks for a re-inspection by every camera whose events are on case `case_id`, unless one
/// asked earlier is still unanswered. Part of the caller's transaction (the `handle` move).
pub(super) async fn request(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    case_id: &str,
    actor: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    // The latest event of each camera, for where in the frame it saw the hazard.
    let rows = sqlx::query(
        "SELECT e.gateway_id, e.source_id, e.category, e.body FROM events e \
         WHERE e.case_id = $1 AND e.source_kind = 'camera' \
         AND NOT EXISTS (SELECT 1 FROM reinspections r WHERE r.case_id = e.case_id \
             AND r.gateway_id = e.gateway_id AND r.camera_id = e.source_id AND r.answered_at IS NULL) \
         ORDER BY e.occurred_at DESC",
    )
    .bind(case_id)
    .fetch_all(&mut **tx)
    .await?;
    let mut seen = std::collections::HashSet::new();
    for row in rows {
        let gateway: String = row.try_get("gateway_id")?;
        let camera: String = row.try_get("source_id")?;
        if !seen.insert((gateway.clone(), camera.clone())) {
            continue;
        }
        let body: String = row.try_get("body")?;
        let bbox = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|e| e.pointer("/detection/objects/0/bbox").cloned())
            .map(|b| b.to_string());
        sqlx::query(
            "INSERT INTO reinspections (id, case_id, gateway_id, camera_id, category, bbox, requested_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(case_id)
        .bind(&gateway)
        .bind(&camera)
        .bind(row.try_get::<String, _>("category")?)
        .bind(bbox)
        .bind(at)
        .execute(&mut **tx)
        .await?;
        note_on_timeline(
            tx,
            case_id,
            at,
            actor,
            "reinspection_requested",
            &format!("camera {camera} of gateway {gateway}"),
        )
        .await?;
    }
    Ok(())
}

/// Records gateway `gateway_id`'s answers; an answer to someone else's or an already
/// answered re-inspection changes nothing. A snapshot the hub holds is attached to the case.
pub(super) async fn answer(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    gateway_id: &str,
    results: &[ReinspectionResult],
    now: i64,
) -> Result<(), sqlx::Error> {
    for result in results {
        let id = result.id.to_string();
        let Some(row) = sqlx::query(
            "SELECT case_id, camera_id FROM reinspections WHERE id = $1 AND gateway_id = $2 AND answered_at IS NULL",
        )
        .bind(&id)
        .bind(gateway_id)
        .fetch_optional(&mut **tx)
        .await?
        else {
            tracing::warn!(gateway = gateway_id, reinspection = %id, "answer to an unknown or answered re-inspection; ignored");
            continue;
        };
        let case_id: String = row.try_get("case_id")?;
        let camera_id: String = row.try_get("camera_id")?;
        let snapshot = match &result.snapshot {
            Some(sha) => {
                let held = sqlx::query("SELECT content_type FROM blobs WHERE sha256 = $1")
                    .bind(sha)
                    .fetch_optional(&mut **tx)
                    .await?;
                if held.is_none() {
                    tracing::warn!(gateway = gateway_id, reinspection = %id, sha256 = %sha, "the re-inspection's snapshot was never uploaded; kept without it");
                }
                match held {
                    Some(r) => Some((sha, r.try_get::<String, _>("content_type")?)),
                    None => None,
                }
            }
            None => None,
        };
        sqlx::query(
            "UPDATE reinspections SET answered_at = $1, outcome = $2, checked_at = $3, frames = $4, \
             score = $5, snapshot = $6, note = $7 WHERE id = $8",
        )
        .bind(now)
        .bind(result.outcome.as_str())
        .bind(to_ms(result.checked_at))
        .bind(i64::from(result.frames))
        .bind(result.score.map(f64::from))
        .bind(snapshot.as_ref().map(|(sha, _)| sha.as_str()))
        .bind(result.note.as_deref())
        .bind(&id)
        .execute(&mut **tx)
        .await?;
        let actor = format!("gateway:{gateway_id}");
        if let Some((sha, content_type)) = &snapshot {
            sqlx::query(
                "INSERT INTO case_attachments (case_id, sha256, kind, content_type, uploaded_by, uploaded_at) \
                 VALUES ($1, $2, 'after', $3, $4, $5) ON CONFLICT (case_id, sha256) DO NOTHING",
            )
            .bind(&case_id)
            .bind(sha.as_str())
            .bind(content_type)
            .bind(&actor)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        let mut note = format!("camera {camera_id}: {} frames analysed", result.frames);
        if let Some(score) = result.score {
            note.push_str(&format!(", best score {score:.2}"));
        }
        if let Some(text) = &result.note {
            note.push_str(&format!("; {text}"));
        }
        note_on_timeline(
            tx,
            &case_id,
            now,
            &actor,
            &format!("reinspection_{}", result.outcome.as_str()),
            &note,
        )
        .await?;
    }
    Ok(())
}

impl Store {
    /// The re-inspections gateway `gateway_id` has not answered, oldest first.
    pub(super) async fn open_reinspections(
        &self,
        gateway_id: &str,
    ) -> Result<Vec<Reinspection>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, case_id, camera_id, category, bbox, requested_at FROM reinspections \
             WHERE gateway_id = $1 AND answered_at IS NULL ORDER BY requested_at, id LIMIT 1000",
        )
        .bind(gateway_id)
        .fetch_all(&self.pool)
        .await?;
        let mut open = Vec::with_capacity(rows.len());
        for r in rows {
            let id: String = r.try_get("id")?;
            let case_id: String = r.try_get("case_id")?;
            let category: String = r.try_get("category")?;
            let bbox: Option<String> = r.try_get("bbox")?;
            let (Ok(id), Ok(case_id), Ok(category)) = (
                Uuid::parse_str(&id),
                Uuid::parse_str(&case_id),
                category.parse(),
            ) else {
                tracing::warn!(reinspection = %id, "unreadable re-inspection row; skipped");
                continue;
            };
            open.push(Reinspection {
                id,
                case_id,
                camera_id: r.try_get("camera_id")?,
                category,
                bbox: bbox.and_then(|b| serde_json::from_str(&b).ok()),
                requested_at: from_ms(r.try_get("requested_at")?),
            });
        }
        Ok(open)
    }

    /// The re-inspections of case `case_id`, oldest first.
    pub async fn list_reinspections(
        &self,
        case_id: &str,
    ) -> Result<Vec<ReinspectionRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, gateway_id, camera_id, requested_at, outcome, checked_at, frames, score, snapshot, note \
             FROM reinspections WHERE case_id = $1 ORDER BY requested_at, id",
        )
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let snapshot: Option<String> = r.try_get("snapshot")?;
                Ok(ReinspectionRow {
                    id: r.try_get("id")?,
                    gateway_id: r.try_get("gateway_id")?,
                    camera_id: r.try_get("camera_id")?,
                    requested_at: from_ms(r.try_get("requested_at")?),
                    outcome: r.try_get("outcome")?,
                    checked_at: r.try_get::<Option<i64>, _>("checked_at")?.map(from_ms),
                    frames: r.try_get("frames")?,
                    score: r.try_get("score")?,
                    snapshot_url: snapshot.map(|s| format!("/api/v1/blobs/{s}")),
                    note: r.try_get("note")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
