//! Rate-limited warnings: an unreachable collector must cost a few log lines, not
//! one per batch. Pure: the caller passes the time.

use std::time::{Duration, Instant};

/// Lets a warning through at most once per interval, counting the ones it holds back.
#[derive(Debug)]
pub struct WarnLimit {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl WarnLimit {
    /// At most one warning per `interval`.
    pub fn new(interval: Duration) -> WarnLimit {
        WarnLimit {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// Whether a warning at `now` may be logged: `Some(n)`, with `n` the warnings held
    /// back since the last one that was, or `None` (and it is counted).
    pub fn admit(&mut self, now: Instant) -> Option<u64> {
        let due = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= self.interval);
        if !due {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_per_interval_with_the_count_of_those_held_back() {
        let start = Instant::now();
        let mut limit = WarnLimit::new(Duration::from_secs(30));
        assert_eq!(limit.admit(start), Some(0), "the first one is logged");
        for s in 1..30 {
            assert_eq!(limit.admit(start + Duration::from_secs(s)), None);
        }
        assert_eq!(limit.admit(start + Duration::from_secs(30)), Some(29));
        assert_eq!(limit.admit(start + Duration::from_secs(31)), None);
        assert_eq!(limit.admit(start + Duration::from_secs(90)), Some(1));
    }
}
