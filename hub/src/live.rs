//! The live feed: what happened at the hub a moment ago (an event stored, a case moved),
//! fanned out to every open dashboard. Publishers call [`LiveFeed::publish`] after their
//! transaction commits; each subscriber sees only what its caller may see.
//!
//! Delivery is best-effort by design: a dashboard that falls behind by more than the
//! buffer is told so (`lagged`) and reloads from the API, which is the source of truth.
//! Each hub process fans out what it committed itself; several replicas on one PostgreSQL
//! would need LISTEN/NOTIFY to share their feeds (not built yet).

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::engine::CaseState;
use crate::store::CaseVisibility;

/// Items a slow subscriber may fall behind by before it is told to reload.
const BUFFER: usize = 1024;

/// One thing that happened, serialised once for all subscribers.
#[derive(Debug)]
pub struct LiveItem {
    /// The SSE event name: `event` or `case`.
    pub kind: &'static str,
    /// The department the case belongs to now; department users see only their own.
    pub department: Option<String>,
    /// The JSON payload.
    pub data: String,
}

impl LiveItem {
    pub fn new(kind: &'static str, department: Option<String>, data: &impl Serialize) -> Self {
        Self {
            kind,
            department,
            data: serde_json::to_string(data).expect("live items always serialise"),
        }
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
            CaseVisibility::All => true,
            CaseVisibility::Department(d) => self.department.as_deref() == Some(d),
        }
    }
}

#[derive(Clone, Debug)]
pub struct LiveFeed {
    tx: broadcast::Sender<Arc<LiveItem>>,
    /// Cancelled when the hub shuts down, so open streams end and the server can drain.
    closing: CancellationToken,
}

impl LiveFeed {
    pub fn new(closing: CancellationToken) -> Self {
        Self {
            tx: broadcast::channel(BUFFER).0,
            closing,
        }
    }

    /// Sends `item` to the current subscribers; with none, it is simply dropped.
    pub fn publish(&self, item: LiveItem) {
        let _ = self.tx.send(Arc::new(item));
    }

    pub fn subscribe(&self) -> (broadcast::Receiver<Arc<LiveItem>>, CancellationToken) {
        (self.tx.subscribe(), self.closing.clone())
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
}
