//! [`Failures`]: failed authentications per remote address over the last minute, so
//! that one address cannot guess passwords at the rate the broker can answer.
//!
//! Pure: the caller passes the time (monotonic milliseconds). Memory is bounded by
//! [`MAX_TRACKED_ADDRESSES`]; when full, the address whose window started longest ago
//! is forgotten first.

use std::collections::HashMap;
use std::net::IpAddr;

/// Addresses tracked at once.
pub const MAX_TRACKED_ADDRESSES: usize = 10_000;
/// The window failures are counted over, milliseconds.
pub const WINDOW_MS: u64 = 60_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    started_ms: u64,
    failures: u32,
}

/// Failures per address.
#[derive(Debug)]
pub struct Failures {
    max_per_window: u32,
    windows: HashMap<IpAddr, Window>,
}

impl Failures {
    /// Allows `max_per_window` failures per address per minute.
    pub fn new(max_per_window: u32) -> Failures {
        Failures {
            max_per_window,
            windows: HashMap::new(),
        }
    }

    /// Whether `address` is over its allowance at `now_ms`: its attempts are then
    /// refused without being checked.
    pub fn blocked(&self, address: IpAddr, now_ms: u64) -> bool {
        self.windows.get(&address).is_some_and(|w| {
            now_ms.saturating_sub(w.started_ms) < WINDOW_MS && w.failures >= self.max_per_window
        })
    }

    /// Counts one failure of `address` at `now_ms`.
    pub fn record(&mut self, address: IpAddr, now_ms: u64) {
        if !self.windows.contains_key(&address) && self.windows.len() >= MAX_TRACKED_ADDRESSES {
            self.forget_expired(now_ms);
            if self.windows.len() >= MAX_TRACKED_ADDRESSES {
                if let Some(oldest) = self
                    .windows
                    .iter()
                    .min_by_key(|(_, w)| w.started_ms)
                    .map(|(a, _)| *a)
                {
                    self.windows.remove(&oldest);
                }
            }
        }
        let window = self.windows.entry(address).or_insert(Window {
            started_ms: now_ms,
            failures: 0,
        });
        if now_ms.saturating_sub(window.started_ms) >= WINDOW_MS {
            *window = Window {
                started_ms: now_ms,
                failures: 0,
            };
        }
        window.failures = window.failures.saturating_add(1);
        debug_assert!(self.windows.len() <= MAX_TRACKED_ADDRESSES);
    }

    fn forget_expired(&mut self, now_ms: u64) {
        self.windows
            .retain(|_, w| now_ms.saturating_sub(w.started_ms) < WINDOW_MS);
    }

    /// Addresses tracked (tests).
    pub fn tracked(&self) -> usize {
        self.windows.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(n.to_be_bytes())
    }

    #[test]
    fn an_address_is_blocked_after_its_allowance_until_the_window_ends() {
        let mut failures = Failures::new(3);
        for _ in 0..3 {
            assert!(!failures.blocked(ip(1), 1_000));
            failures.record(ip(1), 1_000);
        }
        assert!(failures.blocked(ip(1), 1_000));
        assert!(!failures.blocked(ip(2), 1_000), "other addresses are not");
        assert!(failures.blocked(ip(1), 1_000 + WINDOW_MS - 1));
        assert!(!failures.blocked(ip(1), 1_000 + WINDOW_MS));
        failures.record(ip(1), 1_000 + WINDOW_MS);
        assert!(!failures.blocked(ip(1), 1_000 + WINDOW_MS), "a new window");
    }

    #[test]
    fn memory_is_bounded_by_the_tracked_addresses() {
        let mut failures = Failures::new(1);
        for n in 0..(MAX_TRACKED_ADDRESSES as u32 + 50) {
            failures.record(ip(n), u64::from(n));
        }
        assert_eq!(failures.tracked(), MAX_TRACKED_ADDRESSES);
        // The newest are kept.
        assert!(failures.blocked(ip(MAX_TRACKED_ADDRESSES as u32 + 49), 20_000));
    }
}
