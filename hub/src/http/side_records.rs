//! Extensions and callbacks:
//! - `POST /api/v1/cases/{id}/extensions` `{"extra": "2 working_days", "reason"}`: the
//!   department holding the case asks for more time (one request at a time);
//! - `POST /api/v1/cases/{id}/extensions/{extension}/decision` `{"approve", "note"}`: the
//!   centre decides; an approval moves the deadline by `extra` from the current one (on the
//!   limit's clock) and restarts the deadline alarms;
//! - `POST /api/v1/cases/{id}/callbacks` `{"satisfaction": 1..=5, "result"}`: the centre
//!   records a callback on a closed case.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::cases::visible_case;
use super::extract::{JsonBody, required_text};
use super::{AppState, error::ApiError};
use crate::engine::{CaseState, TimeLimit};
use crate::live::LiveItem;
use crate::store::{CaseRow, CaseVisibility, NewDeadline, Principal};

pub(super) fn publish(app: &AppState, case: &CaseRow, state: CaseState, action: &str, actor: &str) {
    app.live.publish(LiveItem::case_note(
        &case.id,
        case.department.as_deref(),
        action,
        state,
        actor,
    ));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtensionRequest {
    extra: String,
    reason: String,
}

pub async fn request_extension(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<ExtensionRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let CaseVisibility::Department(department) = principal.case_visibility()? else {
        return Err(ApiError::forbidden(
            "the department holding the case asks for an extension",
        ));
    };
    let extra: TimeLimit = req
        .extra
        .parse()
        .map_err(|e: String| ApiError::invalid_field("extra", e))?;
    let reason = required_text("reason", &req.reason)?;
    let (case, state) =
        visible_case(&app, &CaseVisibility::Department(department.clone()), &id).await?;
    if !matches!(state, CaseState::Dispatched | CaseState::Handling) || case.due_at.is_none() {
        return Err(ApiError::conflict(
            "an extension is asked for while the department holds the case with a deadline",
            vec![],
        ));
    }
    let actor = principal.actor();
    let extension = app
        .store
        .request_extension(
            &id,
            &department,
            &extra.to_string(),
            &reason,
            &actor,
            Utc::now(),
        )
        .await?
        .ok_or_else(|| {
            ApiError::conflict("a request for this case is waiting for a decision", vec![])
        })?;
    publish(&app, &case, state, "extension_requested", &actor);
    Ok((StatusCode::CREATED, Json(json!({ "id": extension }))))
}

/// The centre's answer to a request: extensions, deferrals, appeals.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub(super) approve: bool,
    pub(super) note: String,
}

pub async fn decide_extension(
    State(app): State<AppState>,
    principal: Principal,
    Path((id, extension)): Path<(String, String)>,
    JsonBody(req): JsonBody<Decision>,
) -> Result<Json<Value>, ApiError> {
    if principal.case_visibility()? != CaseVisibility::All {
        return Err(ApiError::forbidden("the centre decides extensions"));
    }
    let note = required_text("note", &req.note)?;
    let (case, state) = visible_case(&app, &CaseVisibility::All, &id).await?;
    let pending = app
        .store
        .pending_extension(&id, &extension)
        .await?
        .ok_or_else(|| ApiError::not_found("pending extension request"))?;
    let approved = match (req.approve, case.due_at) {
        (false, _) => None,
        (true, Some(due)) => {
            let extra: TimeLimit = pending
                .extra
                .parse()
                .map_err(|e: String| ApiError::internal(format!("a stored extension: {e}")))?;
            Some(NewDeadline {
                due_at: app.calendar.due(due, extra),
                warn_at: app
                    .calendar
                    .fraction_of(due, extra, app.deadlines.warn_fraction),
            })
        }
        (true, None) => {
            return Err(ApiError::conflict(
                "the case has no deadline to extend",
                vec![],
            ));
        }
    };
    let actor = principal.actor();
    if !app
        .store
        .decide_extension(&id, &extension, approved, &note, &actor, Utc::now())
        .await?
    {
        return Err(ApiError::conflict(
            "the request was decided meanwhile",
            vec![],
        ));
    }
    let action = if approved.is_some() {
        "extension_approved"
    } else {
        "extension_rejected"
    };
    publish(&app, &case, state, action, &actor);
    Ok(Json(json!({
        "id": extension,
        "approved": approved.is_some(),
        "due_at": approved.map(|a| a.due_at),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Callback {
    satisfaction: i64,
    result: String,
}

pub async fn callback(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<Callback>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if principal.case_visibility()? != CaseVisibility::All {
        return Err(ApiError::forbidden("the centre records callbacks"));
    }
    if !(1..=5).contains(&req.satisfaction) {
        return Err(ApiError::invalid_field("satisfaction", "must be 1 to 5"));
    }
    let result = required_text("result", &req.result)?;
    let (case, state) = visible_case(&app, &CaseVisibility::All, &id).await?;
    if state != CaseState::Closed {
        return Err(ApiError::conflict("callbacks follow a closed case", vec![]));
    }
    let actor = principal.actor();
    let callback = app
        .store
        .add_callback(&id, req.satisfaction, &result, &actor, Utc::now())
        .await?;
    publish(&app, &case, state, "callback", &actor);
    Ok((StatusCode::CREATED, Json(json!({ "id": callback }))))
}
