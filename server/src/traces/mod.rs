//! Trace spans of traced messages, on the internal topic `__traces`.
//!
//! Messages that carry a W3C `traceparent` header are traced. The broker records what
//! happened to each through one typed entry point per event ([`Traces::on_produce`],
//! [`on_durable`](Traces::on_durable), [`on_route`](Traces::on_route),
//! [`on_deliver`](Traces::on_deliver), [`on_ack`](Traces::on_ack),
//! [`on_nack`](Traces::on_nack), [`on_retry`](Traces::on_retry),
//! [`on_dead_letter`](Traces::on_dead_letter), [`on_fetch`](Traces::on_fetch),
//! [`on_commit`](Traces::on_commit)), so every call site is one line and the span
//! names, ids ([`ids`]) and attributes are decided here only.
//!
//! Recording never waits: spans go into a bounded queue with `try_send` (when it is
//! full they are dropped and counted), and a writer task ([`writer`]) appends them to
//! `__traces` in batches. Messages without a `traceparent` cost a header scan
//! ([`scan`]) and nothing else; a batch that does not contain the header's name at all
//! is passed over by one `memmem`.
//!
//! With `[tracing] otlp_endpoint` set, the writer also hands every span it wrote to
//! the [`otlp`] exporter, through a second bounded queue that never waits either.
//!
//! Stream groups reading by Fetch get a `deliver` span when a member's fetch returns a
//! traced message, and a `commit` span when the group commits past it: the messages
//! between the two are remembered in [`uncommitted`], bounded.

pub mod ids;
pub mod otlp;
pub mod scan;
mod span;
pub mod uncommitted;
mod writer;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use std::time::{SystemTime, UNIX_EPOCH};

use protocol::ops::subscribe::Delivery;
use protocol::trace::{Span, TraceParent};
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::error::BrokerError;
use crate::internal::InternalLog;
use crate::tasks::Tasks;
use crate::topics::{TopicConfig, Topics};
pub use scan::Traced;
pub use span::{At, Recipient, RoutedTo, SpanName, TracedAppend};
use uncommitted::{Delivered, Uncommitted};

/// Spans waiting to be written, at most; more are dropped (and counted).
pub const SPAN_QUEUE: usize = 16_384;
/// Longest attribute value a span keeps (longer ones are cut at a character
/// boundary): with [`SPAN_QUEUE`] this bounds the queue's memory, whatever clients put
/// in the names and reasons that become attributes.
pub const MAX_ATTRIBUTE_BYTES: usize = 256;
/// `__traces` keeps spans this long.
pub const TRACE_RETENTION_MS: u64 = 24 * 3600 * 1000;

/// Microseconds since the epoch, for span times: the wall clock as it read at the
/// first span, plus monotonic time since. So a span's duration (the difference of two
/// readings) is measured on the monotonic clock, and a step of the wall clock cannot
/// give a span a negative or a two-hour duration.
pub fn now_us() -> u64 {
    static ANCHOR: std::sync::OnceLock<(u64, std::time::Instant)> = std::sync::OnceLock::new();
    let (wall_us, at) = ANCHOR.get_or_init(|| {
        let wall_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        (wall_us, std::time::Instant::now())
    });
    wall_us.saturating_add(at.elapsed().as_micros() as u64)
}

/// Records spans for traced messages.
#[derive(Debug)]
pub struct Traces {
    spans: mpsc::Sender<Span>,
    dropped: AtomicU64,
    /// Of the messages whose `traceparent` is not flagged sampled, how many per
    /// million are traced anyway (decided by trace id, so a whole trace is in or out).
    sample_per_million: u64,
    /// Traced messages fetched by stream groups, waiting for their commit.
    uncommitted: Mutex<Uncommitted>,
    /// `uncommitted`'s length, read without the lock: a commit while nothing traced
    /// waits costs one atomic load.
    uncommitted_len: AtomicUsize,
    /// The OTLP export's counters, when spans are exported.
    export: Option<Arc<otlp::ExportCounters>>,
}

impl Traces {
    /// Opens (creating if needed) `__traces` and starts the writer task among `tasks`
    /// (blocking I/O; call inside the runtime). Spans are not exported.
    pub fn open(
        topics: &Topics,
        tasks: &Tasks,
        sample_unsampled: f64,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Traces>, BrokerError> {
        Self::open_exporting(topics, tasks, sample_unsampled, clock, None)
    }

    /// [`open`](Self::open), and the writer hands every span it wrote to `export`
    /// (from [`otlp::start`]).
    pub fn open_exporting(
        topics: &Topics,
        tasks: &Tasks,
        sample_unsampled: f64,
        clock: Arc<dyn Clock>,
        export: Option<otlp::ExportQueue>,
    ) -> Result<Arc<Traces>, BrokerError> {
        let config = TopicConfig {
            durability: storage::Durability::IntervalMs(1000),
            retention_ms: Some(TRACE_RETENTION_MS),
            ..TopicConfig::internal_default()
        };
        // Spans are written, never replayed: the broker keeps no state from them.
        let log = InternalLog::<Span>::open(topics, config, clock, |_, _| {})?;
        let (spans, rx) = mpsc::channel(SPAN_QUEUE);
        let export_counters = export.as_ref().map(|queue| queue.counters().clone());
        tasks.spawn(
            "span writer",
            writer::write_spans(log, rx, export, tasks.shutdown()),
        );
        let sample_per_million = (sample_unsampled.clamp(0.0, 1.0) * 1_000_000.0).round() as u64;
        Ok(Arc::new(Traces {
            spans,
            dropped: AtomicU64::new(0),
            sample_per_million,
            uncommitted: Mutex::new(Uncommitted::default()),
            uncommitted_len: AtomicUsize::new(0),
            export: export_counters,
        }))
    }

    fn uncommitted(&self) -> MutexGuard<'_, Uncommitted> {
        self.uncommitted.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the broker records spans for a message with this context: always when
    /// the context is flagged sampled, else for the configured fraction of traces.
    pub fn wants(&self, context: &TraceParent) -> bool {
        if context.sampled {
            return true;
        }
        let mut word = [0u8; 8];
        word.copy_from_slice(&context.trace_id[8..]);
        u64::from_be_bytes(word) % 1_000_000 < self.sample_per_million
    }

    /// The wanted traced records of one stored batch.
    fn traced(&self, batch: &[u8], base_offset: u64) -> Vec<Traced> {
        let mut found = scan::traced_records(batch, base_offset, 0, u64::MAX);
        found.retain(|t| self.wants(&t.context));
        found
    }

    /// Spans dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The OTLP export's counters (exported, dropped for a full queue, failed),
    /// `None` when spans are not exported.
    pub fn export_stats(&self) -> Option<otlp::ExportStats> {
        self.export.as_ref().map(|counters| counters.read())
    }

    /// Queues a span for writing; never waits.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        context: &TraceParent,
        span_id: [u8; 8],
        parent_id: [u8; 8],
        name: SpanName,
        start_us: u64,
        end_us: u64,
        mut attributes: Vec<(String, String)>,
    ) {
        clip_attributes(&mut attributes);
        let span = Span {
            trace_id: context.trace_id,
            span_id,
            parent_id,
            name: name.as_str().to_string(),
            start_us,
            duration_us: end_us.saturating_sub(start_us),
            attributes,
        };
        if self.spans.try_send(span).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A batch was appended: a `produce` span from receipt to the end of the append,
    /// with the `append` (the log write) below it, for each traced record. Returns
    /// what [`on_durable`](Self::on_durable) needs, `None` if nothing is traced.
    pub fn on_produce(
        &self,
        topic: &str,
        partition: u32,
        batch: &[u8],
        base_offset: u64,
        received_us: u64,
    ) -> Option<TracedAppend> {
        let records = self.traced(batch, base_offset);
        if records.is_empty() {
            return None;
        }
        let appended_us = now_us();
        for t in &records {
            let at = At {
                topic,
                partition,
                offset: t.offset,
            };
            let id = ids::produce(&t.context, at);
            let (start, end) = (received_us, appended_us);
            self.record(
                &t.context,
                id,
                t.context.parent_id,
                SpanName::Produce,
                start,
                end,
                at.attributes(),
            );
            let append = ids::child(&t.context, b"append", &id);
            self.record(
                &t.context,
                append,
                id,
                SpanName::Append,
                start,
                end,
                at.attributes(),
            );
        }
        Some(TracedAppend {
            topic: topic.to_string(),
            partition,
            records,
            appended_us,
        })
    }

    /// The batch [`on_produce`](Self::on_produce) saw is durable: a `durable` span for
    /// each traced record, from its append until now.
    pub fn on_durable(&self, traced: &TracedAppend) {
        let durable_us = now_us();
        for t in &traced.records {
            let at = At {
                topic: &traced.topic,
                partition: traced.partition,
                offset: t.offset,
            };
            let parent = ids::produce(&t.context, at);
            let id = ids::child(&t.context, b"durable", &parent);
            let start = traced.appended_us;
            self.record(
                &t.context,
                id,
                parent,
                SpanName::Durable,
                start,
                durable_us,
                at.attributes(),
            );
        }
    }

    /// A publish was appended to `destinations`: a `route` span naming them for each
    /// traced record, with a `produce` span per destination below it (deliveries hang
    /// off those).
    pub fn on_route(
        &self,
        routing_key: &str,
        batch: &[u8],
        destinations: &[RoutedTo<'_>],
        received_us: u64,
    ) {
        let Some(first) = destinations.first() else {
            return;
        };
        let records = self.traced(batch, first.base_offset);
        if records.is_empty() {
            return;
        }
        let now = now_us();
        let names: Vec<&str> = destinations.iter().map(|d| d.topic).collect();
        for t in records {
            let index = t.offset - first.base_offset;
            let route = ids::route(&t.context, routing_key, index);
            let attributes = vec![
                ("routing_key".to_string(), routing_key.to_string()),
                ("topics".to_string(), names.join(",")),
            ];
            self.record(
                &t.context,
                route,
                t.context.parent_id,
                SpanName::Route,
                received_us,
                now,
                attributes,
            );
            for d in destinations {
                let at = At {
                    topic: d.topic,
                    partition: d.partition,
                    offset: d.base_offset + index,
                };
                let id = ids::produce(&t.context, at);
                self.record(
                    &t.context,
                    id,
                    route,
                    SpanName::Produce,
                    received_us,
                    now,
                    at.attributes(),
                );
            }
        }
    }

    /// A delivery of `topic`'s messages went out: a `deliver` span below each traced
    /// message's `produce`. Returns the traced messages (a queue group keeps their
    /// context for the spans of their settlement).
    pub fn on_deliver(&self, topic: &str, delivery: &Delivery, to: Recipient<'_>) -> Vec<Traced> {
        let mut found =
            scan::traced_in(&delivery.batches, delivery.from_offset, delivery.to_offset);
        found.retain(|t| self.wants(&t.context));
        if found.is_empty() {
            return found;
        }
        let now = now_us();
        for t in &found {
            let at = At {
                topic,
                partition: delivery.partition,
                offset: t.offset,
            };
            let parent = ids::produce(&t.context, at);
            let mut attributes = at.attributes();
            let (group, attempt) = match to {
                Recipient::Subscription { id, group } => {
                    attributes.push(("subscription".into(), id.to_string()));
                    (group, 1)
                }
                Recipient::Queue { group, attempt } => (Some(group), attempt(t.offset)),
            };
            if let Some(group) = group {
                attributes.push(("group".into(), group.into()));
            }
            attributes.push(("attempt".into(), attempt.to_string()));
            let id = ids::deliver(&t.context, group.unwrap_or(""), at, attempt);
            self.record(
                &t.context,
                id,
                parent,
                SpanName::Deliver,
                now,
                now,
                attributes,
            );
        }
        found
    }

    /// The wanted traced messages of a fetch's answer whose offsets are in
    /// `[from, to)` (a fetch answers whole batches; those below its offset are not
    /// delivered).
    pub fn traced_fetch(&self, batches: &Bytes, from: u64, to: u64) -> Vec<Traced> {
        let mut found = scan::traced_in(batches, from, to);
        found.retain(|t| self.wants(&t.context));
        found
    }

    /// Member `member` of stream group `group` fetched these traced messages of
    /// `topic`'s `partition` (from [`traced_fetch`](Self::traced_fetch)): a `deliver`
    /// span below each one's `produce`, unless the group was delivered it before and
    /// has not committed past it since. Remembered for [`on_commit`](Self::on_commit).
    pub fn on_fetch(
        &self,
        topic: &str,
        partition: u32,
        traced: &[Traced],
        group: &str,
        member: &str,
    ) {
        if traced.is_empty() {
            return;
        }
        let now = now_us();
        for t in traced {
            let delivered = {
                let mut uncommitted = self.uncommitted();
                let d = uncommitted.delivered(group, topic, partition, t.offset, t.context);
                self.uncommitted_len
                    .store(uncommitted.len(), Ordering::Relaxed);
                d
            };
            if delivered == Delivered::Again {
                continue;
            }
            let at = At {
                topic,
                partition,
                offset: t.offset,
            };
            let parent = ids::produce(&t.context, at);
            let mut attributes = at.attributes();
            attributes.extend([
                ("group".into(), group.into()),
                ("member".into(), member.into()),
                ("attempt".into(), "1".into()),
            ]);
            let id = ids::deliver(&t.context, group, at, 1);
            self.record(
                &t.context,
                id,
                parent,
                SpanName::Deliver,
                now,
                now,
                attributes,
            );
        }
    }

    /// Stream group `group` committed `offsets` (partition, next offset to read) of
    /// `topic`, received at `received_us` and durable now: a `commit` span below the
    /// `deliver` of each traced message the commit passed.
    pub fn on_commit(&self, group: &str, topic: &str, offsets: &[(u32, u64)], received_us: u64) {
        if self.uncommitted_len.load(Ordering::Relaxed) == 0 {
            return;
        }
        let passed: Vec<(u32, Vec<(u64, TraceParent)>)> = {
            let mut uncommitted = self.uncommitted();
            let passed = offsets
                .iter()
                .map(|&(p, offset)| (p, uncommitted.committed(group, topic, p, offset)))
                .filter(|(_, messages)| !messages.is_empty())
                .collect();
            self.uncommitted_len
                .store(uncommitted.len(), Ordering::Relaxed);
            passed
        };
        let now = now_us();
        for (partition, messages) in passed {
            let committed = offsets
                .iter()
                .find(|(p, _)| *p == partition)
                .map_or(0, |(_, o)| *o);
            for (offset, context) in messages {
                let at = At {
                    topic,
                    partition,
                    offset,
                };
                let parent = ids::deliver(&context, group, at, 1);
                let id = ids::child(&context, b"commit", &parent);
                let mut attributes = at.attributes();
                attributes.extend([
                    ("group".into(), group.into()),
                    ("committed_offset".into(), committed.to_string()),
                ]);
                self.record(
                    &context,
                    id,
                    parent,
                    SpanName::Commit,
                    received_us.min(now),
                    now,
                    attributes,
                );
            }
        }
    }

    /// Delivery number `attempt` of a message to `group` was acked.
    pub fn on_ack(&self, context: &TraceParent, at: At<'_>, group: &str, attempt: u32) {
        let parent = ids::deliver(context, group, at, attempt);
        let id = ids::child(context, b"ack", &parent);
        let mut attributes = at.attributes();
        attributes.push(("group".into(), group.into()));
        let now = now_us();
        self.record(context, id, parent, SpanName::Ack, now, now, attributes);
    }

    /// Delivery number `attempt` of a message to `group` failed (a nack, an expired
    /// deadline, a vanished member) for `reason`.
    pub fn on_nack(
        &self,
        context: &TraceParent,
        at: At<'_>,
        group: &str,
        attempt: u32,
        reason: &str,
    ) {
        let parent = ids::deliver(context, group, at, attempt);
        let id = ids::nack(context, group, at, attempt);
        let mut attributes = at.attributes();
        attributes.extend([
            ("group".into(), group.into()),
            ("attempt".into(), attempt.to_string()),
            ("reason".into(), reason.into()),
        ]);
        let now = now_us();
        self.record(context, id, parent, SpanName::Nack, now, now, attributes);
    }

    /// The message whose delivery number `attempt` to `group` failed waits for a
    /// redelivery at `due_ms`: a `retry` span below the nack, lasting until then.
    pub fn on_retry(
        &self,
        context: &TraceParent,
        at: At<'_>,
        group: &str,
        attempt: u32,
        due_ms: i64,
    ) {
        let parent = ids::nack(context, group, at, attempt);
        let id = ids::child(context, b"retry", &parent);
        let mut attributes = at.attributes();
        attributes.push(("attempt".into(), attempt.to_string()));
        let now = now_us();
        let due_us = (due_ms.max(0) as u64).saturating_mul(1000).max(now);
        self.record(
            context,
            id,
            parent,
            SpanName::Retry,
            now,
            due_us,
            attributes,
        );
    }

    /// A message out of attempts (its last delivery, number `attempts` to `group`,
    /// failed) was copied to `dead_letter_topic`.
    pub fn on_dead_letter(
        &self,
        context: &TraceParent,
        at: At<'_>,
        group: &str,
        attempts: u32,
        dead_letter_topic: &str,
    ) {
        let parent = ids::nack(context, group, at, attempts);
        let id = ids::child(context, b"dead-letter", &parent);
        let mut attributes = at.attributes();
        attributes.extend([
            ("group".into(), group.into()),
            ("attempts".into(), attempts.to_string()),
            ("dead_letter_topic".into(), dead_letter_topic.into()),
        ]);
        let now = now_us();
        self.record(
            context,
            id,
            parent,
            SpanName::DeadLetter,
            now,
            now,
            attributes,
        );
    }
}

/// Cuts every value to [`MAX_ATTRIBUTE_BYTES`] at a character boundary.
fn clip_attributes(attributes: &mut [(String, String)]) {
    for (_, value) in attributes {
        value.truncate(value.floor_char_boundary(MAX_ATTRIBUTE_BYTES));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(sampled: bool, seed: u8) -> TraceParent {
        TraceParent {
            trace_id: [seed; 16],
            parent_id: [1; 8],
            sampled,
        }
    }

    #[tokio::test]
    async fn sampled_contexts_are_always_traced_and_unsampled_ones_by_the_configured_fraction() {
        let dir = tempfile::tempdir().unwrap();
        let topics = Topics::open(dir.path()).unwrap();
        let tasks = Tasks::new();
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::SystemClock::new());
        let none = Traces::open(&topics, &tasks, 0.0, clock.clone()).unwrap();
        let all = Traces::open(&topics, &tasks, 1.0, clock.clone()).unwrap();
        let half = Traces::open(&topics, &tasks, 0.5, clock).unwrap();
        assert!(none.wants(&context(true, 3)));
        assert!(!none.wants(&context(false, 3)));
        assert!(all.wants(&context(false, 3)));
        let traced = (0..=255u8)
            .filter(|seed| half.wants(&context(false, *seed)))
            .count();
        assert!(
            (64..=192).contains(&traced),
            "about half of the traces: {traced}"
        );
        assert_eq!(
            half.wants(&context(false, 9)),
            half.wants(&context(false, 9)),
            "decided per trace"
        );
    }

    #[test]
    fn attribute_values_are_clipped_at_a_character_boundary() {
        let long = "é".repeat(MAX_ATTRIBUTE_BYTES); // two bytes each
        let mut attributes = vec![("reason".to_string(), long), ("topic".into(), "t".into())];
        clip_attributes(&mut attributes);
        assert_eq!(attributes[0].1.len(), MAX_ATTRIBUTE_BYTES);
        assert!(attributes[0].1.chars().all(|c| c == 'é'));
        assert_eq!(attributes[1].1, "t");
    }
}
