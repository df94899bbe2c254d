//! The device registry: gateways registered with their tokens, the cameras each gateway
//! should run, each gateway's configuration revision (grown in the same transaction as any
//! change to its cameras), and the audit of every change. Passwords arrive here sealed and are stored apart from the settings.

use chrono::{DateTime, Utc};
use protocol::device::CameraSpec;
use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

use super::principals::{hash_token, new_token};
use super::{Store, StoreError, TokenIssued, from_ms, to_ms};

/// A camera as the registry holds it. `spec.password` is always `None` here.
#[derive(Debug, Clone)]
pub struct RegistryCamera {
    pub id: String,
    pub gateway_id: String,
    pub spec: CameraSpec,
    /// The password, sealed (`crate::sealing`); `None` when the camera has none.
    pub password_sealed: Option<String>,
    pub asset_code: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// What a change does to a camera's stored password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordChange {
    Keep,
    Set(String),
    Clear,
}

/// A camera to enter, checked.
#[derive(Debug, Clone)]
pub struct NewCamera {
    pub gateway_id: String,
    pub spec: CameraSpec,
    pub password: PasswordChange,
    pub asset_code: Option<String>,
    /// What the audit records of the change (never a secret).
    pub detail: serde_json::Value,
}

/// The outcome of entering a camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entered {
    pub created: bool,
    /// The owning gateway's configuration revision after the change.
    pub revision: i64,
}

/// A registered asset a case's camera watches (a manhole cover's component code).
#[derive(Debug, Serialize)]
pub struct CaseAsset {
    pub camera_id: String,
    pub asset_code: String,
}

/// One change to devices, for the audit.
#[derive(Debug, Serialize)]
pub struct AuditRow {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: serde_json::Value,
}

const COLUMNS: &str = "id, gateway_id, spec, password_sealed, asset_code, updated_at, updated_by";

fn camera_from_row(row: &sqlx::any::AnyRow) -> Result<RegistryCamera, StoreError> {
    let spec: String = row.try_get("spec")?;
    let id: String = row.try_get("id")?;
    let spec = serde_json::from_str(&spec).map_err(|e| {
        StoreError::Conflict(format!(
            "the registry's entry for camera {id} is damaged: {e}"
        ))
    })?;
    Ok(RegistryCamera {
        id,
        gateway_id: row.try_get("gateway_id")?,
        spec,
        password_sealed: row.try_get("password_sealed")?,
        asset_code: row.try_get("asset_code")?,
        updated_at: from_ms(row.try_get("updated_at")?),
        updated_by: row.try_get("updated_by")?,
    })
}

impl Store {
    /// The registry's cameras, by id; those of `gateway` only when given.
    pub async fn registry_cameras(
        &self,
        gateway: Option<&str>,
    ) -> Result<Vec<RegistryCamera>, StoreError> {
        let rows = by_gateway(&self.pool, "camera_registry", COLUMNS, gateway).await?;
        rows.iter().map(camera_from_row).collect()
    }

    pub async fn registry_camera(&self, id: &str) -> Result<Option<RegistryCamera>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM camera_registry WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(camera_from_row)
        .transpose()
    }

    /// Enters or replaces cameras, all or none (`spec.password` is `None`; the password
    /// comes as `password`): grows the configuration revision of each gateway whose cameras
    /// change (a camera that moves changes both) and records each entry's `detail` in the
    /// audit, in one transaction. `Ok(Err(gateway))` names a gateway not registered.
    pub async fn enter_cameras(
        &self,
        cameras: &[NewCamera],
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<Result<Vec<Entered>, String>, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let mut entered = Vec::with_capacity(cameras.len());
        let mut touched = Vec::new();
        for camera in cameras {
            debug_assert!(
                camera.spec.password.is_none(),
                "passwords are stored sealed, apart"
            );
            let gateway = sqlx::query("SELECT id FROM gateways WHERE id = $1")
                .bind(&camera.gateway_id)
                .fetch_optional(&mut *tx)
                .await?;
            if gateway.is_none() {
                return Ok(Err(camera.gateway_id.clone()));
            }
            let created = enter(&mut tx, camera, actor, at, &mut touched).await?;
            entered.push(created);
        }
        touched.sort();
        touched.dedup();
        let mut revisions = std::collections::HashMap::new();
        for gateway in touched {
            let revision = bump_revision(&mut tx, &gateway).await?;
            revisions.insert(gateway, revision);
        }
        tx.commit().await?;
        Ok(Ok(cameras
            .iter()
            .zip(entered)
            .map(|(camera, created)| Entered {
                created,
                revision: revisions[&camera.gateway_id],
            })
            .collect()))
    }

    /// The assets the cameras whose events are on case `case_id` watch, as the registry
    /// has them now.
    pub async fn case_assets(&self, case_id: &str) -> Result<Vec<CaseAsset>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT r.id, r.asset_code FROM camera_registry r \
             JOIN events e ON e.source_kind = 'camera' AND e.source_id = r.id \
             WHERE e.case_id = $1 AND r.asset_code IS NOT NULL ORDER BY r.id",
        )
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CaseAsset {
                    camera_id: r.try_get("id")?,
                    asset_code: r.try_get("asset_code")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Removes a camera from the registry; `false` when it was not there.
    pub async fn remove_camera(
        &self,
        id: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let Some(row) = sqlx::query("SELECT gateway_id FROM camera_registry WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(false);
        };
        let gateway_id: String = row.try_get("gateway_id")?;
        sqlx::query("DELETE FROM camera_registry WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        bump_revision(&mut tx, &gateway_id).await?;
        let detail = serde_json::json!({ "gateway_id": gateway_id });
        audit(&mut tx, at, actor, "camera_removed", id, &detail).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The gateway's configuration revision; `None` when the gateway is not registered.
    pub async fn config_revision(&self, gateway_id: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT config_revision FROM gateways WHERE id = $1")
            .bind(gateway_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("config_revision")).transpose()?)
    }

    /// The newest changes first, at most `limit`: to devices, and with `users`, to the user
    /// roster too (targets `user:NAME`).
    pub async fn device_audit(&self, limit: i64, users: bool) -> Result<Vec<AuditRow>, StoreError> {
        let sql = if users {
            "SELECT at, actor, action, target, detail FROM device_audit ORDER BY at DESC, id DESC LIMIT $1"
        } else {
            "SELECT at, actor, action, target, detail FROM device_audit WHERE target NOT LIKE 'user:%' \
             ORDER BY at DESC, id DESC LIMIT $1"
        };
        let rows = sqlx::query(sql).bind(limit).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let detail: String = r.try_get("detail")?;
                Ok(AuditRow {
                    at: from_ms(r.try_get("at")?),
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}

/// A gateway registered through the API.
#[derive(Debug, Clone)]
pub struct NewGateway {
    pub id: String,
    pub name: String,
    /// The township (9-digit division code) it serves.
    pub area_code: Option<String>,
}

impl Store {
    /// Registers a gateway and issues its token (shown once; only its hash is kept), with
    /// its audit entry. `Ok(None)` when the id is taken.
    pub async fn register_gateway(
        &self,
        gateway: &NewGateway,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<TokenIssued>, StoreError> {
        let token = new_token("gw");
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO gateways (id, name, token_hash, created_at, area_code) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&gateway.id)
        .bind(&gateway.name)
        .bind(hash_token(&token))
        .bind(to_ms(at))
        .bind(gateway.area_code.as_deref())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Ok(None);
        }
        let detail = serde_json::json!({ "name": gateway.name, "area_code": gateway.area_code });
        audit(
            &mut tx,
            at,
            actor,
            "gateway_registered",
            &gateway.id,
            &detail,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(TokenIssued {
            id: gateway.id.clone(),
            token,
        }))
    }

    /// Issues a gateway a new token (the old one stops working at once), or with `None`
    /// revokes its token so it can no longer call. `Ok(None)` for an unknown gateway.
    pub async fn replace_gateway_token(
        &self,
        id: &str,
        issue: bool,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Option<TokenIssued>>, StoreError> {
        let token = issue.then(|| new_token("gw"));
        // A revoked gateway's hash is no SHA-256, so no token can match it.
        let stored = match &token {
            Some(t) => hash_token(t),
            None => format!("revoked:{id}:{}", Uuid::now_v7()),
        };
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let updated =
            sqlx::query("UPDATE gateways SET token_hash = $1, revoked_at = $2 WHERE id = $3")
                .bind(stored)
                .bind((!issue).then_some(to_ms(at)))
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if updated == 0 {
            return Ok(None);
        }
        let action = if issue {
            "gateway_token_issued"
        } else {
            "gateway_token_revoked"
        };
        audit(&mut tx, at, actor, action, id, &serde_json::json!({})).await?;
        tx.commit().await?;
        Ok(Some(token.map(|token| TokenIssued {
            id: id.to_owned(),
            token,
        })))
    }
}

/// Writes one camera; `true` when it is new. Adds the gateways whose cameras change to
/// `touched`.
async fn enter(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    camera: &NewCamera,
    actor: &str,
    at: DateTime<Utc>,
    touched: &mut Vec<String>,
) -> Result<bool, sqlx::Error> {
    let id = &camera.spec.id;
    let before =
        sqlx::query("SELECT gateway_id, password_sealed FROM camera_registry WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    let stored_password = match &before {
        Some(row) => {
            touched.push(row.try_get("gateway_id")?);
            row.try_get::<Option<String>, _>("password_sealed")?
        }
        None => None,
    };
    touched.push(camera.gateway_id.clone());
    let sealed = match &camera.password {
        PasswordChange::Keep => stored_password,
        PasswordChange::Set(sealed) => Some(sealed.clone()),
        PasswordChange::Clear => None,
    };
    sqlx::query("DELETE FROM camera_registry WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO camera_registry (id, gateway_id, spec, password_sealed, asset_code, updated_at, updated_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(&camera.gateway_id)
    .bind(serde_json::to_string(&camera.spec).expect("a camera spec is always JSON"))
    .bind(sealed)
    .bind(camera.asset_code.as_deref())
    .bind(to_ms(at))
    .bind(actor)
    .execute(&mut **tx)
    .await?;
    let action = if before.is_some() {
        "camera_updated"
    } else {
        "camera_created"
    };
    audit(tx, at, actor, action, id, &camera.detail).await?;
    Ok(before.is_none())
}

/// The rows of registry table `table`, by id; those of `gateway` only when given.
pub(super) async fn by_gateway(
    pool: &sqlx::AnyPool,
    table: &str,
    columns: &str,
    gateway: Option<&str>,
) -> Result<Vec<sqlx::any::AnyRow>, sqlx::Error> {
    match gateway {
        Some(g) => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {columns} FROM {table} WHERE gateway_id = $1 ORDER BY id"
            )))
            .bind(g)
            .fetch_all(pool)
            .await
        }
        None => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {columns} FROM {table} ORDER BY id"
            )))
            .fetch_all(pool)
            .await
        }
    }
}

pub(super) async fn bump_revision(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    gateway_id: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query("UPDATE gateways SET config_revision = config_revision + 1 WHERE id = $1")
        .bind(gateway_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("SELECT config_revision FROM gateways WHERE id = $1")
        .bind(gateway_id)
        .fetch_one(&mut **tx)
        .await?
        .try_get("config_revision")
}

pub(super) async fn audit(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    target: &str,
    detail: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO device_audit (id, at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(Uuid::now_v7().to_string())
    .bind(to_ms(at))
    .bind(actor)
    .bind(action)
    .bind(target)
    .bind(detail.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
