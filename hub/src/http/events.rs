//! `POST /api/v1/events`: gateways deliver batches of events; the answer lists the ids the
//! hub has committed. `GET /api/v1/events`: the newest events, for operators.

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use protocol::{EventEnvelope, PROTOCOL_VERSION, Rejected, UplinkAck, UplinkBatch};
use serde::{Deserialize, Serialize};

use super::extract::{JsonBody, QueryParams};
use super::{AppState, error::ApiError, paging};
use crate::engine::open_case;
use crate::live::LiveItem;
use crate::store::{EventRow, Principal, Role};

pub async fn post(
    State(app): State<AppState>,
    principal: Principal,
    JsonBody(batch): JsonBody<UplinkBatch>,
) -> Result<Json<UplinkAck>, ApiError> {
    let gateway_id = principal.gateway()?;
    if batch.v != PROTOCOL_VERSION {
        return Err(ApiError::invalid_field(
            "v",
            format!(
                "protocol version {} is not supported (expected {PROTOCOL_VERSION})",
                batch.v
            ),
        ));
    }
    if batch.gateway_id != gateway_id {
        return Err(ApiError::forbidden(format!(
            "this token belongs to gateway {gateway_id:?}, not {:?}",
            batch.gateway_id
        )));
    }
    if batch.events.len() > app.limits.max_batch_events {
        return Err(ApiError::invalid_field(
            "events",
            format!("at most {} events per batch", app.limits.max_batch_events),
        ));
    }
    // An invalid event is rejected on its own; the valid ones around it are still stored.
    let mut valid: Vec<EventEnvelope> = Vec::with_capacity(batch.events.len());
    let mut rejected = Vec::new();
    for (i, event) in batch.events.into_iter().enumerate() {
        let path = format!("events[{i}]");
        let check = event
            .validate(&path)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                if event.gateway_id == gateway_id {
                    Ok(())
                } else {
                    Err(format!(
                        "{path}.gateway_id: {:?} is not the sending gateway",
                        event.gateway_id
                    ))
                }
            });
        match check {
            Ok(()) => valid.push(event),
            Err(reason) => {
                tracing::warn!(gateway = gateway_id, event = %event.id, %reason, "rejected an event");
                rejected.push(Rejected {
                    id: event.id,
                    reason,
                });
            }
        }
    }
    // The hub knows its areas better than a gateway may: fill in what the event left open.
    let reference = app.reference.current();
    if !reference.areas.is_empty() {
        for event in &mut valid {
            let loc = &mut event.location;
            if loc.area_code.is_none() || loc.grid.is_none() {
                let found = reference.areas.locate(loc.lat, loc.lon);
                loc.area_code = loc.area_code.take().or(found.division);
                loc.grid = loc.grid.take().or(found.grid);
            }
        }
    }
    let now = Utc::now();
    let outcome = app
        .store
        .ingest(gateway_id, &valid, &app.correlation, |event| {
            let route = reference
                .ownership
                .route(&event.category, event.location.area_code.as_deref());
            open_case(event, route, &app.calendar, &app.deadlines, now)
        })
        .await?;
    for fresh in &outcome.fresh {
        // Stored with its boxes; the live item goes without them (see `LiveEvent`).
        if let Some(detection) = &mut valid[fresh.index].detection {
            detection.objects.clear();
        }
        app.live.publish(LiveItem::new(
            "event",
            fresh.department.clone(),
            &LiveEvent {
                event: &valid[fresh.index],
                case_id: &fresh.case_id,
                case_opened: fresh.opened,
                department: fresh.department.as_deref(),
            },
        ));
    }
    tracing::info!(
        gateway = gateway_id,
        accepted = outcome.accepted.len(),
        opened = outcome.opened.len(),
        attached = outcome.attached,
        rejected = rejected.len(),
        "stored an uplink batch"
    );
    Ok(Json(UplinkAck {
        v: PROTOCOL_VERSION,
        accepted: outcome.accepted,
        rejected,
    }))
}

/// An event on the live feed: the event as the gateway sent it but for the detected
/// objects' boxes (drawn on the snapshot and kept in the stored event; a crowd's hundred
/// would not fit a PostgreSQL notification, and dashboards would only be told to reload),
/// and its case.
#[derive(Serialize)]
struct LiveEvent<'a> {
    event: &'a EventEnvelope,
    case_id: &'a str,
    case_opened: bool,
    department: Option<&'a str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<i64>,
    offset: Option<i64>,
}

#[derive(Serialize)]
pub struct EventList {
    total: i64,
    items: Vec<EventRow>,
}

pub async fn list(
    State(app): State<AppState>,
    principal: Principal,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Json<EventList>, ApiError> {
    match principal {
        Principal::User {
            role: Role::Admin | Role::Operator,
            ..
        } => {}
        _ => return Err(ApiError::forbidden("only operators may list all events")),
    }
    let (limit, offset) = paging(q.limit, q.offset)?;
    let (total, items) = app.store.list_events(limit, offset).await?;
    Ok(Json(EventList { total, items }))
}
