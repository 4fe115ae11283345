//! The reconnect backoff schedule: a pure function of the attempt number, so that it
//! is tested without sockets or clocks.

use std::time::Duration;

/// Exponential backoff: `initial`, `2 * initial`, `4 * initial`, ... capped at `max`.
///
/// There is deliberately no jitter: a client has one connection, so many clients
/// retrying in lock step against one broker is not the failure this guards against,
/// and a deterministic schedule is easier to test and to reason about in logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the second attempt (the first is immediate).
    pub initial: Duration,
    /// Largest delay between two attempts.
    pub max: Duration,
    /// Attempts in total, the first included; at least 1.
    pub max_attempts: u32,
}

impl Backoff {
    /// The delay to wait *before* attempt `attempt` (0-based), or `None` when the
    /// attempts are used up. Attempt 0 has no delay.
    pub fn delay_before(&self, attempt: u32) -> Option<Duration> {
        if attempt >= self.max_attempts.max(1) {
            return None;
        }
        if attempt == 0 {
            return Some(Duration::ZERO);
        }
        // 2^(attempt-1), saturating: past 2^31 the cap has long been reached.
        let factor = 1u32.checked_shl(attempt - 1).unwrap_or(u32::MAX);
        Some(self.initial.saturating_mul(factor).min(self.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn doubles_from_initial_up_to_the_cap() {
        let b = Backoff {
            initial: ms(50),
            max: ms(300),
            max_attempts: 6,
        };
        let delays: Vec<_> = (0..8).map(|a| b.delay_before(a)).collect();
        assert_eq!(
            delays,
            vec![
                Some(ms(0)),
                Some(ms(50)),
                Some(ms(100)),
                Some(ms(200)),
                Some(ms(300)),
                Some(ms(300)),
                None,
                None
            ]
        );
    }

    #[test]
    fn huge_attempt_numbers_saturate_instead_of_overflowing() {
        let b = Backoff {
            initial: ms(1),
            max: Duration::from_secs(5),
            max_attempts: u32::MAX,
        };
        assert_eq!(b.delay_before(40), Some(Duration::from_secs(5)));
        assert_eq!(b.delay_before(u32::MAX - 1), Some(Duration::from_secs(5)));
    }

    #[test]
    fn at_least_one_attempt() {
        let b = Backoff {
            initial: ms(1),
            max: ms(1),
            max_attempts: 0,
        };
        assert_eq!(b.delay_before(0), Some(Duration::ZERO));
        assert_eq!(b.delay_before(1), None);
    }
}
