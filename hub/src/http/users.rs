//! The user roster (admins only):
//! - `GET /api/v1/users`: who may sign in, with which role and department (never a hash);
//! - `POST /api/v1/users?dry_run=`: a roster as CSV (`name,role,department`) or TOML
//!   (`[[user]]`), all rows checked, imported whole or not at all. New users get an initial
//!   password, in this answer only; listed users get the role and department the roster
//!   gives; users the roster leaves out stay as they are.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use rand::RngCore;
use serde::Serialize;
use serde_json::{Value, json};

use super::extract::{DryRun, QueryParams, document};
use super::{AppState, error::ApiError};
use crate::reference::Format;
use crate::reference::users::{self, UserEntry};
use crate::store::{NewUser, Principal, StoreError};

pub async fn list(
    State(app): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    principal.admin()?;
    Ok(Json(json!({ "items": app.store.list_users().await? })))
}

/// A new user's first password, to be changed (`hub user password`) once handed over.
fn initial_password() -> String {
    let mut bytes = [0u8; 9];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[derive(Serialize)]
struct Created {
    name: String,
    /// Shown once; only its hash is kept.
    password: String,
}

pub async fn import(
    State(app): State<AppState>,
    principal: Principal,
    QueryParams(query): QueryParams<DryRun>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    principal.admin()?;
    let (format, text) = document(&headers, &body, Format::ROWS)?;
    let entries =
        users::parse(text, format, &app.reference.current()).map_err(ApiError::invalid_rows)?;
    let existing = app.store.user_names().await?;
    let (listed, fresh): (Vec<&UserEntry>, Vec<&UserEntry>) =
        entries.iter().partition(|e| existing.contains(&e.name));
    if query.dry_run {
        return Ok(Json(json!({
            "dry_run": true,
            "to_create": fresh.iter().map(|e| &e.name).collect::<Vec<_>>(),
            "listed": listed.iter().map(|e| &e.name).collect::<Vec<_>>(),
        })));
    }
    let passwords: Vec<String> = fresh.iter().map(|_| initial_password()).collect();
    // Memory-hard hashing takes tens of milliseconds each: off the async threads.
    let hashes = {
        let passwords = passwords.clone();
        tokio::task::spawn_blocking(move || {
            passwords
                .iter()
                .map(|p| crate::password::hash(p))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?
    };
    let new: Vec<NewUser> = fresh
        .iter()
        .zip(hashes)
        .map(|(entry, password_hash)| NewUser {
            entry,
            password_hash,
        })
        .collect();
    let change = app
        .store
        .apply_roster(&listed, &new, &principal.actor(), Utc::now())
        .await
        .map_err(|e| match e {
            StoreError::Conflict(message) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message)
            }
            e => e.into(),
        })?;
    tracing::info!(
        created = change.created.len(),
        updated = change.updated.len(),
        actor = %principal.actor(),
        "imported a user roster"
    );
    let created: Vec<Created> = fresh
        .iter()
        .zip(passwords)
        .map(|(e, password)| Created {
            name: e.name.clone(),
            password,
        })
        .collect();
    Ok(Json(json!({
        "dry_run": false,
        "created": created,
        "updated": change.updated,
        "unchanged": change.unchanged,
    })))
}
