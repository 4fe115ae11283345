//! The broker's clock, injected wherever time decides something (group sessions, queue
//! deadlines and retries, service TTLs), so that tests can move time by hand instead
//! of sleeping.
//!
//! It tells two times. Wall-clock time ([`Clock::wall_ms`]) is what record timestamps
//! and users see; it can jump when the system clock is stepped. Monotonic time
//! ([`Clock::monotonic_ms`]) never goes back and is what durations are measured on.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A source of time.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Milliseconds since the Unix epoch, by the wall clock.
    fn wall_ms(&self) -> i64;
    /// Milliseconds since an arbitrary start, by a clock that never goes back.
    fn monotonic_ms(&self) -> u64;
}

/// The system's clocks.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    start: Instant,
}

impl SystemClock {
    /// A clock whose monotonic time starts now.
    pub fn new() -> SystemClock {
        SystemClock {
            start: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn wall_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }

    fn monotonic_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
}

/// A clock that moves only when told to, for tests.
#[derive(Debug)]
pub struct ManualClock {
    wall_ms: AtomicI64,
    monotonic_ms: AtomicU64,
}

impl ManualClock {
    /// A clock showing `wall_ms`, with monotonic time at 0.
    pub fn new(wall_ms: i64) -> ManualClock {
        ManualClock {
            wall_ms: AtomicI64::new(wall_ms),
            monotonic_ms: AtomicU64::new(0),
        }
    }

    /// Lets `ms` pass: both times move forward.
    pub fn advance(&self, ms: u64) {
        self.wall_ms.fetch_add(ms as i64, Ordering::SeqCst);
        self.monotonic_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Steps only the wall clock by `delta_ms` (either way), as an NTP step or an
    /// operator would; monotonic time does not move.
    pub fn step_wall(&self, delta_ms: i64) {
        self.wall_ms.fetch_add(delta_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn wall_ms(&self) -> i64 {
        self.wall_ms.load(Ordering::SeqCst)
    }

    fn monotonic_ms(&self) -> u64 {
        self.monotonic_ms.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(1_000);
        assert_eq!((clock.wall_ms(), clock.monotonic_ms()), (1_000, 0));
        clock.advance(250);
        assert_eq!((clock.wall_ms(), clock.monotonic_ms()), (1_250, 250));
        clock.step_wall(-5_000);
        assert_eq!((clock.wall_ms(), clock.monotonic_ms()), (-3_750, 250));
    }

    #[test]
    fn the_system_clock_reads_sensible_times() {
        let clock = SystemClock::new();
        assert!(clock.wall_ms() > 1_600_000_000_000, "after 2020");
        let first = clock.monotonic_ms();
        assert!(clock.monotonic_ms() >= first);
    }
}
