//! Evidence blobs (snapshots, photos), stored once by their SHA-256.

use chrono::Utc;
use sqlx::Row;

use super::{Store, StoreError, to_ms};

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

    /// Whether the blob is evidence of a case owned by `department`.
    pub async fn blob_belongs_to_department(
        &self,
        sha256: &str,
        department: &str,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "SELECT 1 AS one FROM event_evidence ev JOIN events e ON e.id = ev.event_id \
             JOIN cases c ON c.id = e.case_id WHERE ev.sha256 = $1 AND c.department = $2 LIMIT 1",
        )
        .bind(sha256)
        .bind(department)
        .fetch_optional(&self.pool)
        .await?
        .is_some())
    }
}
