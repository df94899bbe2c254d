//! The desk between the hub report and the detection thread for re-inspections: the report
//! files the hub's requests, the detection thread takes them up and leaves its answers, the
//! report sends the answers until the hub has acknowledged them. A request the hub asks
//! again while it is being looked into is not filed twice. Nothing here is kept on disk:
//! after a restart the hub simply asks again.

use std::collections::HashSet;
use std::sync::Mutex;

use protocol::gateway::{Reinspection, ReinspectionResult};
use uuid::Uuid;

use crate::event::Blob;

/// An answer, with the snapshot to upload before it is sent.
#[derive(Debug, Clone)]
pub struct Answer {
    pub result: ReinspectionResult,
    pub snapshot: Option<Blob>,
}

#[derive(Debug, Default)]
pub struct Desk(Mutex<State>);

#[derive(Debug, Default)]
struct State {
    /// Every request filed and not yet acknowledged as answered.
    known: HashSet<Uuid>,
    incoming: Vec<Reinspection>,
    answers: Vec<Answer>,
}

impl Desk {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Files the requests not already on the desk.
    pub fn file(&self, requests: &[Reinspection]) {
        let mut s = self.state();
        for r in requests {
            if s.known.insert(r.id) {
                tracing::info!(camera = %r.camera_id, case = %r.case_id, category = %r.category, "the hub asks for a re-inspection");
                s.incoming.push(r.clone());
            }
        }
    }

    /// The requests filed since the last call.
    pub fn take_incoming(&self) -> Vec<Reinspection> {
        std::mem::take(&mut self.state().incoming)
    }

    pub fn answer(&self, answer: Answer) {
        tracing::info!(reinspection = %answer.result.id, outcome = answer.result.outcome.as_str(), "re-inspection answered");
        self.state().answers.push(answer);
    }

    /// The answers waiting to reach the hub.
    pub fn answers(&self) -> Vec<Answer> {
        self.state().answers.clone()
    }

    /// The hub has acknowledged these answers: forget them.
    pub fn delivered(&self, ids: &[Uuid]) {
        let mut s = self.state();
        s.answers.retain(|a| !ids.contains(&a.result.id));
        for id in ids {
            s.known.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use protocol::gateway::ReinspectionOutcome;

    use super::*;

    fn request() -> Reinspection {
        Reinspection {
            id: Uuid::now_v7(),
            case_id: Uuid::now_v7(),
            camera_id: "road".into(),
            category: "component:0114".parse().unwrap(),
            bbox: None,
            requested_at: Utc::now(),
        }
    }

    #[test]
    fn a_request_is_filed_once_and_its_answer_kept_until_delivered() {
        let desk = Desk::default();
        let r = request();
        desk.file(std::slice::from_ref(&r));
        desk.file(std::slice::from_ref(&r));
        assert_eq!(desk.take_incoming().len(), 1, "asked twice, filed once");
        assert!(desk.take_incoming().is_empty());
        desk.answer(Answer {
            result: ReinspectionResult {
                id: r.id,
                outcome: ReinspectionOutcome::Cleared,
                checked_at: Utc::now(),
                frames: 5,
                score: None,
                snapshot: None,
                note: None,
            },
            snapshot: None,
        });
        desk.file(std::slice::from_ref(&r));
        assert!(
            desk.take_incoming().is_empty(),
            "answered, not yet delivered"
        );
        assert_eq!(desk.answers().len(), 1);
        assert_eq!(desk.answers().len(), 1, "kept until delivered");
        desk.delivered(&[r.id]);
        assert!(desk.answers().is_empty());
    }
}
