//! The live feed: what happened at the hub a moment ago (an event stored, a case moved),
//! fanned out to every open dashboard. Publishers call [`LiveFeed::publish`] after their
//! transaction commits; each subscriber sees only what its caller may see.
//!
//! Delivery is best-effort by design: a dashboard that falls behind by more than the
//! buffer is told so (`lagged`) and reloads from the API, which is the source of truth.
//! On SQLite (one hub process) items go straight to the subscribers. On PostgreSQL they go
//! through the database (`NOTIFY hub_live`), and every hub replica listening there hands
//! them to its own subscribers, so a dashboard on any replica sees what any replica did.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::engine::CaseState;
use crate::store::{CaseVisibility, Store};

/// The PostgreSQL channel the replicas share.
const CHANNEL: &str = "hub_live";
/// `NOTIFY` payloads must stay under 8,000 bytes.
const MAX_PAYLOAD: usize = 7_900;

/// Items sent with one `NOTIFY` statement at most.
const NOTIFY_BATCH: usize = 500;

/// Items a slow subscriber may fall behind by before it is told to reload.
const BUFFER: usize = 1024;

/// One thing that happened, serialised once for all subscribers.
#[derive(Debug)]
pub struct LiveItem {
    /// The SSE event name: `event`, `case`, or `lagged` (reload: something was missed).
    pub kind: String,
    /// The department the case belongs to now; department users see only their own.
    pub department: Option<String>,
    /// The JSON payload.
    pub data: String,
}

impl LiveItem {
    pub fn new(kind: &'static str, department: Option<String>, data: &impl Serialize) -> Self {
        Self {
            kind: kind.to_owned(),
            department,
            data: serde_json::to_string(data).expect("live items always serialise"),
        }
    }

    /// Tells every subscriber to reload from the API.
    pub fn lagged() -> Self {
        Self::new("lagged", None, &serde_json::json!({}))
    }

    /// Something done to a case that leaves its state as it is (a notice, a photo, a
    /// request): a `case` item with `from` = `to`.
    pub fn case_note(
        case_id: &str,
        department: Option<&str>,
        action: &str,
        state: CaseState,
        actor: &str,
    ) -> Self {
        Self::new(
            "case",
            department.map(str::to_owned),
            &serde_json::json!({
                "id": case_id,
                "action": action,
                "from": state,
                "to": state,
                "actor": actor,
                "department": department,
            }),
        )
    }

    pub fn visible_to(&self, visibility: &CaseVisibility) -> bool {
        match visibility {
            _ if self.kind == "lagged" => true,
            CaseVisibility::All => true,
            CaseVisibility::Department(d) => self.department.as_deref() == Some(d),
        }
    }
}

#[derive(Clone, Debug)]
pub struct LiveFeed {
    tx: broadcast::Sender<Arc<LiveItem>>,
    /// On PostgreSQL: items on their way to `NOTIFY`.
    outbound: Option<mpsc::UnboundedSender<LiveItem>>,
    /// Cancelled when the hub shuts down, so open streams end and the server can drain.
    closing: CancellationToken,
}

impl LiveFeed {
    /// A feed for this process alone.
    pub fn new(closing: CancellationToken) -> Self {
        Self {
            tx: broadcast::channel(BUFFER).0,
            outbound: None,
            closing,
        }
    }

    /// A feed shared by every hub on `store`'s PostgreSQL database: items are sent with
    /// `NOTIFY` and come back to each hub through its listener.
    pub fn shared(store: Store, closing: CancellationToken) -> Self {
        let (outbound, mut queue) = mpsc::unbounded_channel::<LiveItem>();
        let feed = Self {
            outbound: Some(outbound),
            ..Self::new(closing.clone())
        };
        let local = feed.tx.clone();
        let sender = store.clone();
        tokio::spawn(async move {
            // What has queued up goes in one statement: a batch of events is one round trip,
            // not one per event.
            let mut items = Vec::new();
            while queue.recv_many(&mut items, NOTIFY_BATCH).await > 0 {
                let payloads: Vec<String> = items.iter().map(notification).collect();
                if let Err(e) = sender.notify(CHANNEL, &payloads).await {
                    // This replica's own dashboards still hear of them.
                    tracing::warn!(error = %e, "live feed: NOTIFY failed; delivering locally only");
                    for item in items.drain(..) {
                        let _ = local.send(Arc::new(item));
                    }
                }
                items.clear();
            }
        });
        let local = feed.tx.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = closing.cancelled() => return,
                    () = listen(&store, &local) => {}
                }
                // The connection broke: items may have been missed meanwhile.
                let _ = local.send(Arc::new(LiveItem::lagged()));
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        });
        feed
    }

    /// Sends `item` to the current subscribers (of every replica, on PostgreSQL); with none,
    /// it is simply dropped.
    pub fn publish(&self, item: LiveItem) {
        match &self.outbound {
            Some(outbound) => {
                let _ = outbound.send(item);
            }
            None => {
                let _ = self.tx.send(Arc::new(item));
            }
        }
    }

    pub fn subscribe(&self) -> (broadcast::Receiver<Arc<LiveItem>>, CancellationToken) {
        (self.tx.subscribe(), self.closing.clone())
    }
}

/// The part of a notification before its first line break: what subscribers filter on.
#[derive(Serialize, Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    department: Option<Cow<'a, str>>,
}

/// `item` as a notification payload: a JSON header line, then the item's data as it is
/// (compact JSON holds no raw line break, so the first one ends the header; the data is not
/// escaped and parsed again on its way through PostgreSQL). One too large for `NOTIFY`
/// becomes `lagged`, so subscribers reload instead of missing it silently.
fn notification(item: &LiveItem) -> String {
    let text = payload(item);
    if text.len() <= MAX_PAYLOAD {
        text
    } else {
        payload(&LiveItem::lagged())
    }
}

fn payload(item: &LiveItem) -> String {
    let header = Header {
        kind: Cow::Borrowed(&item.kind),
        department: item.department.as_deref().map(Cow::Borrowed),
    };
    let header = serde_json::to_string(&header).expect("live items always serialise");
    format!("{header}\n{}", item.data)
}

/// A notification payload back as an item.
fn from_notification(payload: &str) -> Result<LiveItem, String> {
    let (header, data) = payload
        .split_once('\n')
        .ok_or("no line break after the header")?;
    let header: Header = serde_json::from_str(header).map_err(|e| format!("header: {e}"))?;
    Ok(LiveItem {
        kind: header.kind.into_owned(),
        department: header.department.map(Cow::into_owned),
        data: data.to_owned(),
    })
}

/// Hands what arrives on the shared channel to this process's subscribers, until the
/// connection fails.
async fn listen(store: &Store, local: &broadcast::Sender<Arc<LiveItem>>) {
    let mut listener = match store.listen(CHANNEL).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "live feed: cannot listen; retrying");
            return;
        }
    };
    loop {
        match listener.recv().await {
            Ok(note) => match from_notification(note.payload()) {
                Ok(item) => {
                    let _ = local.send(Arc::new(item));
                }
                Err(e) => tracing::warn!(error = %e, "live feed: a malformed item; ignored"),
            },
            Err(e) => {
                tracing::warn!(error = %e, "live feed: the listener failed; reconnecting");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn department_users_see_only_their_department() {
        let item = LiveItem::new("case", Some("police".into()), &serde_json::json!({"id": 1}));
        assert!(item.visible_to(&CaseVisibility::All));
        assert!(item.visible_to(&CaseVisibility::Department("police".into())));
        assert!(!item.visible_to(&CaseVisibility::Department("fire".into())));
        let unrouted = LiveItem::new("event", None, &serde_json::json!({}));
        assert!(!unrouted.visible_to(&CaseVisibility::Department("police".into())));
        assert_eq!(item.data, r#"{"id":1}"#);
    }

    #[test]
    fn notifications_round_trip_and_oversized_ones_become_a_reload() {
        let item = LiveItem::new(
            "event",
            Some("police".into()),
            &serde_json::json!({"id": 7}),
        );
        let back = from_notification(&notification(&item)).unwrap();
        assert_eq!(
            (back.kind.as_str(), back.department.as_deref()),
            ("event", Some("police"))
        );
        assert_eq!(back.data, item.data);
        // Line breaks and quotes inside the data or the department do not end the header.
        let item = LiveItem::new(
            "case",
            Some("\"城管\"\n局".into()),
            &serde_json::json!({"note": "第一行\n第二行"}),
        );
        let back = from_notification(&notification(&item)).unwrap();
        assert_eq!(back.department, item.department);
        assert_eq!(back.data, item.data);
        assert!(from_notification("no header").is_err());
        let huge = LiveItem::new("event", None, &"井".repeat(3000));
        let back = from_notification(&notification(&huge)).unwrap();
        assert_eq!(back.kind, "lagged");
        assert!(
            back.visible_to(&CaseVisibility::Department("fire".into())),
            "everyone reloads"
        );
    }
}
