//! `GET /api/v1/stream`: the live feed as server-sent events, for dashboards. Events:
//! `ready` once subscribed, then `event` (an event stored, with its case) and `case` (a case
//! moved), each only if the caller may see that case; `lagged` when the caller fell behind
//! and should reload from the API.

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::{AppState, error::ApiError};
use crate::store::Principal;

pub async fn stream(
    State(app): State<AppState>,
    principal: Principal,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let visibility = principal.case_visibility()?;
    let (rx, closing) = app.live.subscribe();
    let ready = futures::stream::once(async { Ok(Event::default().event("ready").data("{}")) });
    let items = futures::stream::unfold(rx, move |mut rx| {
        let visibility = visibility.clone();
        async move {
            loop {
                match rx.recv().await {
                    Ok(item) if item.visible_to(&visibility) => {
                        let event = Event::default().event(&item.kind).data(&item.data);
                        return Some((Ok(event), rx));
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(missed)) => {
                        let event = Event::default()
                            .event("lagged")
                            .data(format!("{{\"missed\":{missed}}}"));
                        return Some((Ok(event), rx));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    });
    let stream = futures::StreamExt::take_until(
        futures::StreamExt::chain(ready, items),
        closing.cancelled_owned(),
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
