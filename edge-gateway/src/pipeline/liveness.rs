//! Whether a camera is down long enough to tell the hub: a camera not streaming for
//! `offline_after` is reported offline once, and online once when it streams again. Short
//! drops (a reconnect) say nothing. Pure: the caller passes the time and the camera's state.

use std::time::{Duration, Instant};

/// What to tell the hub about a camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Down since this long ago.
    Offline { down_for: Duration },
    /// Streaming again after being reported offline for this long.
    Online { down_for: Duration },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Up,
    Down { since: Instant, reported: bool },
}

#[derive(Debug)]
pub struct Liveness {
    offline_after: Duration,
    state: State,
}

impl Liveness {
    /// A camera just started counts as down from `now` until it first streams, so one that
    /// never connects is reported too.
    pub fn new(offline_after: Duration, now: Instant) -> Self {
        Self {
            offline_after,
            state: State::Down {
                since: now,
                reported: false,
            },
        }
    }

    pub fn step(&mut self, streaming: bool, now: Instant) -> Option<Change> {
        match (self.state, streaming) {
            (State::Up, true) => None,
            (State::Up, false) => {
                self.state = State::Down {
                    since: now,
                    reported: false,
                };
                None
            }
            (State::Down { since, reported }, true) => {
                self.state = State::Up;
                reported.then(|| Change::Online {
                    down_for: now.duration_since(since),
                })
            }
            (
                State::Down {
                    since,
                    reported: false,
                },
                false,
            ) if now.duration_since(since) >= self.offline_after => {
                self.state = State::Down {
                    since,
                    reported: true,
                };
                Some(Change::Offline {
                    down_for: now.duration_since(since),
                })
            }
            (State::Down { .. }, false) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steps through `(seconds, streaming)` and returns the changes with their times.
    fn run(script: &[(u64, bool)]) -> Vec<(u64, Change)> {
        let t0 = Instant::now();
        let mut l = Liveness::new(Duration::from_secs(60), t0);
        script
            .iter()
            .filter_map(|&(s, streaming)| {
                l.step(streaming, t0 + Duration::from_secs(s))
                    .map(|c| (s, c))
            })
            .collect()
    }

    #[test]
    fn a_reconnect_says_nothing() {
        assert_eq!(
            run(&[(0, true), (10, false), (40, false), (45, true), (200, true)]),
            []
        );
    }

    #[test]
    fn a_long_outage_is_reported_once_each_way() {
        let changes = run(&[
            (0, true),
            (10, false),
            (69, false),
            (70, false),
            (71, false),
            (500, false),
            (600, true),
            (601, true),
        ]);
        assert_eq!(
            changes,
            [
                (
                    70,
                    Change::Offline {
                        down_for: Duration::from_secs(60)
                    }
                ),
                (
                    600,
                    Change::Online {
                        down_for: Duration::from_secs(590)
                    }
                ),
            ]
        );
    }

    #[test]
    fn a_camera_that_never_connects_is_reported() {
        let changes = run(&[(0, false), (30, false), (60, false), (61, false)]);
        assert_eq!(
            changes,
            [(
                60,
                Change::Offline {
                    down_for: Duration::from_secs(60)
                }
            )]
        );
    }
}
