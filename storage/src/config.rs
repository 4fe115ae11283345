//! Log configuration, limits and the clock the log reads time from.

use std::sync::atomic::{AtomicI64, Ordering};
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
/// Default size of each `fallocate` step that reserves disk space ahead of the writer.
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
    /// Disk space reserved ahead of the writer in each step.
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

/// Where the log reads the time from (segment age, retention). Tests inject
/// [`ManualClock`]; everything else uses [`SystemClock`].
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock showing `now_ms`.
    pub fn new(now_ms: i64) -> ManualClock {
        ManualClock(AtomicI64::new(now_ms))
    }

    /// Moves the clock to `now_ms`.
    pub fn set(&self, now_ms: i64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }

    /// Moves the clock forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
