//! The reference data sets and the log of their imports.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError, from_ms, to_ms};
use std::sync::Arc;

use crate::engine::{AreaMap, OwnershipList};
use crate::reference::{Kind, Reference};

/// An import about to be stored.
#[derive(Debug)]
pub struct ReferenceImport<'a> {
    pub kind: Kind,
    /// The revision the new set was checked against; the import fails if another landed
    /// since.
    pub based_on: i64,
    /// SHA-256 of the document, hex.
    pub sha256: &'a str,
    /// Where it came from: `api`, `cli FILE`, `settings FILE`.
    pub source: &'a str,
    pub actor: &'a str,
}

/// When a set was last replaced, and by whom.
#[derive(Debug, Clone, Serialize)]
pub struct SetInfo {
    pub revision: i64,
    pub rows: i64,
    pub imported_at: DateTime<Utc>,
    pub imported_by: String,
}

impl Store {
    /// The reference data in the database (empty sets where none was imported).
    pub async fn load_reference(&self) -> Result<Reference, StoreError> {
        let mut reference = Reference {
            revision: self.reference_revision().await?,
            ..Reference::default()
        };
        let rows = sqlx::query("SELECT kind, body FROM reference_sets")
            .fetch_all(&self.pool)
            .await?;
        for row in rows {
            let kind: String = row.try_get("kind")?;
            let body: String = row.try_get("body")?;
            let corrupt = |e: serde_json::Error| {
                StoreError::Conflict(format!("the stored {kind} set is unreadable: {e}"))
            };
            match Kind::parse(&kind) {
                Some(Kind::Departments) => {
                    reference.departments = serde_json::from_str(&body).map_err(corrupt)?;
                }
                Some(Kind::Categories) => {
                    reference.categories = serde_json::from_str(&body).map_err(corrupt)?;
                }
                Some(Kind::Ownership) => {
                    reference.ownership = OwnershipList {
                        items: serde_json::from_str(&body).map_err(corrupt)?,
                    };
                }
                Some(Kind::Areas) => {
                    let map = AreaMap::parse(&body).map_err(|e| {
                        StoreError::Conflict(format!("the stored area map is unreadable: {e}"))
                    })?;
                    reference.areas = Arc::new(map);
                }
                None => tracing::warn!(kind, "ignoring a reference set of an unknown kind"),
            }
        }
        Ok(reference)
    }

    /// The latest import's revision; 0 before any.
    pub async fn reference_revision(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query("SELECT COALESCE(MAX(revision), 0) AS r FROM reference_imports")
                .fetch_one(&self.pool)
                .await?
                .try_get("r")?,
        )
    }

    /// Stores `next`'s set of `import.kind` in place of the old one and logs the import, in
    /// one transaction. Returns the new revision, or `Conflict` when another import landed
    /// after `import.based_on`.
    pub async fn replace_reference_set(
        &self,
        next: &Reference,
        import: &ReferenceImport<'_>,
    ) -> Result<i64, StoreError> {
        let (body, rows) = match import.kind {
            Kind::Departments => (
                serde_json::to_string(&next.departments),
                next.departments.len(),
            ),
            Kind::Categories => (
                serde_json::to_string(&next.categories),
                next.categories.len(),
            ),
            Kind::Ownership => (
                serde_json::to_string(&next.ownership.items),
                next.ownership.items.len(),
            ),
            Kind::Areas => (serde_json::to_string(&next.areas.geojson), next.areas.len()),
        };
        let body = body.map_err(|e| StoreError::Conflict(e.to_string()))?;
        let revision = import.based_on + 1;
        let now = to_ms(Utc::now());
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let logged = sqlx::query(
            "INSERT INTO reference_imports (revision, kind, rows, sha256, source, actor, at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(revision)
        .bind(import.kind.as_str())
        .bind(rows as i64)
        .bind(import.sha256)
        .bind(import.source)
        .bind(import.actor)
        .bind(now)
        .execute(&mut *tx)
        .await;
        match logged {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(StoreError::Conflict(
                    "another import of reference data landed meanwhile; check the lists in force and import again".into(),
                ));
            }
            other => other?,
        };
        sqlx::query(
            "INSERT INTO reference_sets (kind, body, rows, revision, imported_at, imported_by) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (kind) DO UPDATE SET body = excluded.body, rows = excluded.rows, revision = excluded.revision, \
             imported_at = excluded.imported_at, imported_by = excluded.imported_by",
        )
        .bind(import.kind.as_str())
        .bind(&body)
        .bind(rows as i64)
        .bind(revision)
        .bind(now)
        .bind(import.actor)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(revision)
    }

    /// When the set of `kind` was last replaced; `None` before its first import.
    pub async fn reference_set_info(&self, kind: Kind) -> Result<Option<SetInfo>, StoreError> {
        let row = sqlx::query(
            "SELECT revision, rows, imported_at, imported_by FROM reference_sets WHERE kind = $1",
        )
        .bind(kind.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(SetInfo {
                revision: r.try_get("revision")?,
                rows: r.try_get("rows")?,
                imported_at: from_ms(r.try_get("imported_at")?),
                imported_by: r.try_get("imported_by")?,
            })
        })
        .transpose()
    }
}
