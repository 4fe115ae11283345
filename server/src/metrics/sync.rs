//! Group commits as the storage layer reports them ([`storage::SyncObserver`]): how
//! long each `fdatasync` round took and how much it covered. Told once per round, on
//! the syncer thread, never per append.

use storage::{SyncObserver, SyncRound};

use super::histogram::AtomicHistogram;

/// `fdatasync` round durations, in nanoseconds: 50 µs to 10 s.
static FSYNC_BOUNDS_NS: [u64; 16] = [
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    10_000_000_000,
];
/// Records made durable by one round.
static RECORDS_BOUNDS: [u64; 14] = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 100_000,
];
/// Bytes made durable by one round: 1 KiB to 64 MiB.
static BYTES_BOUNDS: [u64; 9] = [
    1 << 10,
    4 << 10,
    16 << 10,
    64 << 10,
    256 << 10,
    1 << 20,
    4 << 20,
    16 << 20,
    64 << 20,
];

/// The group-commit histograms, shared by every log of the broker.
#[derive(Debug)]
pub struct Syncs {
    /// How long each round's syncs took.
    pub duration: AtomicHistogram,
    /// Records per round.
    pub records: AtomicHistogram,
    /// Bytes per round.
    pub bytes: AtomicHistogram,
}

impl Default for Syncs {
    fn default() -> Self {
        Syncs {
            duration: AtomicHistogram::new(&FSYNC_BOUNDS_NS, 1e-9),
            records: AtomicHistogram::new(&RECORDS_BOUNDS, 1.0),
            bytes: AtomicHistogram::new(&BYTES_BOUNDS, 1.0),
        }
    }
}

impl SyncObserver for Syncs {
    fn synced(&self, round: SyncRound) {
        let ns = u64::try_from(round.duration.as_nanos()).unwrap_or(u64::MAX);
        self.duration.observe(ns);
        self.records.observe(round.records);
        self.bytes.observe(round.bytes);
    }
}
