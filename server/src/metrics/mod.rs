//! Prometheus metrics: what `/metrics` serves, rendered by [`render`] in the
//! OpenMetrics text format of `prometheus-client`.
//!
//! Cost is the rule that shapes this module. On the hot paths only atomics that were
//! reached once move: a partition's traffic counters live in the partition
//! ([`PartitionCounters`]), a queue group's redeliveries in the group, answers by
//! operation and code in a fixed table ([`Requests`]), and the histograms are
//! lock-free ([`AtomicHistogram`]). No lock, map lookup or allocation is added per
//! message or per batch. Everything that is already state (log offsets and sizes,
//! consumer lag, queue counts, internal-topic sizes, open connections) is read at
//! scrape time by a collector walking the live owners ([`collect`]), so a deleted
//! topic or group disappears from the output with the owner, and the label sets are
//! bounded by what the broker holds (topics × partitions, groups × partitions, the
//! protocol's operations × error codes), never by what it once held.
//!
//! Every metric, its type, labels and meaning: `docs/operations.md`, "Metrics".

mod collect;
pub mod histogram;
pub mod partition;
pub mod requests;
pub mod sync;

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::registry::Registry;
use protocol::batch::BatchHeader;
use protocol::ops::produce::AckLevel;

use crate::broker::Broker;
use crate::partition::Partition;
pub use histogram::AtomicHistogram;
pub use partition::{PartitionCounters, Traffic};
pub use requests::Requests;
use sync::Syncs;

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Produce latency, in nanoseconds: 25 µs to 30 s.
static PRODUCE_BOUNDS_NS: [u64; 18] = [
    25_000,
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
    30_000_000_000,
];
/// End-to-end latency, in milliseconds (record timestamps are milliseconds): 1 ms to
/// 1 h.
static END_TO_END_BOUNDS_MS: [u64; 17] = [
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 600_000,
    3_600_000,
];

/// The broker's own metric state: what is counted as it happens rather than read
/// from the owners at scrape time.
#[derive(Debug)]
pub struct Metrics {
    /// Answers by operation and error code.
    pub requests: Requests,
    /// Produce request to answer, per acknowledgement level (indexed by
    /// [`ack_slot`]).
    produce_latency: [AtomicHistogram; 3],
    /// A delivery's first record timestamp to the delivery.
    end_to_end: AtomicHistogram,
    /// Group commits, shared with every log as its sync observer.
    syncs: Arc<Syncs>,
}

impl Default for Metrics {
    fn default() -> Self {
        let produce = || AtomicHistogram::new(&PRODUCE_BOUNDS_NS, 1e-9);
        Metrics {
            requests: Requests::new(),
            produce_latency: [produce(), produce(), produce()],
            end_to_end: AtomicHistogram::new(&END_TO_END_BOUNDS_MS, 1e-3),
            syncs: Arc::new(Syncs::default()),
        }
    }
}

/// The index of an acknowledgement level in [`Metrics`]'s produce histograms.
fn ack_slot(ack: AckLevel) -> usize {
    match ack {
        AckLevel::None => 0,
        AckLevel::Appended => 1,
        AckLevel::Durable => 2,
    }
}

/// The acknowledgement levels, in [`ack_slot`] order, as label values.
const ACK_NAMES: [&str; 3] = ["none", "appended", "durable"];

impl Metrics {
    /// What every log reports its group commits to.
    pub fn sync_observer(&self) -> Arc<dyn storage::SyncObserver> {
        self.syncs.clone()
    }

    /// Records the latency of one produce request at level `ack`, received at
    /// `received` and answered at `answered`.
    pub fn produce_answered(&self, ack: AckLevel, received: Instant, answered: Instant) {
        let ns = answered.saturating_duration_since(received).as_nanos();
        self.produce_latency[ack_slot(ack)].observe(u64::try_from(ns).unwrap_or(u64::MAX));
    }

    /// Counts one delivery from `partition` (a fetch answer, a subscription push, a
    /// queue hand-out) of `messages` records in `batches`, and observes its end-to-end
    /// latency: from the timestamp of the first record of its first batch to
    /// `now_wall_ms`, so per delivery, not per record (one header read). Timestamps
    /// are the producers'; one from the future counts as 0.
    pub fn delivered(
        &self,
        partition: &Partition,
        messages: u64,
        batches: &[u8],
        now_wall_ms: i64,
    ) {
        partition
            .traffic()
            .delivered(messages, batches.len() as u64);
        if let Ok(header) = BatchHeader::parse(batches) {
            let age_ms = now_wall_ms.saturating_sub(header.first_timestamp_ms).max(0);
            self.end_to_end.observe(age_ms as u64);
        }
    }
}

/// Renders every metric of `broker` in the OpenMetrics text format (serve it with
/// [`CONTENT_TYPE`]). Reads the owners' state now; takes each owner's lock briefly,
/// as a `DescribeGroup` does, and never holds one across another.
pub fn render(broker: &Broker) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(collect::BrokerCollector::new(broker)));
    let mut out = String::new();
    // Writing into a `String` cannot fail, and every value the collector encodes is
    // one the encoder accepts.
    if let Err(error) = prometheus_client::encoding::text::encode(&mut out, &registry) {
        tracing::error!(%error, "rendering the metrics failed");
    }
    out
}
