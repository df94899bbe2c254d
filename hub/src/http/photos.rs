//! `POST /api/v1/cases/{id}/photos?kind=before|after|near|far`: a person adds a photo to an
//! open case: a department its photos of the fix (处置反馈 with before/after photos), the
//! centre what it gathered. The body is the image itself (image/jpeg or image/png).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::blobs::check_image;
use super::cases::visible_case;
use super::extract::QueryParams;
use super::{AppState, error::ApiError};
use crate::engine::CaseState;
use crate::live::LiveItem;
use crate::store::{NewAttachment, Principal};

const KINDS: [&str; 4] = ["before", "after", "near", "far"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhotoQuery {
    kind: String,
}

pub async fn post(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<PhotoQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let visibility = principal.case_visibility()?;
    let kind = KINDS
        .into_iter()
        .find(|k| *k == q.kind)
        .ok_or_else(|| ApiError::invalid_field("kind", "must be before, after, near or far"))?;
    let (case, state) = visible_case(&app, &visibility, &id).await?;
    if matches!(
        state,
        CaseState::Closed | CaseState::ForceClosed | CaseState::Void
    ) {
        return Err(ApiError::conflict(
            "photos are added to open cases only",
            vec![],
        ));
    }
    let content_type = check_image(&headers, &body)?;
    let sha256 = hex::encode(Sha256::digest(&body));
    let actor = principal.actor();
    let added = app
        .store
        .attach_photo(&NewAttachment {
            case_id: &id,
            sha256: &sha256,
            kind,
            content_type,
            data: &body,
            by: &actor,
            at: Utc::now(),
        })
        .await?;
    if added {
        app.live.publish(LiveItem::case_note(
            &id,
            case.department.as_deref(),
            "photo",
            state,
            &actor,
        ));
    }
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({ "sha256": sha256, "url": format!("/api/v1/blobs/{sha256}") })),
    ))
}
