//! Dashboard sign-in: password hashes and sessions. A session token, like an API token, is
//! shown once (in a cookie) and stored only as its SHA-256; it expires after a fixed time.

use chrono::{DateTime, Duration, Utc};
use sqlx::Row;

use super::principals::{hash_token, new_token, principal_from_user_row};
use super::registry::audit;
use super::{Store, StoreError, from_ms, to_ms};
use crate::store::Principal;

/// A user as sign-in needs it: who, and the stored password hash (PHC string).
#[derive(Debug)]
pub struct LoginRecord {
    pub user_id: String,
    pub password_hash: Option<String>,
}

/// A session just opened; `token` goes into the cookie and nowhere else.
#[derive(Debug)]
pub struct SessionIssued {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

impl Store {
    /// Sets (or replaces) a user's password hash, and ends the user's open sessions; a
    /// `temporary` one (handed to the user by someone else) must be changed at the next
    /// sign-in. `false` when there is no such user.
    pub async fn set_password_hash(
        &self,
        name: &str,
        hash: &str,
        temporary: bool,
    ) -> Result<bool, StoreError> {
        let Some(row) = sqlx::query("SELECT id FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(false);
        };
        let id: String = row.try_get("id")?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE users SET password_hash = $1, password_temporary_at = $2 WHERE id = $3",
        )
        .bind(hash)
        .bind(temporary.then(|| to_ms(Utc::now())))
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A user's own new password: it replaces the old (temporary or not), and every other
    /// session of the user ends; the session `kept` (the one asking) goes on. Audited.
    pub async fn change_own_password(
        &self,
        user_id: &str,
        name: &str,
        hash: &str,
        kept: &str,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE users SET password_hash = $1, password_temporary_at = NULL WHERE id = $2",
        )
        .bind(hash)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2")
            .bind(user_id)
            .bind(hash_token(kept))
            .execute(&mut *tx)
            .await?;
        let target = format!("user:{name}");
        audit(
            &mut tx,
            now,
            &target,
            "password_changed",
            &target,
            &serde_json::json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// What signing in as `name` is checked against, if the user exists.
    pub async fn login_record(&self, name: &str) -> Result<Option<LoginRecord>, StoreError> {
        let row = sqlx::query("SELECT id, password_hash FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(LoginRecord {
                user_id: r.try_get("id")?,
                password_hash: r.try_get("password_hash")?,
            })
        })
        .transpose()
        .map_err(|e: sqlx::Error| e.into())
    }

    /// Opens a session for `user_id` lasting `ttl`; expired sessions are swept on the way.
    pub async fn open_session(
        &self,
        user_id: &str,
        ttl: Duration,
    ) -> Result<SessionIssued, StoreError> {
        let token = new_token("ses");
        let now = Utc::now();
        let expires_at = now + ttl;
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(to_ms(now))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(hash_token(&token))
        .bind(user_id)
        .bind(to_ms(now))
        .bind(to_ms(expires_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(SessionIssued {
            token,
            // Stored to the millisecond; answer what is stored.
            expires_at: from_ms(to_ms(expires_at)),
        })
    }

    /// The user holding the unexpired session `token`, if any.
    pub async fn authenticate_session(&self, token: &str) -> Result<Option<Principal>, StoreError> {
        let row = sqlx::query(
            "SELECT u.id, u.name, u.role, u.department, u.password_temporary_at \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(hash_token(token))
        .bind(to_ms(Utc::now()))
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => principal_from_user_row(&row),
            None => Ok(None),
        }
    }

    /// Ends the session `token` (signing out). Ending an unknown session is not an error.
    pub async fn close_session(&self, token: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(hash_token(token))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
