//! `GET|PUT /api/v1/reference/{kind}`: the department list, the category catalogue, the
//! ownership list and the area map. Anyone signed in reads them (JSON, or CSV for `Accept:
//! text/csv`; the area map as GeoJSON); admins replace a whole set with a CSV or TOML
//! document (the area map with a GeoJSON FeatureCollection), checked row by row and against
//! the other sets, imported whole or not at all.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::extract::{DryRun, QueryParams, document};
use super::{AppState, error::ApiError};
use crate::reference::{Format, Kind, Set};
use crate::reference_sync::{self, ImportError, Origin};
use crate::store::{Principal, SetInfo, StoreError};

#[derive(Serialize)]
struct SetView {
    kind: Kind,
    /// The revision of all reference data in force.
    revision: i64,
    /// When and by whom this set was last imported; absent before the first import.
    imported: Option<SetInfo>,
    rows: serde_json::Value,
}

pub async fn get(
    State(app): State<AppState>,
    principal: Principal,
    Path(kind): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    principal.user()?;
    let kind = parse_kind(&kind)?;
    let reference = app.reference.current();
    let wants_csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"));
    if wants_csv && let Some(csv) = reference.to_csv(kind) {
        let body = csv.map_err(ApiError::internal)?;
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{kind}.csv\""),
                ),
            ],
            body,
        )
            .into_response());
    }
    Ok(Json(SetView {
        kind,
        revision: reference.revision,
        imported: app.store.reference_set_info(kind).await?,
        rows: reference.rows_json(kind),
    })
    .into_response())
}

#[derive(Serialize)]
pub struct ImportOutcome {
    kind: Kind,
    rows: usize,
    /// The revision in force afterwards (unchanged by a dry run).
    revision: i64,
    dry_run: bool,
}

pub async fn put(
    State(app): State<AppState>,
    principal: Principal,
    Path(kind): Path<String>,
    QueryParams(query): QueryParams<DryRun>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ImportOutcome>, ApiError> {
    principal.admin()?;
    let kind = parse_kind(&kind)?;
    let accepted = match kind {
        Kind::Areas => &[Format::GeoJson][..],
        _ => Format::ROWS,
    };
    let (format, text) = document(&headers, &body, accepted)?;
    let set = Set::parse(kind, format, text).map_err(ApiError::invalid_rows)?;
    let rows = set.len();
    let current = app.reference.current();
    if query.dry_run {
        current.with(set).map_err(ApiError::invalid_rows)?;
        return Ok(Json(ImportOutcome {
            kind,
            rows,
            revision: current.revision,
            dry_run: true,
        }));
    }
    let origin = Origin {
        actor: &principal.actor(),
        source: "api",
        sha256: &reference_sync::digest(&body),
    };
    let next = reference_sync::import(&app.store, &current, set, origin)
        .await
        .map_err(|e| match e {
            ImportError::Rejected(errors) => ApiError::invalid_rows(errors),
            ImportError::Store(StoreError::Conflict(message)) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message)
            }
            ImportError::Store(e) => e.into(),
        })?;
    let revision = next.revision;
    app.reference.install(next);
    Ok(Json(ImportOutcome {
        kind,
        rows,
        revision,
        dry_run: false,
    }))
}

fn parse_kind(kind: &str) -> Result<Kind, ApiError> {
    Kind::parse(kind).ok_or_else(|| ApiError::not_found("reference set"))
}
