//! Log configuration, limits and the clock the log reads time from.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// Default size at which a segment is sealed and a new one started.
pub const DEFAULT_SEGMENT_BYTES: u64 = 1024 * 1024 * 1024;
/// Largest allowed segment: positions inside a segment are stored as `u32`.
pub const MAX_SEGMENT_BYTES: u64 = u32::MAX as u64;
/// Smallest allowed segment (a header and one small batch).
pub const MIN_SEGMENT_BYTES: u64 = 4096;
/// Default distance in bytes between two sparse index entries.
pub const DEFAULT_INDEX_INTERVAL_BYTES: u32 = 4096;
/// Default for the largest `fallocate` step that reserves disk space ahead of the writer.
pub const DEFAULT_PREALLOCATE_BYTES: u64 = 16 * 1024 * 1024;
/// When appended data is forced to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Every append becomes durable only after an `fdatasync` that covers it;
    /// concurrent appends share one sync (group commit).
    Always,
    /// A background thread syncs at most every this many milliseconds.
    IntervalMs(u64),
    /// Never sync explicitly; the OS writes back when it likes. Only
    /// [`Log::sync`](crate::Log::sync) and a clean close advance the durable watermark.
    Os,
}

impl Durability {
    /// Parses `always`, `os` or `interval:<ms>` (also `interval(<ms>)`).
    pub fn parse(text: &str) -> Result<Durability> {
        let text = text.trim();
        match text {
            "always" => return Ok(Durability::Always),
            "os" => return Ok(Durability::Os),
            _ => {}
        }
        let ms = text
            .strip_prefix("interval:")
            .or_else(|| {
                text.strip_prefix("interval(")
                    .and_then(|t| t.strip_suffix(')'))
            })
            .and_then(|ms| {
                ms.trim()
                    .strip_suffix("ms")
                    .unwrap_or(ms.trim())
                    .parse::<u64>()
                    .ok()
            });
        match ms {
            Some(ms) if ms > 0 => Ok(Durability::IntervalMs(ms)),
            _ => Err(Error::Config(format!(
                "durability {text:?} is not one of: always, os, interval:<ms> (ms > 0)"
            ))),
        }
    }
}

/// Configuration of one log. Build with `LogConfig::default()` and adjust fields.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Seal the active segment once it holds this many bytes.
    pub segment_bytes: u64,
    /// Seal the active segment once it is this old (ms), if it holds any batch.
    pub segment_ms: Option<u64>,
    /// Bytes of batches between two sparse index entries.
    pub index_interval_bytes: u32,
    /// Largest step of disk space reserved ahead of the writer; steps start at 64 KiB
    /// and double up to this, so a quiet segment reserves little.
    pub preallocate_bytes: u64,
    /// Largest batch accepted by `append`.
    pub max_batch_bytes: usize,
    /// Delete the oldest sealed segments while the log is larger than this.
    pub retention_bytes: Option<u64>,
    /// Delete sealed segments whose newest record is older than this (ms).
    pub retention_ms: Option<u64>,
    /// When data is forced to stable storage.
    pub durability: Durability,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            segment_ms: None,
            index_interval_bytes: DEFAULT_INDEX_INTERVAL_BYTES,
            preallocate_bytes: DEFAULT_PREALLOCATE_BYTES,
            max_batch_bytes: protocol::batch::MAX_BATCH_BYTES,
            retention_bytes: None,
            retention_ms: None,
            durability: Durability::Always,
        }
    }
}

impl LogConfig {
    /// Checks the limits; every `Log::open` calls this.
    pub fn validate(&self) -> Result<()> {
        if !(MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES).contains(&self.segment_bytes) {
            return Err(Error::Config(format!(
                "segment_bytes {} must be within {MIN_SEGMENT_BYTES}..={MAX_SEGMENT_BYTES}",
                self.segment_bytes
            )));
        }
        if self.index_interval_bytes == 0 {
            return Err(Error::Config(
                "index_interval_bytes must be at least 1".into(),
            ));
        }
        if self.preallocate_bytes == 0 {
            return Err(Error::Config("preallocate_bytes must be at least 1".into()));
        }
        let max = protocol::batch::MAX_BATCH_BYTES;
        if self.max_batch_bytes < protocol::batch::BATCH_HEADER_BYTES || self.max_batch_bytes > max
        {
            return Err(Error::Config(format!(
                "max_batch_bytes must be within 40..={max}"
            )));
        }
        if self.segment_ms == Some(0) {
            return Err(Error::Config("segment_ms must be positive".into()));
        }
        if let Durability::IntervalMs(0) = self.durability {
            return Err(Error::Config("durability interval must be positive".into()));
        }
        Ok(())
    }
}

/// Where time comes from, for the log (segment age, retention) and for the broker
/// around it (its timers). It tells two times: wall-clock time ([`wall_ms`]), what
/// record timestamps and users see, which can jump when the system clock is stepped;
/// and monotonic time ([`monotonic_ms`]), which never goes back and is what every
/// duration is measured on. Tests inject [`ManualClock`]; everything else uses
/// [`SystemClock`].
///
/// [`wall_ms`]: Clock::wall_ms
/// [`monotonic_ms`]: Clock::monotonic_ms
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Milliseconds since the Unix epoch, by the wall clock.
    fn wall_ms(&self) -> i64;
    /// Milliseconds since an arbitrary start, by a clock that never goes back.
    fn monotonic_ms(&self) -> u64;
}

/// The system's clocks. Monotonic time counts from the first reading in the process.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl SystemClock {
    /// The system's clocks.
    pub fn new() -> SystemClock {
        SystemClock
    }
}

impl Clock for SystemClock {
    fn wall_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }

    fn monotonic_ms(&self) -> u64 {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_millis() as u64
    }
}

/// A clock that moves only when told to, for tests.
#[derive(Debug, Default)]
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

    /// Sets the wall clock to `wall_ms` (a step); monotonic time does not move.
    pub fn set(&self, wall_ms: i64) {
        self.wall_ms.store(wall_ms, Ordering::SeqCst);
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
        clock.set(7);
        assert_eq!((clock.wall_ms(), clock.monotonic_ms()), (7, 250));
    }

    #[test]
    fn the_system_clock_reads_sensible_times() {
        let clock = SystemClock::new();
        assert!(clock.wall_ms() > 1_600_000_000_000, "after 2020");
        let first = clock.monotonic_ms();
        assert!(clock.monotonic_ms() >= first);
    }

    #[test]
    fn durability_parses() {
        assert_eq!(Durability::parse("always").unwrap(), Durability::Always);
        assert_eq!(Durability::parse("os").unwrap(), Durability::Os);
        assert_eq!(
            Durability::parse("interval:50").unwrap(),
            Durability::IntervalMs(50)
        );
        assert_eq!(
            Durability::parse("interval(20ms)").unwrap(),
            Durability::IntervalMs(20)
        );
        assert!(Durability::parse("interval:0").is_err());
        assert!(Durability::parse("sometimes").is_err());
    }

    #[test]
    fn limits_are_checked() {
        let mut config = LogConfig::default();
        config.validate().unwrap();
        config.segment_bytes = 10;
        assert!(config.validate().is_err());
    }
}
