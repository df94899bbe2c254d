//! `GET /api/v1/stats?from=YYYY-MM-DD&to=YYYY-MM-DD`: counts of the cases opened in a
//! period (local days, both ends included; the last 30 days by default), for the
//! statistics page. Department users get their own department's numbers only.

use axum::Json;
use axum::extract::State;
use chrono::{Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::extract::QueryParams;
use super::{AppState, error::ApiError};
use crate::engine::summary::{self, Summary};
use crate::indicators;
use crate::store::Principal;

/// The longest period one request may cover.
const MAX_DAYS: i64 = 366;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Period {
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
}

#[derive(Serialize)]
pub struct Stats {
    from: NaiveDate,
    to: NaiveDate,
    #[serde(flatten)]
    summary: Summary,
}

pub async fn get(
    State(app): State<AppState>,
    principal: Principal,
    QueryParams(period): QueryParams<Period>,
) -> Result<Json<Stats>, ApiError> {
    let visibility = principal.case_visibility()?;
    let offset = app.calendar.offset();
    let now = Utc::now();
    let to = period.to.unwrap_or_else(|| summary::local_day(now, offset));
    let from = period.from.unwrap_or(to - Duration::days(29));
    if from > to {
        return Err(ApiError::invalid_field("from", "must not be after `to`"));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(ApiError::invalid_field(
            "to",
            format!("a period covers at most {MAX_DAYS} days"),
        ));
    }
    let summary = indicators::summary(&app.store, &visibility, from, to, now, offset).await?;
    Ok(Json(Stats { from, to, summary }))
}
