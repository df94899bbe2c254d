//! The closed loop (闭环) as a transition table: which action moves a case from which states
//! to which state, who may take it, and whether it needs a reason. Pure: the HTTP layer asks
//! [`decide`] and the store applies the answer with an optimistic check on the old state.

use std::fmt;
use std::str::FromStr;

use super::case::CaseState::{self, *};

/// What a caller may act as on a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// Operators and admins at the centre: intake, dispatch, verification, supervision.
    Centre,
    /// The handler of the department the case is dispatched to.
    Department,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// 立案: accept a report as a case.
    Register,
    /// 作废: a false alarm or duplicate.
    Void,
    /// 派遣: send to a department with a time limit.
    Dispatch,
    /// Back to intake ("not ours" at dispatch).
    ReturnToIntake,
    /// The department takes the case on.
    Accept,
    /// 非本单位: the department refuses a misrouted case; it goes back to the dispatcher.
    Refuse,
    /// 处理反馈: the department reports the case handled.
    Handle,
    /// 核查: the centre starts verifying the fix.
    Verify,
    /// 结案
    Close,
    /// 返工: verification failed; the same department works on it again (counted).
    Rework,
    /// 强制结案 by a supervisor.
    ForceClose,
}

struct Rule {
    action: Action,
    from: &'static [CaseState],
    to: CaseState,
    actor: Actor,
    needs_reason: bool,
}

const OPEN: &[CaseState] = &[
    Reported, Registered, Dispatched, Handling, Handled, Verifying,
];

const RULES: &[Rule] = &[
    Rule {
        action: Action::Register,
        from: &[Reported],
        to: Registered,
        actor: Actor::Centre,
        needs_reason: false,
    },
    Rule {
        action: Action::Void,
        from: &[Reported, Registered],
        to: Void,
        actor: Actor::Centre,
        needs_reason: true,
    },
    Rule {
        action: Action::Dispatch,
        from: &[Reported, Registered],
        to: Dispatched,
        actor: Actor::Centre,
        needs_reason: false,
    },
    Rule {
        action: Action::ReturnToIntake,
        from: &[Registered],
        to: Reported,
        actor: Actor::Centre,
        needs_reason: true,
    },
    Rule {
        action: Action::Accept,
        from: &[Dispatched],
        to: Handling,
        actor: Actor::Department,
        needs_reason: false,
    },
    Rule {
        action: Action::Refuse,
        from: &[Dispatched],
        to: Registered,
        actor: Actor::Department,
        needs_reason: true,
    },
    Rule {
        action: Action::Handle,
        from: &[Handling],
        to: Handled,
        actor: Actor::Department,
        needs_reason: true,
    },
    Rule {
        action: Action::Verify,
        from: &[Handled],
        to: Verifying,
        actor: Actor::Centre,
        needs_reason: false,
    },
    Rule {
        action: Action::Close,
        from: &[Verifying],
        to: Closed,
        actor: Actor::Centre,
        needs_reason: false,
    },
    Rule {
        action: Action::Rework,
        from: &[Handled, Verifying],
        to: Handling,
        actor: Actor::Centre,
        needs_reason: true,
    },
    Rule {
        action: Action::ForceClose,
        from: OPEN,
        to: ForceClosed,
        actor: Actor::Centre,
        needs_reason: true,
    },
];

impl Action {
    pub const ALL: [Action; 11] = [
        Action::Register,
        Action::Void,
        Action::Dispatch,
        Action::ReturnToIntake,
        Action::Accept,
        Action::Refuse,
        Action::Handle,
        Action::Verify,
        Action::Close,
        Action::Rework,
        Action::ForceClose,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Register => "register",
            Action::Void => "void",
            Action::Dispatch => "dispatch",
            Action::ReturnToIntake => "return_to_intake",
            Action::Accept => "accept",
            Action::Refuse => "refuse",
            Action::Handle => "handle",
            Action::Verify => "verify",
            Action::Close => "close",
            Action::Rework => "rework",
            Action::ForceClose => "force_close",
        }
    }
}

impl FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|a| a.as_str()).collect();
                format!("unknown action {s:?}; actions are {}", names.join(", "))
            })
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an action cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowError {
    #[error("{action} is not possible in state {state}; possible now: {}", names(.allowed))]
    NotAllowed {
        action: Action,
        state: CaseState,
        allowed: Vec<Action>,
    },
    #[error("{action} is for {}", if *.centre { "the centre's operators" } else { "the department handling the case" })]
    WrongActor { action: Action, centre: bool },
    #[error("{action} needs a reason")]
    ReasonRequired { action: Action },
}

fn names(actions: &[Action]) -> String {
    if actions.is_empty() {
        return "nothing".into();
    }
    actions
        .iter()
        .map(|a| a.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The actions `actor` may take on a case in `state`.
pub fn allowed(state: CaseState, actor: Actor) -> Vec<Action> {
    RULES
        .iter()
        .filter(|r| r.actor == actor && r.from.contains(&state))
        .map(|r| r.action)
        .collect()
}

/// The state `action` leads to, if `actor` may take it now with this `reason`.
pub fn decide(
    state: CaseState,
    action: Action,
    actor: Actor,
    reason: Option<&str>,
) -> Result<CaseState, WorkflowError> {
    let rule = RULES
        .iter()
        .find(|r| r.action == action)
        .expect("every action has a rule");
    if rule.actor != actor {
        return Err(WorkflowError::WrongActor {
            action,
            centre: rule.actor == Actor::Centre,
        });
    }
    if !rule.from.contains(&state) {
        return Err(WorkflowError::NotAllowed {
            action,
            state,
            allowed: allowed(state, actor),
        });
    }
    if rule.needs_reason && reason.is_none_or(|r| r.trim().is_empty()) {
        return Err(WorkflowError::ReasonRequired { action });
    }
    Ok(rule.to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(state: CaseState, action: Action, actor: Actor) -> Result<CaseState, WorkflowError> {
        decide(state, action, actor, Some("because"))
    }

    #[test]
    fn the_closed_loop_runs_end_to_end() {
        let mut s = Reported;
        for (action, actor, want) in [
            (Action::Register, Actor::Centre, Registered),
            (Action::Dispatch, Actor::Centre, Dispatched),
            (Action::Accept, Actor::Department, Handling),
            (Action::Handle, Actor::Department, Handled),
            (Action::Verify, Actor::Centre, Verifying),
            (Action::Rework, Actor::Centre, Handling),
            (Action::Handle, Actor::Department, Handled),
            (Action::Verify, Actor::Centre, Verifying),
            (Action::Close, Actor::Centre, Closed),
        ] {
            s = go(s, action, actor).unwrap();
            assert_eq!(s, want, "after {action}");
        }
        assert!(allowed(Closed, Actor::Centre).is_empty());
        assert!(allowed(Closed, Actor::Department).is_empty());
    }

    #[test]
    fn every_state_and_action_is_decided_consistently_with_allowed() {
        for state in CaseState::ALL {
            for actor in [Actor::Centre, Actor::Department] {
                let allowed_now = allowed(state, actor);
                for action in Action::ALL {
                    let ok = go(state, action, actor).is_ok();
                    assert_eq!(
                        ok,
                        allowed_now.contains(&action),
                        "{state} {action} {actor:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn terminal_states_admit_nothing() {
        for state in [Void, Closed, ForceClosed] {
            for action in Action::ALL {
                assert!(
                    go(state, action, Actor::Centre).is_err()
                        && go(state, action, Actor::Department).is_err()
                );
            }
        }
    }

    #[test]
    fn backward_moves_need_a_reason() {
        for (state, action, actor) in [
            (Registered, Action::ReturnToIntake, Actor::Centre),
            (Dispatched, Action::Refuse, Actor::Department),
            (Verifying, Action::Rework, Actor::Centre),
            (Reported, Action::Void, Actor::Centre),
            (Handling, Action::ForceClose, Actor::Centre),
        ] {
            assert_eq!(
                decide(state, action, actor, None),
                Err(WorkflowError::ReasonRequired { action })
            );
            assert_eq!(
                decide(state, action, actor, Some("  ")),
                Err(WorkflowError::ReasonRequired { action })
            );
        }
    }

    #[test]
    fn errors_say_what_is_possible() {
        let err = go(Dispatched, Action::Close, Actor::Centre).unwrap_err();
        assert_eq!(
            err.to_string(),
            "close is not possible in state dispatched; possible now: force_close"
        );
        let err = go(Dispatched, Action::Accept, Actor::Centre).unwrap_err();
        assert!(
            matches!(err, WorkflowError::WrongActor { centre: false, .. }),
            "{err}"
        );
        let err = go(Handling, Action::Close, Actor::Department).unwrap_err();
        assert!(err.to_string().contains("centre"), "{err}");
        assert!(
            "finish"
                .parse::<Action>()
                .unwrap_err()
                .contains("force_close")
        );
    }
}
