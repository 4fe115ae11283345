//! How old a segment is, for retention and `segment_ms`: by monotonic time while the
//! log is open, so a step of the wall clock neither deletes data early nor pins it.
//!
//! A segment's age is the time since its last append (for the active segment, since
//! its creation, which is what `segment_ms` rolls by). What happened in this process is
//! timed on the monotonic clock. What happened before the log opened is known only by
//! wall-clock times the broker wrote (a segment's creation time in its header; a sealed
//! segment's last append is the next segment's creation), so those are converted once,
//! against the readings taken at open: time before the open counts as the wall clock
//! says (a step while the broker was down cannot be told apart from time passing), and
//! never as negative. Record timestamps, which producers choose, play no part: a
//! producer stamping records in 1970 or 2100 neither gets data deleted early nor pins
//! it forever.

use std::collections::BTreeMap;

use crate::config::Clock;

/// Monotonic times of segment events in this process, and the readings at open.
#[derive(Debug)]
pub(crate) struct Ages {
    opened_wall_ms: i64,
    opened_mono_ms: u64,
    /// Segments created in this process, by base offset: monotonic time of creation.
    created: BTreeMap<u64, u64>,
    /// Segments sealed in this process, by base offset: monotonic time of the seal.
    sealed: BTreeMap<u64, u64>,
}

impl Ages {
    /// Readings taken now, at open.
    pub(crate) fn new(clock: &dyn Clock) -> Ages {
        Ages {
            opened_wall_ms: clock.wall_ms(),
            opened_mono_ms: clock.monotonic_ms(),
            created: BTreeMap::new(),
            sealed: BTreeMap::new(),
        }
    }

    /// The segment at `base` was created now.
    pub(crate) fn created(&mut self, base: u64, clock: &dyn Clock) {
        self.sealed.remove(&base);
        self.created.insert(base, clock.monotonic_ms());
    }

    /// The segment at `base` was sealed now: its last append is behind it.
    pub(crate) fn sealed(&mut self, base: u64, clock: &dyn Clock) {
        self.sealed.insert(base, clock.monotonic_ms());
    }

    /// A segment went away (retention, truncation, a failed roll).
    pub(crate) fn forget(&mut self, base: u64) {
        self.created.remove(&base);
        self.sealed.remove(&base);
    }

    /// Milliseconds since an event: at monotonic time `event_mono` if it happened in this
    /// process, else at wall-clock time `event_wall` before the open.
    fn since(&self, event_mono: Option<u64>, event_wall: i64, clock: &dyn Clock) -> u64 {
        let now = clock.monotonic_ms();
        match event_mono {
            Some(at) => now.saturating_sub(at),
            None => {
                let before_open = self.opened_wall_ms.saturating_sub(event_wall).max(0) as u64;
                before_open.saturating_add(now.saturating_sub(self.opened_mono_ms))
            }
        }
    }

    /// Age of the active segment at `base`, created (per its header) at `created_wall`.
    pub(crate) fn since_created(&self, base: u64, created_wall: i64, clock: &dyn Clock) -> u64 {
        self.since(self.created.get(&base).copied(), created_wall, clock)
    }

    /// Time since the sealed segment at `base` took its last append; `next_created_wall`
    /// is the creation time of the segment after it, which began when this one ended.
    pub(crate) fn since_last_append(
        &self,
        base: u64,
        next_base: u64,
        next_created_wall: i64,
        clock: &dyn Clock,
    ) -> u64 {
        let in_process = self
            .sealed
            .get(&base)
            .or_else(|| self.created.get(&next_base))
            .copied();
        self.since(in_process, next_created_wall, clock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ManualClock;

    #[test]
    fn events_in_this_process_age_by_monotonic_time_only() {
        let clock = ManualClock::new(1_000_000);
        let mut ages = Ages::new(&clock);
        ages.created(0, &clock);
        clock.advance(5_000);
        ages.sealed(0, &clock);
        ages.created(10, &clock);
        clock.advance(1_000);
        clock.step_wall(7_200_000);
        assert_eq!(ages.since_last_append(0, 10, 1_005_000, &clock), 1_000);
        assert_eq!(ages.since_created(10, 1_005_000, &clock), 1_000);
        clock.step_wall(-14_400_000);
        assert_eq!(ages.since_last_append(0, 10, 1_005_000, &clock), 1_000);
    }

    #[test]
    fn events_before_the_open_count_by_the_wall_clock_then_by_monotonic_time() {
        let clock = ManualClock::new(10_000_000);
        let ages = Ages::new(&clock);
        // Sealed 60 s before the open (the next segment was created then).
        assert_eq!(ages.since_last_append(0, 10, 9_940_000, &clock), 60_000);
        clock.advance(2_000);
        clock.step_wall(3_600_000);
        assert_eq!(ages.since_last_append(0, 10, 9_940_000, &clock), 62_000);
        // A creation time in the future (a step back while the broker was down) is
        // no time at all, not a negative age.
        assert_eq!(ages.since_created(20, 99_000_000, &clock), 2_000);
    }
}
