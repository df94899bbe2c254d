//! Appeals (申诉):
//! - `POST /api/v1/cases/{id}/appeals` `{"subject": "overdue" | "rework", "reason"}`: the
//!   department responsible for the case disputes its overdue finding or a rework (one
//!   waiting appeal per subject);
//! - `POST /api/v1/cases/{id}/appeals/{appeal}/decision` `{"approve", "note"}`: the centre
//!   decides; upheld, the indicators count the case on time, or one rework fewer.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::cases::visible_case;
use super::extract::{JsonBody, required_text};
use super::side_records::{Decision, publish};
use super::{AppState, error::ApiError};
use crate::engine::AppealSubject;
use crate::store::{AppealRequest, CaseVisibility, Principal};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppealAsk {
    subject: String,
    reason: String,
}

pub async fn request(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<AppealAsk>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let CaseVisibility::Department(department) = principal.case_visibility()? else {
        return Err(ApiError::forbidden(
            "the department responsible for the case appeals",
        ));
    };
    let subject: AppealSubject = req
        .subject
        .parse()
        .map_err(|e| ApiError::invalid_field("subject", e))?;
    let reason = required_text("reason", &req.reason)?;
    let visibility = CaseVisibility::Department(department.clone());
    let (case, state) = visible_case(&app, &visibility, &id).await?;
    let actor = principal.actor();
    let appeal = app
        .store
        .request_appeal(&AppealRequest {
            case_id: &id,
            department: &department,
            subject,
            reason: &reason,
            by: &actor,
            at: Utc::now(),
        })
        .await?
        .ok_or_else(|| {
            let what = match subject {
                AppealSubject::Overdue => "the case was not found overdue",
                AppealSubject::Rework => "the case has no rework",
            };
            ApiError::conflict(
                format!("nothing to appeal: {what}, it is excused already, or an appeal on it waits for a decision"),
                vec![],
            )
        })?;
    publish(&app, &case, state, "appeal_requested", &actor);
    Ok((StatusCode::CREATED, Json(json!({ "id": appeal }))))
}

pub async fn decide(
    State(app): State<AppState>,
    principal: Principal,
    Path((id, appeal)): Path<(String, String)>,
    JsonBody(req): JsonBody<Decision>,
) -> Result<Json<Value>, ApiError> {
    if principal.case_visibility()? != CaseVisibility::All {
        return Err(ApiError::forbidden("the centre decides appeals"));
    }
    let note = required_text("note", &req.note)?;
    let (case, state) = visible_case(&app, &CaseVisibility::All, &id).await?;
    let actor = principal.actor();
    if !app
        .store
        .decide_appeal(&id, &appeal, req.approve, &note, &actor, Utc::now())
        .await?
    {
        return Err(ApiError::not_found("pending appeal"));
    }
    let action = if req.approve {
        "appeal_upheld"
    } else {
        "appeal_rejected"
    };
    publish(&app, &case, state, action, &actor);
    Ok(Json(json!({ "id": appeal, "upheld": req.approve })))
}
