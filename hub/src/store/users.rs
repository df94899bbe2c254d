//! The user roster: listing users, and importing a roster (new users with an initial
//! password, role and department changes to existing ones) in one audited transaction.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::principals::{hash_token, new_token};
use super::registry::audit;
use super::{Store, StoreError, from_ms, to_ms};
use crate::reference::users::UserEntry;

#[derive(Debug, Clone, Serialize)]
pub struct UserRow {
    pub name: String,
    pub role: String,
    pub department: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Whether the user can sign in to the dashboard (API clients use tokens).
    pub has_password: bool,
}

/// A user the roster creates, with the hash of its initial password.
#[derive(Debug)]
pub struct NewUser<'a> {
    pub entry: &'a UserEntry,
    pub password_hash: String,
}

/// What a roster import changed.
#[derive(Debug, Default, Serialize)]
pub struct RosterChange {
    pub created: Vec<String>,
    /// Users whose role or department changed.
    pub updated: Vec<String>,
    pub unchanged: usize,
}

impl Store {
    pub async fn list_users(&self) -> Result<Vec<UserRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, role, department, created_at, password_hash FROM users ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UserRow {
                    name: r.try_get("name")?,
                    role: r.try_get("role")?,
                    department: r.try_get("department")?,
                    created_at: from_ms(r.try_get("created_at")?),
                    has_password: r.try_get::<Option<String>, _>("password_hash")?.is_some(),
                })
            })
            .collect()
    }

    /// Every user's name.
    pub async fn user_names(&self) -> Result<BTreeSet<String>, StoreError> {
        let rows = sqlx::query("SELECT name FROM users")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("name"))
            .collect::<Result<_, _>>()?)
    }

    /// Applies a roster: `updates` set the role and department of existing users, `new`
    /// users are created with their password, temporary (they choose their own at their
    /// first sign-in), and an API token nobody is shown. All or
    /// nothing; `Conflict` when one of the new names was taken meanwhile. Each change is
    /// in the audit log.
    pub async fn apply_roster(
        &self,
        updates: &[&UserEntry],
        new: &[NewUser<'_>],
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<RosterChange, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.begin_write().await?;
        let mut change = RosterChange::default();
        for user in updates {
            let changed = sqlx::query(
                "UPDATE users SET role = $1, department = $2 WHERE name = $3 \
                 AND (role <> $1 OR COALESCE(department, '') <> COALESCE($2, ''))",
            )
            .bind(user.role.as_str())
            .bind(user.department.as_deref())
            .bind(&user.name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 0 {
                change.unchanged += 1;
                continue;
            }
            let detail = serde_json::json!({"role": user.role, "department": user.department});
            audit(
                &mut tx,
                at,
                actor,
                "user_changed",
                &format!("user:{}", user.name),
                &detail,
            )
            .await?;
            change.updated.push(user.name.clone());
        }
        for user in new {
            let e = user.entry;
            let inserted = sqlx::query(
                "INSERT INTO users (id, name, role, department, token_hash, created_at, password_hash, \
                 password_temporary_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $6) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(&e.name)
            .bind(e.role.as_str())
            .bind(e.department.as_deref())
            .bind(hash_token(&new_token("usr")))
            .bind(to_ms(at))
            .bind(&user.password_hash)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                return Err(StoreError::Conflict(format!(
                    "user {:?} was created meanwhile; import the roster again",
                    e.name
                )));
            }
            let detail = serde_json::json!({"role": e.role, "department": e.department});
            audit(
                &mut tx,
                at,
                actor,
                "user_added",
                &format!("user:{}", e.name),
                &detail,
            )
            .await?;
            change.created.push(e.name.clone());
        }
        tx.commit().await?;
        Ok(change)
    }
}
