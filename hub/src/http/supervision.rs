//! Supervision notices (督办): the centre presses a department on a case it holds (the
//! deadline worker issues `timeout` notices itself), and the department replies with its
//! reason and what it is doing.
//!
//! `POST /api/v1/cases/{id}/supervision`: `{"kind": "leader" | "important", "message"}`,
//! admins and operators. `POST /api/v1/cases/{id}/supervision/{notice}/reply`:
//! `{"reply"}`, the case's department.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::cases::visible_case;
use super::extract::{JsonBody, required_text};
use super::{AppState, error::ApiError};
use crate::engine::CaseState;
use crate::live::LiveItem;
use crate::store::{CaseVisibility, NewNotice, Principal};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    kind: String,
    message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyRequest {
    reply: String,
}

pub async fn issue(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<IssueRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if principal.case_visibility()? != CaseVisibility::All {
        return Err(ApiError::forbidden(
            "only the centre issues supervision notices",
        ));
    }
    if !matches!(req.kind.as_str(), "leader" | "important") {
        return Err(ApiError::invalid_field(
            "kind",
            "must be leader or important (timeout notices come from the deadline clock)",
        ));
    }
    let message = required_text("message", &req.message)?;
    let (case, state) = visible_case(&app, &CaseVisibility::All, &id).await?;
    let department = match (&case.department, state) {
        (Some(d), CaseState::Dispatched | CaseState::Handling) => d.clone(),
        _ => {
            return Err(ApiError::conflict(
                "only a case a department holds (dispatched or handling) can be supervised",
                vec![],
            ));
        }
    };
    let actor = principal.actor();
    let notice = app
        .store
        .issue_notice(&NewNotice {
            case_id: &id,
            kind: &req.kind,
            department: &department,
            message: &message,
            issued_by: &actor,
            at: Utc::now(),
        })
        .await?;
    app.live.publish(LiveItem::case_note(
        &id,
        Some(&department),
        "supervise",
        state,
        &actor,
    ));
    Ok((StatusCode::CREATED, Json(json!({ "id": notice }))))
}

pub async fn reply(
    State(app): State<AppState>,
    principal: Principal,
    Path((id, notice)): Path<(String, String)>,
    JsonBody(req): JsonBody<ReplyRequest>,
) -> Result<Json<Value>, ApiError> {
    let CaseVisibility::Department(department) = principal.case_visibility()? else {
        return Err(ApiError::forbidden(
            "the department the notice went to replies to it",
        ));
    };
    let reply = required_text("reply", &req.reply)?;
    let (_, state) =
        visible_case(&app, &CaseVisibility::Department(department.clone()), &id).await?;
    let actor = principal.actor();
    let replied = app
        .store
        .reply_notice(&id, &notice, &department, &reply, &actor, Utc::now())
        .await?;
    if !replied {
        return Err(ApiError::not_found("unanswered supervision notice"));
    }
    app.live.publish(LiveItem::case_note(
        &id,
        Some(&department),
        "supervision_reply",
        state,
        &actor,
    ));
    Ok(Json(json!({ "id": notice })))
}
