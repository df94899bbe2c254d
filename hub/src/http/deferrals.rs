//! Deferrals (缓办, 挂账):
//! - `POST /api/v1/cases/{id}/deferrals` `{"kind": "defer", "until": "2027-03-01", "reason"}`
//!   or `{"kind": "ledger", "reason"}`: the department holding the case asks to park its
//!   deadline (one request or deferral at a time);
//! - `POST /api/v1/cases/{id}/deferrals/{deferral}/decision` `{"approve", "note"}`: the
//!   centre decides; an approval parks the deadline: no alarms, not due to close;
//! - `POST /api/v1/cases/{id}/deferrals/{deferral}/end` `{"note"}`: the centre or the
//!   department resumes the case; the deadline gets back the time that was left. A `defer`
//!   also ends by itself on its date (the deadline worker), and any deferral ends when the
//!   case is dispatched anew or closed.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Days, NaiveDate, SubsecRound, TimeZone, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::cases::visible_case;
use super::extract::{JsonBody, required_text};
use super::side_records::{Decision, publish};
use super::{AppState, error::ApiError};
use crate::deadlines::restored;
use crate::engine::{CaseState, DeferralKind};
use crate::store::{CaseVisibility, DeferralRequest, Principal};

/// The longest a 缓办 may run before the centre looks again.
const LONGEST_DEFERRAL_DAYS: u64 = 366;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeferralAsk {
    kind: String,
    /// For `defer`: the local date the case resumes (at its start).
    until: Option<String>,
    reason: String,
}

/// When a `defer` asked for on `until` resumes: the start of that local day, after today
/// and within [`LONGEST_DEFERRAL_DAYS`].
fn resume_date(app: &AppState, until: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
    let date = NaiveDate::parse_from_str(until.trim(), "%Y-%m-%d")
        .map_err(|_| ApiError::invalid_field("until", "must be a date, YYYY-MM-DD"))?;
    let offset = app.calendar.offset();
    let today = now.with_timezone(&offset).date_naive();
    let latest = today
        .checked_add_days(Days::new(LONGEST_DEFERRAL_DAYS))
        .unwrap_or(today);
    if date <= today || date > latest {
        return Err(ApiError::invalid_field(
            "until",
            format!("must be after today and at most {LONGEST_DEFERRAL_DAYS} days ahead"),
        ));
    }
    let start = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    Ok(offset
        .from_local_datetime(&start)
        .single()
        .expect("a fixed offset maps every local time once")
        .with_timezone(&Utc))
}

pub async fn request(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<DeferralAsk>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let CaseVisibility::Department(department) = principal.case_visibility()? else {
        return Err(ApiError::forbidden(
            "the department holding the case asks for a deferral",
        ));
    };
    let kind: DeferralKind = req
        .kind
        .parse()
        .map_err(|e| ApiError::invalid_field("kind", e))?;
    let reason = required_text("reason", &req.reason)?;
    let now = Utc::now();
    let until = match (kind, req.until.as_deref()) {
        (DeferralKind::Defer, Some(until)) => Some(resume_date(&app, until, now)?),
        (DeferralKind::Defer, None) => {
            return Err(ApiError::invalid_field(
                "until",
                "a defer (缓办) needs the date the work can go on",
            ));
        }
        (DeferralKind::Ledger, None) => None,
        (DeferralKind::Ledger, Some(_)) => {
            return Err(ApiError::invalid_field(
                "until",
                "a ledger item (挂账) has no date: the centre resumes it",
            ));
        }
    };
    let visibility = CaseVisibility::Department(department.clone());
    let (case, state) = visible_case(&app, &visibility, &id).await?;
    if !matches!(state, CaseState::Dispatched | CaseState::Handling) || case.due_at.is_none() {
        return Err(ApiError::conflict(
            "a deferral is asked for while the department holds the case with a running deadline",
            vec![],
        ));
    }
    let actor = principal.actor();
    let deferral = app
        .store
        .request_deferral(&DeferralRequest {
            case_id: &id,
            department: &department,
            kind,
            until,
            reason: &reason,
            by: &actor,
            at: now,
        })
        .await?
        .ok_or_else(|| {
            ApiError::conflict(
                "the case has a deferral waiting for a decision or in effect",
                vec![],
            )
        })?;
    publish(&app, &case, state, "deferral_requested", &actor);
    Ok((StatusCode::CREATED, Json(json!({ "id": deferral }))))
}

pub async fn decide(
    State(app): State<AppState>,
    principal: Principal,
    Path((id, deferral)): Path<(String, String)>,
    JsonBody(req): JsonBody<Decision>,
) -> Result<Json<Value>, ApiError> {
    if principal.case_visibility()? != CaseVisibility::All {
        return Err(ApiError::forbidden("the centre decides deferrals"));
    }
    let note = required_text("note", &req.note)?;
    let (case, state) = visible_case(&app, &CaseVisibility::All, &id).await?;
    let row = app
        .store
        .deferral(&id, &deferral)
        .await?
        .filter(|d| d.state == "pending")
        .ok_or_else(|| ApiError::not_found("pending deferral request"))?;
    let held = matches!(state, CaseState::Dispatched | CaseState::Handling)
        && case.department.as_deref() == Some(row.department.as_str());
    if req.approve && !held {
        return Err(ApiError::conflict(
            "the asking department no longer holds the case; reject the request",
            vec![],
        ));
    }
    let actor = principal.actor();
    if !app
        .store
        .decide_deferral(&id, &deferral, req.approve, &note, &actor, Utc::now())
        .await?
    {
        return Err(ApiError::conflict(
            "the request was decided meanwhile, or the case has no deadline to park",
            vec![],
        ));
    }
    let action = if req.approve {
        "deferral_approved"
    } else {
        "deferral_rejected"
    };
    publish(&app, &case, state, action, &actor);
    Ok(Json(json!({ "id": deferral, "approved": req.approve })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndRequest {
    note: String,
}

pub async fn end(
    State(app): State<AppState>,
    principal: Principal,
    Path((id, deferral)): Path<(String, String)>,
    JsonBody(req): JsonBody<EndRequest>,
) -> Result<Json<Value>, ApiError> {
    let visibility = principal.case_visibility()?;
    let note = required_text("note", &req.note)?;
    let (case, state) = visible_case(&app, &visibility, &id).await?;
    let clock = match app.store.deferral(&id, &deferral).await? {
        Some(d) if d.state == "approved" => app.store.parked_clock(&id).await?,
        _ => None,
    }
    .ok_or_else(|| ApiError::conflict("that deferral is not in effect", vec![]))?;
    // To the millisecond, as stored, so the answer shows the deadline the case has.
    let now = Utc::now().trunc_subsecs(3);
    let back = restored(&app.calendar, &clock, now);
    let actor = principal.actor();
    if !app
        .store
        .end_deferral(&clock, back, &note, &actor, now)
        .await?
    {
        return Err(ApiError::conflict("the deferral ended meanwhile", vec![]));
    }
    publish(&app, &case, state, "deferral_ended", &actor);
    Ok(Json(json!({ "id": deferral, "due_at": back.due_at })))
}
