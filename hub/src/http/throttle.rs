//! Sign-in throttling: after a few failed attempts for one key (a user name, a client
//! address) within a window, further attempts for that key are refused until the window
//! ends, so passwords cannot be guessed at speed. Pure: the caller passes the time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Throttle {
    /// Failures allowed per key in one window.
    max_failures: u32,
    window: Duration,
    /// Failures so far and when each key's window started.
    failures: HashMap<String, (u32, Instant)>,
}

impl Throttle {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            failures: HashMap::new(),
        }
    }

    /// `Err(wait)` when `key` has used up its failures and must wait before trying again.
    pub fn check(&mut self, key: &str, now: Instant) -> Result<(), Duration> {
        match self.failures.get(key) {
            Some(&(count, since)) if now.duration_since(since) < self.window => {
                if count >= self.max_failures {
                    Err(self.window - now.duration_since(since))
                } else {
                    Ok(())
                }
            }
            Some(_) => {
                self.failures.remove(key);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Counts a failed attempt for `key`.
    pub fn fail(&mut self, key: &str, now: Instant) {
        // Old windows are swept while failing, so a flood of names cannot grow the map
        // without bound for longer than one window.
        if self.failures.len() >= 10_000 {
            let window = self.window;
            self.failures
                .retain(|_, (_, since)| now.duration_since(*since) < window);
        }
        let entry = self.failures.entry(key.to_owned()).or_insert((0, now));
        if now.duration_since(entry.1) >= self.window {
            *entry = (0, now);
        }
        entry.0 += 1;
    }

    /// Forgets `key`'s failures after a successful sign-in.
    pub fn succeed(&mut self, key: &str) {
        self.failures.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(900);

    #[test]
    fn refuses_after_the_allowed_failures_until_the_window_ends() {
        let mut t = Throttle::new(3, WINDOW);
        let start = Instant::now();
        for i in 0..3 {
            assert_eq!(t.check("alice", start), Ok(()), "attempt {i}");
            t.fail("alice", start);
        }
        let later = start + Duration::from_secs(100);
        assert_eq!(
            t.check("alice", later),
            Err(WINDOW - Duration::from_secs(100))
        );
        assert_eq!(t.check("bob", later), Ok(()), "other keys are not affected");
        assert_eq!(t.check("alice", start + WINDOW), Ok(()));
        t.fail("alice", start + WINDOW);
        assert_eq!(t.check("alice", start + WINDOW), Ok(()), "a new window");
    }

    #[test]
    fn success_clears_the_failures() {
        let mut t = Throttle::new(2, WINDOW);
        let now = Instant::now();
        t.fail("alice", now);
        t.succeed("alice");
        t.fail("alice", now);
        assert_eq!(t.check("alice", now), Ok(()));
        t.fail("alice", now);
        assert!(t.check("alice", now).is_err());
    }

    #[test]
    fn the_map_is_swept_of_old_windows() {
        let mut t = Throttle::new(2, WINDOW);
        let start = Instant::now();
        for i in 0..10_000 {
            t.fail(&format!("user{i}"), start);
        }
        t.fail("late", start + WINDOW);
        assert_eq!(t.failures.len(), 1);
    }
}
