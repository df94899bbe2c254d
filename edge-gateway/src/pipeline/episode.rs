//! The life of a lasting condition a rule follows (a crowd, a broken cover): it starts once
//! it has held for `dwell`, is updated while it lasts when there is news (at most every
//! `update_every`, unless it got graver) and at least every `refresh` (so the hub knows it
//! still holds), and ends once it has been gone for `clear`; after an end the rule waits
//! `cooldown` before it starts another. Pure: the rule says whether
//! the condition holds in each analysed frame and what is new; no clock, no I/O.
//!
//! Each episode has an id minted when it starts and numbers its events from 0 (the start),
//! so the hub can apply them in order however they arrive (`protocol::Episode`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use protocol::Episode;
use uuid::Uuid;

/// A rule's timing, from the camera's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long the condition must hold before it starts.
    pub dwell: Duration,
    /// How long it must be gone before it ends.
    pub clear: Duration,
    /// The shortest time between two reports of one episode, unless it got graver.
    pub update_every: Duration,
    /// The longest time between two reports while it lasts, news or not.
    pub refresh: Duration,
    /// After an end, how long before the rule starts another episode.
    pub cooldown: Duration,
}

/// What a frame brings to an episode that is going on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum News {
    Nothing,
    /// Better evidence (more persons, a surer box): worth an update when one is due.
    Better,
    /// A higher risk level: worth an update at once.
    Graver,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Start,
    Update,
    End,
}

impl Phase {
    pub fn kind(self) -> protocol::EventKind {
        match self {
            Phase::Start => protocol::EventKind::Raised,
            Phase::Update => protocol::EventKind::Update,
            Phase::End => protocol::EventKind::Ended,
        }
    }
}

/// An event an episode calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub phase: Phase,
    pub episode: Episode,
}

/// One rule's episode state for one camera (or one class of it).
#[derive(Debug, Default)]
pub struct Lifecycle {
    state: State,
}

#[derive(Debug)]
enum State {
    Idle {
        /// Since when the condition has held without a break.
        holding_since: Option<DateTime<Utc>>,
        ended_at: Option<DateTime<Utc>>,
    },
    Active {
        episode: Episode,
        reported_at: DateTime<Utc>,
        /// Since when the condition has been gone without a break.
        gone_since: Option<DateTime<Utc>>,
    },
}

impl Default for State {
    fn default() -> Self {
        State::Idle {
            holding_since: None,
            ended_at: None,
        }
    }
}

fn elapsed(since: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    now.signed_duration_since(since)
        .to_std()
        .unwrap_or_default()
}

impl Lifecycle {
    /// Whether an episode is going on: the rule then judges `holds` by its looser threshold
    /// to stay (hysteresis).
    pub fn is_active(&self) -> bool {
        matches!(self.state, State::Active { .. })
    }

    /// Takes one analysed frame: whether the condition holds in it and, while an episode is
    /// going on, what it brings.
    pub fn step(
        &mut self,
        timing: &Timing,
        holds: bool,
        news: News,
        now: DateTime<Utc>,
    ) -> Option<Report> {
        match &mut self.state {
            State::Idle {
                holding_since,
                ended_at,
            } => {
                if !holds {
                    *holding_since = None;
                    return None;
                }
                let since = *holding_since.get_or_insert(now);
                let cooling = ended_at.is_some_and(|t| elapsed(t, now) < timing.cooldown);
                if elapsed(since, now) < timing.dwell || cooling {
                    return None;
                }
                let episode = Episode {
                    id: Uuid::now_v7(),
                    seq: 0,
                    refresh_s: u32::try_from(timing.refresh.as_secs()).ok(),
                };
                self.state = State::Active {
                    episode,
                    reported_at: now,
                    gone_since: None,
                };
                Some(Report {
                    phase: Phase::Start,
                    episode,
                })
            }
            State::Active {
                episode,
                reported_at,
                gone_since,
            } => {
                if holds {
                    *gone_since = None;
                    let quiet = elapsed(*reported_at, now);
                    let due = quiet >= timing.update_every;
                    if news == News::Graver
                        || (news == News::Better && due)
                        || quiet >= timing.refresh
                    {
                        episode.seq += 1;
                        *reported_at = now;
                        return Some(Report {
                            phase: Phase::Update,
                            episode: *episode,
                        });
                    }
                    return None;
                }
                let since = *gone_since.get_or_insert(now);
                if elapsed(since, now) < timing.clear {
                    return None;
                }
                let end = Episode {
                    seq: episode.seq + 1,
                    ..*episode
                };
                self.state = State::Idle {
                    holding_since: None,
                    ended_at: Some(now),
                };
                Some(Report {
                    phase: Phase::End,
                    episode: end,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> Timing {
        Timing {
            dwell: Duration::from_secs(10),
            clear: Duration::from_secs(30),
            update_every: Duration::from_secs(60),
            refresh: Duration::from_secs(600),
            cooldown: Duration::from_secs(120),
        }
    }

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    /// Steps through `(second, holds, news)` and returns the reports by second.
    fn run(life: &mut Lifecycle, frames: &[(i64, bool, News)]) -> Vec<(i64, Phase, u32)> {
        frames
            .iter()
            .filter_map(|&(s, holds, news)| {
                let r = life.step(&timing(), holds, news, t(s))?;
                Some((s, r.phase, r.episode.seq))
            })
            .collect()
    }

    #[test]
    fn starts_after_the_dwell_and_ends_after_the_clear_time() {
        let mut life = Lifecycle::default();
        let frames: Vec<_> = (0..=100)
            .map(|s| (s, (0..50).contains(&s), News::Nothing))
            .collect();
        assert_eq!(
            run(&mut life, &frames),
            vec![(10, Phase::Start, 0), (80, Phase::End, 1)]
        );
        assert!(!life.is_active());
    }

    #[test]
    fn a_break_restarts_the_dwell_and_a_short_gap_does_not_end() {
        let mut life = Lifecycle::default();
        let holds = |s: i64| s != 5 && !(40..60).contains(&s);
        let frames: Vec<_> = (0..=80).map(|s| (s, holds(s), News::Nothing)).collect();
        assert_eq!(
            run(&mut life, &frames),
            vec![(16, Phase::Start, 0)],
            "dwell counted again from second 6; a 20 s gap is under the clear time"
        );
        assert!(life.is_active());
    }

    #[test]
    fn updates_come_with_news_when_due_or_graver_and_as_a_refresh() {
        let mut life = Lifecycle::default();
        let frames = [
            (0, true, News::Nothing),
            (10, true, News::Nothing),
            (20, true, News::Better),
            (69, true, News::Better),
            (70, true, News::Better),
            (71, true, News::Better),
            (75, true, News::Graver),
            (200, true, News::Nothing),
            (674, true, News::Nothing),
            (675, true, News::Nothing),
            (700, true, News::Nothing),
        ];
        assert_eq!(
            run(&mut life, &frames),
            vec![
                (10, Phase::Start, 0),
                (70, Phase::Update, 1),
                (75, Phase::Update, 2),
                (675, Phase::Update, 3),
            ],
            "news when due, graver at once, and a refresh after 600 s without a report"
        );
    }

    #[test]
    fn no_new_episode_during_the_cooldown() {
        let mut life = Lifecycle::default();
        let mut frames = vec![(0, true, News::Nothing), (10, true, News::Nothing)];
        frames.extend([(20, false, News::Nothing), (50, false, News::Nothing)]);
        // Back at once after the end: it holds from 51 on, but the cooldown runs to 170.
        frames.extend((51..=200).map(|s| (s, true, News::Nothing)));
        let reports = run(&mut life, &frames);
        assert_eq!(
            reports,
            vec![
                (10, Phase::Start, 0),
                (50, Phase::End, 1),
                (170, Phase::Start, 0)
            ]
        );
    }

    #[test]
    fn every_episode_has_its_own_id_and_its_events_share_it() {
        let mut life = Lifecycle::default();
        let timing = Timing {
            dwell: Duration::ZERO,
            clear: Duration::ZERO,
            cooldown: Duration::ZERO,
            ..timing()
        };
        let start = life.step(&timing, true, News::Nothing, t(0)).unwrap();
        let update = life.step(&timing, true, News::Graver, t(1)).unwrap();
        let end = life.step(&timing, false, News::Nothing, t(2)).unwrap();
        let next = life.step(&timing, true, News::Nothing, t(3)).unwrap();
        assert_eq!(start.episode.id, update.episode.id);
        assert_eq!(start.episode.id, end.episode.id);
        assert_eq!((update.episode.seq, end.episode.seq), (1, 2));
        assert_ne!(next.episode.id, start.episode.id);
        assert_eq!(end.episode.refresh_s, Some(600), "the rule's refresh time");
        assert_eq!((next.phase, next.episode.seq), (Phase::Start, 0));
    }
}
