//! Who may call the hub: gateways (machines) and users with a role. Both hold bearer tokens,
//! shown once when issued and stored only as their SHA-256.

use chrono::Utc;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Store, StoreError, to_ms};

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    /// Seat operators: dispatchers and supervisors at the centre.
    Operator,
    /// A department handler; sees only its department's cases.
    Department,
    /// Provisions cameras and gateways; no access to cases.
    Technician,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Department => "department",
            Role::Technician => "technician",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Role::Admin,
            Role::Operator,
            Role::Department,
            Role::Technician,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Gateway {
        id: String,
    },
    User {
        id: String,
        name: String,
        role: Role,
        department: Option<String>,
        /// Signed in with a password someone else set: the user must choose their own
        /// before anything else.
        password_temporary: bool,
    },
}

impl Principal {
    /// The name written into timelines and audit entries.
    pub fn actor(&self) -> String {
        match self {
            Principal::Gateway { id } => format!("gateway:{id}"),
            Principal::User { name, .. } => format!("user:{name}"),
        }
    }
}

/// A token just issued. The plain text exists only here, to be shown once.
#[derive(Debug, serde::Serialize)]
pub struct TokenIssued {
    pub id: String,
    pub token: String,
}

/// How fresh a gateway's `last_seen_at` is kept.
const LAST_SEEN_RESOLUTION_MS: i64 = 60_000;

pub(super) fn new_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}_{}", hex::encode(bytes))
}

pub(super) fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Store {
    /// Registers a gateway and issues its token; with `rotate`, an existing gateway gets a new
    /// token and the old one stops working.
    pub async fn add_gateway(
        &self,
        id: &str,
        name: &str,
        rotate: bool,
    ) -> Result<TokenIssued, StoreError> {
        let token = new_token("gw");
        let now = to_ms(Utc::now());
        let inserted = sqlx::query(
            "INSERT INTO gateways (id, name, token_hash, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(name)
        .bind(hash_token(&token))
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 0 {
            if !rotate {
                return Err(StoreError::Conflict(format!(
                    "gateway {id:?} is already registered; use --rotate to issue it a new token"
                )));
            }
            sqlx::query("UPDATE gateways SET token_hash = $1, revoked_at = NULL WHERE id = $2")
                .bind(hash_token(&token))
                .bind(id)
                .execute(&self.pool)
                .await?;
        }
        Ok(TokenIssued {
            id: id.to_owned(),
            token,
        })
    }

    /// Creates a user and issues its API token.
    pub async fn add_user(
        &self,
        name: &str,
        role: Role,
        department: Option<&str>,
    ) -> Result<TokenIssued, StoreError> {
        let token = new_token("usr");
        let id = uuid::Uuid::now_v7().to_string();
        let inserted = sqlx::query(
            "INSERT INTO users (id, name, role, department, token_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&id)
        .bind(name)
        .bind(role.as_str())
        .bind(department)
        .bind(hash_token(&token))
        .bind(to_ms(Utc::now()))
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::Conflict(format!(
                "user {name:?} already exists"
            )));
        }
        Ok(TokenIssued { id, token })
    }

    /// The principal holding `token`, if any. Gateways are marked as seen.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Principal>, StoreError> {
        let hash = hash_token(token);
        if let Some(row) =
            sqlx::query("SELECT id, last_seen_at FROM gateways WHERE token_hash = $1")
                .bind(&hash)
                .fetch_optional(&self.pool)
                .await?
        {
            let id: String = row.try_get("id")?;
            let seen: Option<i64> = row.try_get("last_seen_at")?;
            // Recorded at most once a minute: a write per request would contend with ingest.
            let now = to_ms(Utc::now());
            if seen.is_none_or(|seen| now - seen >= LAST_SEEN_RESOLUTION_MS) {
                sqlx::query("UPDATE gateways SET last_seen_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(&id)
                    .execute(&self.pool)
                    .await?;
            }
            return Ok(Some(Principal::Gateway { id }));
        }
        let Some(row) = sqlx::query(
            "SELECT id, name, role, department, password_temporary_at FROM users \
                 WHERE token_hash = $1",
        )
        .bind(&hash)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        principal_from_user_row(&row)
    }
}

/// A user row (`id, name, role, department`) as a principal; `None` for a role this hub
/// does not know, so a bad row locks its user out instead of granting anything.
pub(super) fn principal_from_user_row(
    row: &sqlx::any::AnyRow,
) -> Result<Option<Principal>, StoreError> {
    let role: String = row.try_get("role")?;
    let Some(role) = Role::parse(&role) else {
        tracing::warn!(role, "user has an unknown role; refusing the credential");
        return Ok(None);
    };
    Ok(Some(Principal::User {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role,
        department: row.try_get("department")?,
        password_temporary: row
            .try_get::<Option<i64>, _>("password_temporary_at")?
            .is_some(),
    }))
}

/// A registered gateway, as technicians and operators see it (never its token).
#[derive(Debug, serde::Serialize)]
pub struct GatewayRow {
    pub id: String,
    pub name: String,
    /// The township it serves.
    pub area_code: Option<String>,
    pub created_at: chrono::DateTime<Utc>,
    pub last_seen_at: Option<chrono::DateTime<Utc>>,
    /// When its token was revoked; it cannot call until it is issued a new one.
    pub revoked_at: Option<chrono::DateTime<Utc>>,
    /// From the gateway's last status report: its software version, the events waiting in
    /// its outbox, and when it reported.
    pub version: Option<String>,
    pub outbox_pending: Option<i64>,
    pub reported_at: Option<chrono::DateTime<Utc>>,
    /// The revision of its cameras in the device registry, the revision the gateway
    /// reports running (absent for a gateway on its own settings file), and why it could
    /// not apply a newer one.
    pub config_revision: i64,
    pub config_applied: Option<i64>,
    pub config_error: Option<String>,
}

impl Store {
    /// Every registered gateway, by id.
    pub async fn list_gateways(&self) -> Result<Vec<GatewayRow>, StoreError> {
        let rows =
            sqlx::query("SELECT id, name, area_code, created_at, last_seen_at, revoked_at, version, outbox_pending, reported_at, config_revision, config_applied, config_error FROM gateways ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(GatewayRow {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    area_code: r.try_get("area_code")?,
                    created_at: super::from_ms(r.try_get("created_at")?),
                    last_seen_at: r
                        .try_get::<Option<i64>, _>("last_seen_at")?
                        .map(super::from_ms),
                    revoked_at: r
                        .try_get::<Option<i64>, _>("revoked_at")?
                        .map(super::from_ms),
                    version: r.try_get("version")?,
                    outbox_pending: r.try_get("outbox_pending")?,
                    reported_at: r
                        .try_get::<Option<i64>, _>("reported_at")?
                        .map(super::from_ms),
                    config_revision: r.try_get("config_revision")?,
                    config_applied: r.try_get("config_applied")?,
                    config_error: r.try_get("config_error")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
