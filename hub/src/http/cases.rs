//! The case queue and case detail, filtered by what the caller's role may see.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};

use chrono::{DateTime, Utc};
use protocol::CategoryCode;

use super::extract::{JsonBody, QueryParams};
use super::{AppState, error::ApiError, paging};
use crate::engine::workflow::{self, Action, Actor, WorkflowError};
use crate::engine::{CaseState, DeferralKind, TimeLimit};
use crate::live::LiveItem;
use crate::store::{
    AppealRow, Assignment, AttachmentRow, CallbackRow, CaseAsset, CaseDetail, CaseFilter, CaseRow,
    CaseSort, CaseVisibility, DeferralRow, ExtensionRow, Principal, ReinspectionRow,
    SupervisionRow, TaskRow, Transition,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    state: Option<String>,
    queue: Option<String>,
    department: Option<String>,
    category: Option<String>,
    severity: Option<String>,
    /// `defer` (缓办) or `ledger` (挂账): only cases under such a deferral.
    deferral: Option<String>,
    /// `true`: only open cases past their deadline.
    overdue: Option<bool>,
    /// A division code (6, 9 or 12 digits): cases in that county, township or village.
    area: Option<String>,
    /// `newest` (default), `due` or `risk`.
    sort: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

#[derive(Serialize)]
pub struct CaseList {
    /// Matching cases, counted up to 10,000.
    total: i64,
    /// More than `total` match (the count stopped at its cap).
    more: bool,
    items: Vec<CaseRow>,
}

pub async fn list(
    State(app): State<AppState>,
    principal: Principal,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Json<CaseList>, ApiError> {
    let visibility = principal.case_visibility()?;
    if let Some(state) = &q.state {
        state
            .parse::<CaseState>()
            .map_err(|e| ApiError::invalid_field("state", e))?;
    }
    if let Some(queue) = &q.queue
        && !matches!(queue.as_str(), "department" | "joint_review")
    {
        return Err(ApiError::invalid_field(
            "queue",
            "must be department or joint_review",
        ));
    }
    if let Some(severity) = &q.severity
        && !matches!(severity.as_str(), "high" | "medium" | "low")
    {
        return Err(ApiError::invalid_field(
            "severity",
            "must be high, medium or low",
        ));
    }
    if let Some(kind) = &q.deferral {
        kind.parse::<DeferralKind>()
            .map_err(|e| ApiError::invalid_field("deferral", e))?;
    }
    if let Some(area) = &q.area
        && !(matches!(area.len(), 6 | 9 | 12) && area.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(ApiError::invalid_field(
            "area",
            "must be a 6, 9 or 12 digit division code",
        ));
    }
    let sort = match &q.sort {
        Some(s) => s
            .parse()
            .map_err(|e: String| ApiError::invalid_field("sort", e))?,
        None => CaseSort::default(),
    };
    let (limit, offset) = paging(q.limit, q.offset)?;
    let filter = CaseFilter {
        state: q.state,
        queue: q.queue,
        department: q.department,
        category: q.category,
        severity: q.severity,
        deferral: q.deferral,
        overdue_at: q.overdue.unwrap_or(false).then(Utc::now),
        area: q.area,
        sort,
        limit,
        offset,
    };
    let (total, more, items) = app.store.list_cases(&visibility, &filter).await?;
    Ok(Json(CaseList { total, more, items }))
}

/// A case with its events; each event lists where its evidence can be downloaded.
#[derive(Serialize)]
pub struct CaseView {
    #[serde(flatten)]
    detail: CaseDetail,
    evidence_urls: Vec<String>,
    /// What the caller may do to the case now.
    allowed_actions: Vec<Action>,
    /// Tasks sent to patrol terminals about this case.
    tasks: Vec<TaskRow>,
    /// Supervision notices (督办) to the department, with its replies.
    supervision: Vec<SupervisionRow>,
    /// Photos people added (`/api/v1/blobs/{sha256}` serves each).
    attachments: Vec<AttachmentRow>,
    /// Requests for more time and their decisions; callbacks after closing.
    extensions: Vec<ExtensionRow>,
    callbacks: Vec<CallbackRow>,
    /// Deferrals (缓办, 挂账) asked for, decided and ended.
    deferrals: Vec<DeferralRow>,
    /// Appeals (申诉) against the case's overdue finding or reworks.
    appeals: Vec<AppealRow>,
    /// Re-inspections asked of the cameras that saw the hazard, once it was reported
    /// handled, with the gateways' answers.
    reinspections: Vec<ReinspectionRow>,
    /// The registered assets its cameras watch (from the device registry).
    assets: Vec<CaseAsset>,
}

pub async fn get(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<CaseView>, ApiError> {
    let visibility = principal.case_visibility()?;
    // Another department's case answers like a missing one, so ids cannot be probed.
    let detail = app
        .store
        .get_case(&visibility, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("case"))?;
    let evidence_urls = detail
        .events
        .iter()
        .filter_map(|e| e.event.get("evidence")?.as_array())
        .flatten()
        .filter_map(|ev| ev.get("sha256")?.as_str())
        .map(|sha| format!("/api/v1/blobs/{sha}"))
        .collect();
    let allowed_actions = detail
        .case
        .state
        .parse::<CaseState>()
        .map(|state| workflow::allowed(state, actor_for(&visibility)))
        .unwrap_or_default()
        .into_iter()
        .filter(|a| !held_back_by_deferral(&detail.case, *a))
        .collect();
    let tasks = app.store.list_tasks(&detail.case.id).await?;
    let supervision = app.store.list_notices(&detail.case.id).await?;
    let attachments = app.store.list_attachments(&detail.case.id).await?;
    let extensions = app.store.list_extensions(&detail.case.id).await?;
    let callbacks = app.store.list_callbacks(&detail.case.id).await?;
    let deferrals = app.store.list_deferrals(&detail.case.id).await?;
    let appeals = app.store.list_appeals(&detail.case.id).await?;
    let reinspections = app.store.list_reinspections(&detail.case.id).await?;
    let assets = app.store.case_assets(&detail.case.id).await?;
    Ok(Json(CaseView {
        detail,
        evidence_urls,
        allowed_actions,
        tasks,
        supervision,
        attachments,
        extensions,
        callbacks,
        deferrals,
        appeals,
        reinspections,
        assets,
    }))
}

/// The case `id` if the caller may see it (another department's case is 404, as if
/// missing), with its state.
pub(super) async fn visible_case(
    app: &AppState,
    visibility: &CaseVisibility,
    id: &str,
) -> Result<(CaseRow, CaseState), ApiError> {
    let case = app
        .store
        .get_case_row(visibility, id)
        .await?
        .ok_or_else(|| ApiError::not_found("case"))?;
    let state = case.state.parse().map_err(ApiError::bad_request)?;
    Ok((case, state))
}

/// A deferred case is resumed before it is reported handled, so its handling is measured
/// against the deadline it got back.
fn held_back_by_deferral(case: &CaseRow, action: Action) -> bool {
    action == Action::Handle && case.deferral_kind.is_some()
}

fn actor_for(visibility: &CaseVisibility) -> Actor {
    match visibility {
        CaseVisibility::All => Actor::Centre,
        CaseVisibility::Department(_) => Actor::Department,
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    action: String,
    /// Required for void, return_to_intake, refuse, handle (the feedback), rework and
    /// force_close.
    reason: Option<String>,
    /// For dispatch: the department; default from the ownership list.
    department: Option<String>,
    /// For dispatch: e.g. `4 working_hours`; default from the ownership list.
    time_limit: Option<String>,
}

/// What an action did. (A department that refused a case can no longer read it, so the
/// answer is this, not the case.)
#[derive(Serialize)]
pub struct ActionOutcome {
    id: String,
    action: Action,
    from: CaseState,
    to: CaseState,
}

/// `POST /api/v1/cases/{id}/actions`: moves a case through the closed loop.
pub async fn act(
    State(app): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<ActionRequest>,
) -> Result<Json<ActionOutcome>, ApiError> {
    let visibility = principal.case_visibility()?;
    let actor = actor_for(&visibility);
    let action: Action = req
        .action
        .parse()
        .map_err(|e| ApiError::invalid_field("action", e))?;
    let case = app
        .store
        .get_case_row(&visibility, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("case"))?;
    let from: CaseState = case
        .state
        .parse()
        .map_err(|e: String| ApiError::bad_request(e))?;
    let reason = req
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    if held_back_by_deferral(&case, action) {
        return Err(ApiError::conflict(
            "the case is deferred (缓办/挂账): end the deferral before reporting it handled",
            vec![],
        ));
    }
    let to = workflow::decide(from, action, actor, reason).map_err(|e| match &e {
        WorkflowError::NotAllowed { allowed, .. } => {
            ApiError::conflict(e.to_string(), allowed.iter().map(|a| a.as_str()).collect())
        }
        WorkflowError::WrongActor { .. } => ApiError::forbidden(e.to_string()),
        WorkflowError::ReasonRequired { .. } => ApiError::invalid_field("reason", e.to_string()),
    })?;
    let now = Utc::now();
    let assignment = match action {
        Action::Dispatch => Some(Some(assignment(&app, &case, &req, now)?)),
        Action::Refuse => Some(None),
        _ => None,
    };
    // Where the case belongs once moved: who may see the move on the live feed.
    let department = match &assignment {
        Some(assigned) => assigned.as_ref().map(|a| a.department.clone()),
        None => case.department.clone(),
    };
    let applied = app
        .store
        .transition(&Transition {
            case_id: &id,
            from,
            to,
            action,
            actor: principal.actor(),
            reason,
            assignment,
            rework: action == Action::Rework,
            at: now,
        })
        .await?;
    if !applied {
        return Err(ApiError::conflict(
            "the case changed meanwhile; reload it and try again",
            vec![],
        ));
    }
    tracing::info!(case = %id, %action, %from, %to, actor = %principal.actor(), "case moved");
    app.live.publish(LiveItem::new(
        "case",
        department.clone(),
        &serde_json::json!({
            "id": id,
            "action": action,
            "from": from,
            "to": to,
            "actor": principal.actor(),
            "department": department,
        }),
    ));
    Ok(Json(ActionOutcome {
        id,
        action,
        from,
        to,
    }))
}

/// Who a dispatched case goes to: as the request says, else as the ownership list says.
fn assignment(
    app: &AppState,
    case: &CaseRow,
    req: &ActionRequest,
    now: DateTime<Utc>,
) -> Result<Assignment, ApiError> {
    let category: CategoryCode = case
        .category
        .parse()
        .map_err(|e: protocol::CategoryError| ApiError::bad_request(e.to_string()))?;
    let reference = app.reference.current();
    let route = reference
        .ownership
        .route(&category, case.area_code.as_deref());
    let department = match (req.department.as_deref().map(str::trim), route) {
        (Some(""), _) => return Err(ApiError::invalid_field("department", "must not be empty")),
        (Some(d), _) if !reference.departments.is_empty() && reference.department(d).is_none() => {
            return Err(ApiError::invalid_field(
                "department",
                format!("{d:?} is not in the department list"),
            ));
        }
        (Some(d), _) => d.to_owned(),
        (None, Some(r)) => r.department.clone(),
        (None, None) => {
            return Err(ApiError::invalid_field(
                "department",
                "no ownership item matches this case; name a department",
            ));
        }
    };
    let time_limit: TimeLimit = match (&req.time_limit, route) {
        (Some(t), _) => t
            .parse()
            .map_err(|e: String| ApiError::invalid_field("time_limit", e))?,
        (None, Some(r)) => r.time_limit,
        (None, None) => {
            return Err(ApiError::invalid_field(
                "time_limit",
                "no ownership item matches; give a time limit",
            ));
        }
    };
    // The route's conditions apply only when the case goes where the route says.
    let route = route.filter(|r| r.department == department);
    Ok(Assignment {
        department,
        supervisor: route.and_then(|r| r.supervisor.clone()),
        time_limit: time_limit.to_string(),
        condition: route.and_then(|r| r.condition.clone()),
        closing_condition: route.and_then(|r| r.closing.clone()),
        due_at: app.calendar.due(now, time_limit),
        warn_at: app
            .calendar
            .fraction_of(now, time_limit, app.deadlines.warn_fraction),
    })
}
