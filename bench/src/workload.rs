//! Workload definitions: what to run, independent of which broker runs it.
//!
//! Everything here is plain data and arithmetic (validation, how messages and rate
//! are split between producers, which partitions a consumer reads), so it is tested
//! without I/O and shared word for word by every driver.

use std::fmt;
use std::time::Duration;

use thiserror::Error;

use crate::payload::PAYLOAD_HEADER_BYTES;

/// Largest message size accepted: a batch of one must fit the protocol's 16 MiB.
pub const MAX_MESSAGE_SIZE_BYTES: usize = 8 * 1024 * 1024;
/// Most records in one produce batch.
pub const MAX_BATCH_RECORDS: usize = 100_000;
/// Most producers, consumers per group, groups, topics or partitions.
pub const MAX_CLIENTS: u32 = 1024;
/// Most produce batches awaiting acknowledgement, per producer.
pub const MAX_IN_FLIGHT_BATCHES: usize = 1024;

/// Which workload to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    /// Producers only: produce throughput and acknowledgement latency.
    Produce,
    /// Pre-fill the topics (not measured), then consumers read everything back.
    Consume,
    /// Producers and consumers at once: end-to-end latency (a send time in each payload).
    Pubsub,
    /// Queue delivery with per-message acknowledgements.
    Queue,
}

/// When the broker makes appended messages durable (our broker's topic `durability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fdatasync` before a message counts as durable (group commit).
    Always,
    /// Sync at most every this many milliseconds.
    IntervalMs(u32),
    /// Never sync explicitly; the OS writes back when it likes.
    Os,
}

impl Durability {
    /// Parses `always`, `os` or `interval:<ms>`, the broker's own spelling.
    pub fn parse(text: &str) -> Result<Durability, WorkloadError> {
        match text {
            "always" => Ok(Durability::Always),
            "os" => Ok(Durability::Os),
            _ => text
                .strip_prefix("interval:")
                .and_then(|ms| ms.parse().ok())
                .map(Durability::IntervalMs)
                .ok_or_else(|| {
                    WorkloadError::Invalid(format!(
                        "durability {text:?}: use always, os or interval:<ms>"
                    ))
                }),
        }
    }
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Durability::Always => f.write_str("always"),
            Durability::IntervalMs(ms) => write!(f, "interval:{ms}"),
            Durability::Os => f.write_str("os"),
        }
    }
}

/// When a produce is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ack {
    /// As soon as the broker accepted the request.
    None,
    /// Once appended (visible to readers, maybe not synced).
    Appended,
    /// Once durable under the topic's durability policy.
    Durable,
}

/// When producers stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// After this many messages in total (split between producers).
    Messages(u64),
    /// After this long (warm-up included).
    Duration(Duration),
}

/// Length of a W3C `traceparent` value: `00-` + 32 hex + `-` + 16 hex + `-` + 2 hex.
const TRACEPARENT_VALUE_BYTES: usize = 55;

/// One benchmark, as the command line describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// What to run.
    pub kind: WorkloadKind,
    /// Producer tasks, each with its own connection.
    pub producers: u32,
    /// Consumers in each consumer group, each with its own connection.
    pub consumers: u32,
    /// Consumer groups; each one receives every message.
    pub consumer_groups: u32,
    /// Topics; producer `i` writes to topic `i % topics`.
    pub topics: u32,
    /// Partitions per topic.
    pub partitions: u32,
    /// Bytes of each message's payload (header included).
    pub message_size_bytes: usize,
    /// Records per produce batch.
    pub batch_records: usize,
    /// Produce batches each producer keeps awaiting acknowledgement.
    pub in_flight_batches: usize,
    /// Total target rate over all producers; `None`: as fast as possible.
    pub rate_msgs_per_sec: Option<u64>,
    /// When to stop producing.
    pub stop: Stop,
    /// Results before this much time has passed are not measured.
    pub warmup: Duration,
    /// The topics' durability policy.
    pub durability: Durability,
    /// The producers' acknowledgement level.
    pub ack: Ack,
    /// Every message carries a W3C `traceparent` (brokerd only), to measure the cost of
    /// tracing against the same run without.
    pub trace: bool,
}

/// A workload that cannot run.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum WorkloadError {
    /// A setting is out of range or inconsistent with another.
    #[error("invalid workload: {0}")]
    Invalid(String),
}

impl Workload {
    /// Checks every setting against its limit and the settings against each other.
    pub fn validate(&self) -> Result<(), WorkloadError> {
        let bad = |msg: String| Err(WorkloadError::Invalid(msg));
        for (name, value) in [
            ("--producers", self.producers),
            ("--topics", self.topics),
            ("--partitions", self.partitions),
            ("--consumer-groups", self.consumer_groups),
        ] {
            if value == 0 || value > MAX_CLIENTS {
                return bad(format!("{name} must be 1..={MAX_CLIENTS}, not {value}"));
            }
        }
        if self.consumers > MAX_CLIENTS {
            return bad(format!("--consumers must be at most {MAX_CLIENTS}"));
        }
        if self.consumers == 0 && self.kind != WorkloadKind::Produce {
            return bad(format!(
                "the {:?} workload needs --consumers of at least 1",
                self.kind
            ));
        }
        if self.message_size_bytes < PAYLOAD_HEADER_BYTES
            || self.message_size_bytes > MAX_MESSAGE_SIZE_BYTES
        {
            return bad(format!(
                "--message-size must be {PAYLOAD_HEADER_BYTES}..={MAX_MESSAGE_SIZE_BYTES} bytes \
                 (each payload carries a {PAYLOAD_HEADER_BYTES}-byte header), not {}",
                self.message_size_bytes
            ));
        }
        if self.batch_records == 0 || self.batch_records > MAX_BATCH_RECORDS {
            return bad(format!("--batch must be 1..={MAX_BATCH_RECORDS}"));
        }
        // The record as the brokerd driver builds it: the payload, plus a
        // `traceparent` header (55 bytes of text) with --trace.
        let traceparent = [0u8; TRACEPARENT_VALUE_BYTES];
        let headers: &[(&str, &[u8])] = if self.trace {
            &[(protocol::trace::TRACEPARENT_HEADER, &traceparent)]
        } else {
            &[]
        };
        let payload = vec![0u8; self.message_size_bytes];
        let record_bytes =
            protocol::batch::BatchBuilder::record_size(None, Some(&payload), headers);
        if protocol::batch::BATCH_HEADER_BYTES
            .saturating_add(self.batch_records.saturating_mul(record_bytes))
            > protocol::batch::MAX_BATCH_BYTES
        {
            return bad(format!(
                "--batch {} x --message-size {} does not fit a 16 MiB batch",
                self.batch_records, self.message_size_bytes
            ));
        }
        if self.in_flight_batches == 0 || self.in_flight_batches > MAX_IN_FLIGHT_BATCHES {
            return bad(format!("--in-flight must be 1..={MAX_IN_FLIGHT_BATCHES}"));
        }
        if self.rate_msgs_per_sec == Some(0) {
            return bad("--rate must be positive (omit it for as fast as possible)".into());
        }
        match self.stop {
            Stop::Messages(0) => return bad("--messages must be positive".into()),
            Stop::Messages(n) if n < u64::from(self.producers) => {
                return bad(format!(
                    "--messages {n} is fewer than --producers {}",
                    self.producers
                ))
            }
            Stop::Duration(d) if d.is_zero() => return bad("--duration must be positive".into()),
            Stop::Duration(d) if d <= self.warmup => {
                return bad("--duration must be longer than --warmup".into())
            }
            _ => {}
        }
        if self.kind == WorkloadKind::Consume && !matches!(self.stop, Stop::Messages(_)) {
            return bad("the consume workload pre-fills a fixed number: use --messages".into());
        }
        Ok(())
    }

    /// Messages producer `index` sends, for a message-count run.
    pub fn producer_quota(&self, index: u32) -> Option<u64> {
        match self.stop {
            Stop::Messages(total) => {
                let n = u64::from(self.producers);
                let extra = u64::from(index) < total % n;
                Some(total / n + u64::from(extra))
            }
            Stop::Duration(_) => None,
        }
    }

    /// Each producer's share of the target rate, in messages per second.
    pub fn producer_rate(&self) -> Option<f64> {
        self.rate_msgs_per_sec
            .map(|rate| rate as f64 / f64::from(self.producers))
    }

    /// The topic producer `index` writes to.
    pub fn producer_topic(&self, index: u32) -> u32 {
        index % self.topics
    }

    /// Whether consumers run at the same time as producers.
    pub fn has_live_consumers(&self) -> bool {
        matches!(self.kind, WorkloadKind::Pubsub | WorkloadKind::Queue) && self.consumers > 0
    }
}

/// The `(topic index, partition)` pairs that consumer `member` of a group of `members`
/// reads, when a driver assigns partitions itself: round robin over every partition of
/// every topic, so members differ by at most one partition.
pub fn assigned_partitions(
    topics: u32,
    partitions: u32,
    member: u32,
    members: u32,
) -> Vec<(u32, u32)> {
    let members = members.max(1);
    (0..topics)
        .flat_map(|t| (0..partitions).map(move |p| (t, p)))
        .enumerate()
        .filter(|(k, _)| (*k as u64) % u64::from(members) == u64::from(member))
        .map(|(_, pair)| pair)
        .collect()
}

/// Send time of batch `batch_index` of a producer pacing at `rate` messages per
/// second with batches of `batch_records`, in nanoseconds after its start.
pub fn scheduled_send_ns(batch_index: u64, batch_records: usize, rate: f64) -> u64 {
    let messages_before = batch_index as f64 * batch_records as f64;
    (messages_before / rate * 1e9) as u64
}

/// Parses a duration written as a number with a unit: `500ms`, `10s`, `2m`.
pub fn parse_duration(text: &str) -> Result<Duration, WorkloadError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| {
        WorkloadError::Invalid(format!("duration {text:?}: write it like 500ms, 10s or 2m"))
    })?;
    match unit {
        "ms" => Ok(Duration::from_millis(number)),
        "s" | "" => Ok(Duration::from_secs(number)),
        "m" => Ok(Duration::from_secs(number.saturating_mul(60))),
        _ => Err(WorkloadError::Invalid(format!(
            "duration {text:?}: unknown unit {unit:?} (use ms, s or m)"
        ))),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Workload {
        Workload {
            kind: WorkloadKind::Pubsub,
            producers: 3,
            consumers: 2,
            consumer_groups: 1,
            topics: 2,
            partitions: 3,
            message_size_bytes: 1024,
            batch_records: 100,
            in_flight_batches: 8,
            rate_msgs_per_sec: None,
            stop: Stop::Messages(1000),
            warmup: Duration::ZERO,
            durability: Durability::Os,
            ack: Ack::Appended,
            trace: false,
        }
    }

    #[test]
    fn the_sample_is_valid() {
        assert_eq!(sample().validate(), Ok(()));
    }

    #[test]
    fn bad_settings_are_named() {
        let cases: Vec<(Workload, &str)> = vec![
            (
                Workload {
                    message_size_bytes: 10,
                    ..sample()
                },
                "--message-size",
            ),
            (
                Workload {
                    producers: 0,
                    ..sample()
                },
                "--producers",
            ),
            (
                Workload {
                    batch_records: 0,
                    ..sample()
                },
                "--batch",
            ),
            (
                Workload {
                    in_flight_batches: 0,
                    ..sample()
                },
                "--in-flight",
            ),
            (
                Workload {
                    rate_msgs_per_sec: Some(0),
                    ..sample()
                },
                "--rate",
            ),
            (
                Workload {
                    stop: Stop::Messages(2),
                    ..sample()
                },
                "--messages",
            ),
            (
                Workload {
                    consumers: 0,
                    ..sample()
                },
                "--consumers",
            ),
            (
                Workload {
                    batch_records: 10_000,
                    message_size_bytes: 4096,
                    ..sample()
                },
                "16 MiB",
            ),
            (
                // 15,400 records of 1,042 bytes fit; of 1,114 (with a traceparent) not.
                Workload {
                    batch_records: 15_400,
                    message_size_bytes: 1024,
                    trace: true,
                    ..sample()
                },
                "16 MiB",
            ),
            (
                Workload {
                    stop: Stop::Duration(Duration::from_secs(1)),
                    warmup: Duration::from_secs(2),
                    ..sample()
                },
                "--warmup",
            ),
            (
                Workload {
                    kind: WorkloadKind::Consume,
                    stop: Stop::Duration(Duration::from_secs(5)),
                    ..sample()
                },
                "--messages",
            ),
        ];
        for (workload, needle) in cases {
            let err = workload.validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{err:?} should mention {needle}");
        }
        let produce_only = Workload {
            kind: WorkloadKind::Produce,
            consumers: 0,
            ..sample()
        };
        assert_eq!(produce_only.validate(), Ok(()));
    }

    #[test]
    fn quotas_add_up_to_the_total() {
        let w = Workload {
            stop: Stop::Messages(1001),
            ..sample()
        };
        let quotas: Vec<u64> = (0..3).map(|i| w.producer_quota(i).unwrap()).collect();
        assert_eq!(quotas, [334, 334, 333]);
        assert_eq!(quotas.iter().sum::<u64>(), 1001);
        let timed = Workload {
            stop: Stop::Duration(Duration::from_secs(5)),
            ..sample()
        };
        assert_eq!(timed.producer_quota(0), None);
    }

    #[test]
    fn every_partition_has_exactly_one_reader_per_group() {
        let mut all: Vec<(u32, u32)> = (0..3)
            .flat_map(|m| assigned_partitions(2, 4, m, 3))
            .collect();
        all.sort_unstable();
        let expected: Vec<(u32, u32)> = (0..2).flat_map(|t| (0..4).map(move |p| (t, p))).collect();
        assert_eq!(all, expected);
        assert_eq!(assigned_partitions(1, 2, 2, 3), vec![]);
    }

    #[test]
    fn schedule_spreads_batches_evenly() {
        assert_eq!(scheduled_send_ns(0, 10, 1000.0), 0);
        assert_eq!(scheduled_send_ns(1, 10, 1000.0), 10_000_000);
        assert_eq!(scheduled_send_ns(100, 1, 10_000.0), 10_000_000);
    }

    #[test]
    fn durations_need_a_known_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("1h").is_err());
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn durability_parses_the_brokers_spelling() {
        assert_eq!(Durability::parse("always"), Ok(Durability::Always));
        assert_eq!(
            Durability::parse("interval:100"),
            Ok(Durability::IntervalMs(100))
        );
        assert_eq!(
            Durability::parse("os").map(|d| d.to_string()),
            Ok("os".to_string())
        );
        assert!(Durability::parse("sometimes").is_err());
    }
}
