//! The run's clock: nanoseconds since the run started, shared by producers and
//! consumers in this process, so a consumer can subtract a payload's send time from
//! its own "now" without trusting wall clocks.

use std::time::{Duration, Instant};

/// A monotonic clock started once per run. Cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    /// Starts the clock now.
    pub fn start() -> Clock {
        Clock {
            start: Instant::now(),
        }
    }

    /// Nanoseconds since the start (saturating; 584 years fit).
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The instant `ns` nanoseconds after the start.
    pub fn instant_at(&self, ns: u64) -> Instant {
        self.start + Duration::from_nanos(ns)
    }
}
