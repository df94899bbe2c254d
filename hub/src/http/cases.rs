//! The case queue and case detail, filtered by what the caller's role may see.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};

use super::extract::QueryParams;
use super::{AppState, error::ApiError, paging};
use crate::engine::CaseState;
use crate::store::{CaseDetail, CaseFilter, CaseRow, Principal};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    state: Option<String>,
    queue: Option<String>,
    department: Option<String>,
    category: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

#[derive(Serialize)]
pub struct CaseList {
    total: i64,
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
    let (limit, offset) = paging(q.limit, q.offset)?;
    let filter = CaseFilter {
        state: q.state,
        queue: q.queue,
        department: q.department,
        category: q.category,
        limit,
        offset,
    };
    let (total, items) = app.store.list_cases(&visibility, &filter).await?;
    Ok(Json(CaseList { total, items }))
}

/// A case with its events; each event lists where its evidence can be downloaded.
#[derive(Serialize)]
pub struct CaseView {
    #[serde(flatten)]
    detail: CaseDetail,
    evidence_urls: Vec<String>,
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
    Ok(Json(CaseView {
        detail,
        evidence_urls,
    }))
}
