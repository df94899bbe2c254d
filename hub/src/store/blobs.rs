//! Evidence blobs (snapshots, photos), stored once by their SHA-256, and the photos people
//! attach to cases.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError, from_ms, note_on_timeline, to_ms};

/// A photo attached to a case by a person.
#[derive(Debug, Serialize)]
pub struct AttachmentRow {
    pub sha256: String,
    /// `before`, `after`, `near` or `far` (DOMAIN.md's photo types).
    pub kind: String,
    pub content_type: String,
    pub uploaded_by: String,
    pub uploaded_at: DateTime<Utc>,
}

/// A photo to attach; the caller has checked the hash and the image type.
#[derive(Debug)]
pub struct NewAttachment<'a> {
    pub case_id: &'a str,
    pub sha256: &'a str,
    pub kind: &'a str,
    pub content_type: &'a str,
    pub data: &'a [u8],
    pub by: &'a str,
    pub at: DateTime<Utc>,
}

#[derive(Debug)]
pub struct Blob {
    pub content_type: String,
    pub data: Vec<u8>,
}

impl Store {
    /// Stores a blob whose hash the caller has verified. Returns false when it was already
    /// there (uploads are idempotent).
    pub async fn put_blob(
        &self,
        sha256: &str,
        content_type: &str,
        data: &[u8],
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO blobs (sha256, content_type, bytes, data, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(sha256)
        .bind(content_type)
        .bind(data.len() as i64)
        .bind(data)
        .bind(to_ms(Utc::now()))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    pub async fn get_blob(&self, sha256: &str) -> Result<Option<Blob>, StoreError> {
        let row = sqlx::query("SELECT content_type, data FROM blobs WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(Blob {
                content_type: r.try_get("content_type")?,
                data: r.try_get("data")?,
            })
        })
        .transpose()
    }

    /// Stores the photo and attaches it to the case with a timeline entry, in one
    /// transaction. Attaching the same photo twice changes nothing; returns whether it was
    /// new to the case.
    pub async fn attach_photo(&self, a: &NewAttachment<'_>) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO blobs (sha256, content_type, bytes, data, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(a.sha256)
        .bind(a.content_type)
        .bind(a.data.len() as i64)
        .bind(a.data)
        .bind(to_ms(a.at))
        .execute(&mut *tx)
        .await?;
        let added = sqlx::query(
            "INSERT INTO case_attachments (case_id, sha256, kind, content_type, uploaded_by, uploaded_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (case_id, sha256) DO NOTHING",
        )
        .bind(a.case_id)
        .bind(a.sha256)
        .bind(a.kind)
        .bind(a.content_type)
        .bind(a.by)
        .bind(to_ms(a.at))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if added {
            note_on_timeline(
                &mut tx,
                a.case_id,
                to_ms(a.at),
                a.by,
                "photo",
                &format!("{} photo {}", a.kind, a.sha256),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(added)
    }

    /// The photos people attached to a case, oldest first.
    pub async fn list_attachments(&self, case_id: &str) -> Result<Vec<AttachmentRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT sha256, kind, content_type, uploaded_by, uploaded_at FROM case_attachments \
             WHERE case_id = $1 ORDER BY uploaded_at, sha256",
        )
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AttachmentRow {
                    sha256: r.try_get("sha256")?,
                    kind: r.try_get("kind")?,
                    content_type: r.try_get("content_type")?,
                    uploaded_by: r.try_get("uploaded_by")?,
                    uploaded_at: from_ms(r.try_get("uploaded_at")?),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Whether the blob is evidence of, or a photo attached to, a case owned by
    /// `department`.
    pub async fn blob_belongs_to_department(
        &self,
        sha256: &str,
        department: &str,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "SELECT 1 AS one FROM event_evidence ev JOIN events e ON e.id = ev.event_id \
             JOIN cases c ON c.id = e.case_id WHERE ev.sha256 = $1 AND c.department = $2 \
             UNION ALL SELECT 1 AS one FROM case_attachments a JOIN cases c ON c.id = a.case_id \
             WHERE a.sha256 = $1 AND c.department = $2 LIMIT 1",
        )
        .bind(sha256)
        .bind(department)
        .fetch_optional(&self.pool)
        .await?
        .is_some())
    }
}
