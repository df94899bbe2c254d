//! Patrol terminals in the device registry: the gateway that admits each, who carries it
//! and which grid they patrol. The hub issues a terminal's secret, shows it once and keeps
//! only its SHA-256, which the owning gateway receives in its configuration document. Every
//! change grows the gateway's configuration revision and is audited, in one transaction.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::principals::{hash_token, new_token};
use super::registry::{audit, bump_revision, by_gateway};
use super::{Store, StoreError, from_ms, to_ms};

/// A terminal as the registry holds it.
#[derive(Debug, Clone, Serialize)]
pub struct RegistryTerminal {
    pub id: String,
    pub gateway_id: String,
    pub holder: Option<String>,
    pub grid: Option<String>,
    /// For the owning gateway's configuration document only; never shown.
    #[serde(skip)]
    pub secret_sha256: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// A terminal entered or changed through the API (its secret is the hub's to issue).
#[derive(Debug, Clone)]
pub struct NewTerminal {
    pub id: String,
    pub gateway_id: String,
    pub holder: Option<String>,
    pub grid: Option<String>,
}

/// What entering a terminal did.
#[derive(Debug)]
pub enum TerminalEntered {
    /// A new terminal, with its secret (shown this once).
    Created {
        secret: String,
    },
    Updated,
}

const COLUMNS: &str = "id, gateway_id, holder, grid, secret_sha256, updated_at, updated_by";

fn terminal_from_row(row: &sqlx::any::AnyRow) -> Result<RegistryTerminal, sqlx::Error> {
    Ok(RegistryTerminal {
        id: row.try_get("id")?,
        gateway_id: row.try_get("gateway_id")?,
        holder: row.try_get("holder")?,
        grid: row.try_get("grid")?,
        secret_sha256: row.try_get("secret_sha256")?,
        updated_at: from_ms(row.try_get("updated_at")?),
        updated_by: row.try_get("updated_by")?,
    })
}

impl Store {
    /// The registry's terminals, by id; those of `gateway` only when given.
    pub async fn registry_terminals(
        &self,
        gateway: Option<&str>,
    ) -> Result<Vec<RegistryTerminal>, StoreError> {
        let rows = by_gateway(&self.pool, "terminal_registry", COLUMNS, gateway).await?;
        Ok(rows
            .iter()
            .map(terminal_from_row)
            .collect::<Result<_, _>>()?)
    }

    pub async fn registry_terminal(
        &self,
        id: &str,
    ) -> Result<Option<RegistryTerminal>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM terminal_registry WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(terminal_from_row).transpose()?)
    }

    /// Enters terminals, issuing each new one its secret, or changes their gateway, holder
    /// or grid (their secrets stay), all or none: each gateway whose terminals change (both,
    /// for a terminal that moves) grows its revision once. `Ok(Err(gateway))` names a gateway
    /// not registered.
    pub async fn enter_terminals(
        &self,
        terminals: &[NewTerminal],
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<Result<Vec<TerminalEntered>, String>, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let mut touched = Vec::new();
        let mut entered = Vec::with_capacity(terminals.len());
        for terminal in terminals {
            let gateway = sqlx::query("SELECT id FROM gateways WHERE id = $1")
                .bind(&terminal.gateway_id)
                .fetch_optional(&mut *tx)
                .await?;
            if gateway.is_none() {
                return Ok(Err(terminal.gateway_id.clone()));
            }
            entered.push(enter(&mut tx, terminal, actor, at, &mut touched).await?);
        }
        touched.sort();
        touched.dedup();
        for gateway in touched {
            bump_revision(&mut tx, &gateway).await?;
        }
        tx.commit().await?;
        Ok(Ok(entered))
    }

    /// Issues terminal `id` a new secret; the old one stops working (its gateway disconnects
    /// it once it has the new document). `None` for an unknown terminal.
    pub async fn new_terminal_secret(
        &self,
        id: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let secret = new_token("pt");
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let Some(gateway_id) = sqlx::query(
            "UPDATE terminal_registry SET secret_sha256 = $1, updated_at = $2, updated_by = $3 \
             WHERE id = $4 RETURNING gateway_id",
        )
        .bind(hash_token(&secret))
        .bind(to_ms(at))
        .bind(actor)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.try_get::<String, _>("gateway_id"))
        .transpose()?
        else {
            return Ok(None);
        };
        recorded(
            &mut tx,
            &gateway_id,
            "terminal_secret_issued",
            id,
            actor,
            at,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(secret))
    }

    /// Removes a terminal from the registry; `false` when it was not there.
    pub async fn remove_terminal(
        &self,
        id: &str,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let Some(gateway_id) =
            sqlx::query("DELETE FROM terminal_registry WHERE id = $1 RETURNING gateway_id")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get::<String, _>("gateway_id"))
                .transpose()?
        else {
            return Ok(false);
        };
        recorded(&mut tx, &gateway_id, "terminal_removed", id, actor, at).await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// Grows the revision of the gateway that admits terminal `id` and audits `action` on it.
async fn recorded(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    gateway_id: &str,
    action: &str,
    id: &str,
    actor: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    bump_revision(tx, gateway_id).await?;
    let detail = serde_json::json!({ "gateway_id": gateway_id });
    audit(tx, at, actor, action, id, &detail).await
}

/// Writes one terminal (its secret issued when new) with its audit entry; adds the gateways
/// whose terminals change to `touched`.
async fn enter(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    terminal: &NewTerminal,
    actor: &str,
    at: DateTime<Utc>,
    touched: &mut Vec<String>,
) -> Result<TerminalEntered, sqlx::Error> {
    let before = sqlx::query("SELECT gateway_id FROM terminal_registry WHERE id = $1")
        .bind(&terminal.id)
        .fetch_optional(&mut **tx)
        .await?
        .map(|r| r.try_get::<String, _>("gateway_id"))
        .transpose()?;
    let detail = serde_json::json!({
        "gateway_id": terminal.gateway_id,
        "holder": terminal.holder,
        "grid": terminal.grid,
    });
    touched.push(terminal.gateway_id.clone());
    let entered = match &before {
        Some(previous) => {
            sqlx::query(
                "UPDATE terminal_registry SET gateway_id = $1, holder = $2, grid = $3, \
                     updated_at = $4, updated_by = $5 WHERE id = $6",
            )
            .bind(&terminal.gateway_id)
            .bind(terminal.holder.as_deref())
            .bind(terminal.grid.as_deref())
            .bind(to_ms(at))
            .bind(actor)
            .bind(&terminal.id)
            .execute(&mut **tx)
            .await?;
            touched.push(previous.clone());
            audit(tx, at, actor, "terminal_updated", &terminal.id, &detail).await?;
            TerminalEntered::Updated
        }
        None => {
            let secret = new_token("pt");
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO terminal_registry ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            )))
            .bind(&terminal.id)
            .bind(&terminal.gateway_id)
            .bind(terminal.holder.as_deref())
            .bind(terminal.grid.as_deref())
            .bind(hash_token(&secret))
            .bind(to_ms(at))
            .bind(actor)
            .execute(&mut **tx)
            .await?;
            audit(tx, at, actor, "terminal_created", &terminal.id, &detail).await?;
            TerminalEntered::Created { secret }
        }
    };
    Ok(entered)
}
