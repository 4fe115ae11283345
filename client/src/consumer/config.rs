//! [`ConsumerConfig`] and [`StartFrom`]: a consumer's settings and their defaults.
//!
//! Plain data with builder-style setters, apart from the consumer so that what can
//! be tuned is read in one place; the defaults of times and sizes are named constants
//! with their units in their names. The one coupling between two settings lives in a setter: a session
//! timeout pulls the heartbeat interval down to a third of it, so that setting only
//! the timeout never leaves a member heartbeating too rarely to stay in the group.

use std::time::Duration;

use protocol::ops::group::GroupStart;

use crate::error::ClientError;
use crate::fetcher::{DEFAULT_FETCH_MAX_BYTES, DEFAULT_FETCH_MAX_WAIT_MS};

/// Default for [`ConsumerConfig::session_timeout`].
pub const DEFAULT_SESSION_TIMEOUT_MS: u64 = 10_000;
/// Default for [`ConsumerConfig::heartbeat_interval`].
pub const DEFAULT_HEARTBEAT_INTERVAL_MS: u64 = 1_000;
/// Default for [`ConsumerConfig::auto_commit`].
pub const DEFAULT_AUTO_COMMIT_INTERVAL_MS: u64 = 5_000;

/// Where a consumer starts on partitions for which its group has no committed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// The oldest retained record.
    Earliest,
    /// The end of the partition when the group is created: only new records.
    Latest,
    /// This offset (clamped to the records the partition still has).
    Offset(u64),
    /// The first record whose timestamp is at or after this time (milliseconds since
    /// the epoch), or the end if every record is older: looked up per partition with
    /// [`Client::offsets_for_time`](crate::Client::offsets_for_time) when the
    /// partition is assigned (protocol version 2).
    Timestamp(i64),
}

/// Settings of a [`Consumer`](crate::Consumer).
///
/// ```
/// use std::time::Duration;
/// use client::{ConsumerConfig, StartFrom};
///
/// let config = ConsumerConfig::default()
///     .start(StartFrom::Latest)
///     .auto_commit(None)
///     .session_timeout(Duration::from_secs(3));
/// assert_eq!(config.heartbeat_interval, Duration::from_secs(1));
/// ```
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Where to start on partitions without a committed offset.
    pub start: StartFrom,
    /// The broker drops the member after this long without a heartbeat
    /// (the broker accepts 1 s to 300 s by default).
    pub session_timeout: Duration,
    /// How often the background task heartbeats; well below the session timeout, and
    /// not zero ([`Client::consumer`](crate::Client::consumer) refuses that with
    /// [`ClientError::InvalidArgument`]).
    pub heartbeat_interval: Duration,
    /// Commit the positions of returned records at this interval (checked when
    /// [`Consumer::next`](crate::Consumer::next) is called), and on
    /// [`Consumer::close`](crate::Consumer::close). `None`: only explicit
    /// [`Consumer::commit`](crate::Consumer::commit) calls commit, apart from the
    /// commit of partitions a rebalance takes away, which the consumer always makes
    /// before giving them up (the position after the last record returned).
    pub auto_commit: Option<Duration>,
    /// Largest answer asked for per fetch, per partition.
    pub fetch_max_bytes: u32,
    /// How long the broker may hold a fetch on a partition that has no new data.
    pub fetch_max_wait: Duration,
}

impl Default for ConsumerConfig {
    fn default() -> ConsumerConfig {
        ConsumerConfig {
            start: StartFrom::Earliest,
            session_timeout: Duration::from_millis(DEFAULT_SESSION_TIMEOUT_MS),
            heartbeat_interval: Duration::from_millis(DEFAULT_HEARTBEAT_INTERVAL_MS),
            auto_commit: Some(Duration::from_millis(DEFAULT_AUTO_COMMIT_INTERVAL_MS)),
            fetch_max_bytes: DEFAULT_FETCH_MAX_BYTES,
            fetch_max_wait: Duration::from_millis(DEFAULT_FETCH_MAX_WAIT_MS),
        }
    }
}

impl ConsumerConfig {
    /// Sets [`start`](Self::start).
    pub fn start(mut self, start: StartFrom) -> ConsumerConfig {
        self.start = start;
        self
    }

    /// Sets [`session_timeout`](Self::session_timeout), and the heartbeat interval to
    /// a third of it if that is shorter than the current interval.
    pub fn session_timeout(mut self, timeout: Duration) -> ConsumerConfig {
        self.session_timeout = timeout;
        self.heartbeat_interval = self.heartbeat_interval.min(timeout / 3);
        self
    }

    /// Sets [`heartbeat_interval`](Self::heartbeat_interval).
    pub fn heartbeat_interval(mut self, interval: Duration) -> ConsumerConfig {
        self.heartbeat_interval = interval;
        self
    }

    /// Sets [`auto_commit`](Self::auto_commit).
    pub fn auto_commit(mut self, interval: Option<Duration>) -> ConsumerConfig {
        self.auto_commit = interval;
        self
    }

    /// Sets [`fetch_max_bytes`](Self::fetch_max_bytes).
    pub fn fetch_max_bytes(mut self, bytes: u32) -> ConsumerConfig {
        self.fetch_max_bytes = bytes;
        self
    }

    /// Sets [`fetch_max_wait`](Self::fetch_max_wait).
    pub fn fetch_max_wait(mut self, wait: Duration) -> ConsumerConfig {
        self.fetch_max_wait = wait;
        self
    }

    /// Refuses settings the consumer cannot run with.
    pub(super) fn validate(&self) -> Result<(), ClientError> {
        if self.heartbeat_interval.is_zero() {
            return Err(ClientError::InvalidArgument(format!(
                "the consumer's heartbeat interval is zero (session timeout {:?}); \
                 give it a positive interval well below the session timeout",
                self.session_timeout
            )));
        }
        Ok(())
    }

    pub(super) fn group_start(&self) -> GroupStart {
        match self.start {
            StartFrom::Latest => GroupStart::Latest,
            StartFrom::Earliest | StartFrom::Offset(_) | StartFrom::Timestamp(_) => {
                GroupStart::Earliest
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_timeout_pulls_the_heartbeat_interval_down() {
        let config = ConsumerConfig::default().session_timeout(Duration::from_millis(1500));
        assert_eq!(config.heartbeat_interval, Duration::from_millis(500));
        let config = ConsumerConfig::default().session_timeout(Duration::from_secs(60));
        assert_eq!(config.heartbeat_interval, Duration::from_secs(1));
    }

    #[test]
    fn a_zero_heartbeat_interval_is_refused() {
        assert!(ConsumerConfig::default().validate().is_ok());
        for config in [
            ConsumerConfig::default().heartbeat_interval(Duration::ZERO),
            ConsumerConfig::default().session_timeout(Duration::ZERO),
        ] {
            let error = config.validate().unwrap_err();
            assert!(matches!(error, ClientError::InvalidArgument(_)), "{error}");
            assert!(
                error.to_string().contains("heartbeat interval is zero"),
                "{error}"
            );
        }
    }
}
