//! Trace spans on the internal topic `__traces`.
//!
//! Messages that carry a W3C `traceparent` header are traced. Request handlers and the
//! queue dispatcher hand spans to the [`Traces`] (a non-blocking `try_send` into a
//! bounded queue: tracing never slows the hot path, and when the queue is full spans
//! are dropped and counted); a writer task appends them to `__traces` in batches.
//! Messages without a `traceparent` cost a header scan and nothing else.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use protocol::batch::{BatchBuilder, BatchView};
use protocol::trace::{derived_span_id, Span, TraceParent, TRACEPARENT_HEADER, TRACES_TOPIC};
use tokio::sync::mpsc;

use crate::error::BrokerError;
use crate::partition::Partition;
use crate::shutdown::Shutdown;
use crate::topics::{TopicConfig, Topics};

/// Spans waiting to be written, at most; more are dropped (and counted).
pub const SPAN_QUEUE: usize = 16_384;
/// Longest attribute value a span keeps (longer ones are cut at a character
/// boundary): with [`SPAN_QUEUE`] this bounds the queue's memory, whatever clients put
/// in the names and reasons that become attributes.
pub const MAX_ATTRIBUTE_BYTES: usize = 256;
/// Spans per append to `__traces`, at most.
const SPANS_PER_BATCH: usize = 1024;
/// How long spans may wait to be written.
const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
/// `__traces` keeps spans this long.
pub const TRACE_RETENTION_MS: u64 = 24 * 3600 * 1000;

/// Microseconds since the epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A traced record: its offset and trace context.
#[derive(Debug, Clone, Copy)]
pub struct Traced {
    /// Offset of the record.
    pub offset: u64,
    /// Its trace context.
    pub context: TraceParent,
}

/// Records spans for traced messages.
#[derive(Debug)]
pub struct Traces {
    spans: mpsc::Sender<Span>,
    dropped: AtomicU64,
    /// Of the messages whose `traceparent` is not flagged sampled, how many per
    /// million are traced anyway (decided by trace id, so a whole trace is in or out).
    sample_per_million: u64,
}

/// The traced records of a stored batch (base offset already assigned) whose offsets
/// are in `[from, to)`.
pub fn traced_records(batch: &[u8], base_offset: u64, from: u64, to: u64) -> Vec<Traced> {
    let mut out = Vec::new();
    let Ok(view) = BatchView::new(batch) else {
        return out;
    };
    for (index, record) in view.records().enumerate() {
        let Ok(record) = record else { break };
        let offset = base_offset + index as u64;
        if offset < from || offset >= to {
            continue;
        }
        for header in record.headers().flatten() {
            if header.0 == TRACEPARENT_HEADER {
                if let Some(context) = TraceParent::parse(header.1) {
                    out.push(Traced { offset, context });
                }
                break;
            }
        }
    }
    out
}

/// The traced records of a run of concatenated stored batches.
pub fn traced_in(batches: &bytes::Bytes, from: u64, to: u64) -> Vec<Traced> {
    let mut out = Vec::new();
    for batch in protocol::batch::split_batches(batches.clone()).flatten() {
        let base = protocol::batch::BatchHeader::parse(&batch)
            .map(|h| h.base_offset)
            .unwrap_or(0);
        out.extend(traced_records(&batch, base, from, to));
    }
    out
}

/// Id of the broker's root span for a message: everything else hangs below it.
pub fn produce_span_id(context: &TraceParent, topic: &str, partition: u32, offset: u64) -> [u8; 8] {
    derived_span_id(
        &context.trace_id,
        &[
            b"produce",
            topic.as_bytes(),
            &partition.to_le_bytes(),
            &offset.to_le_bytes(),
        ],
    )
}

/// Id of delivery number `attempt` of a message to a queue group.
pub fn deliver_span_id(
    context: &TraceParent,
    group: &str,
    topic: &str,
    partition: u32,
    offset: u64,
    attempt: u32,
) -> [u8; 8] {
    derived_span_id(
        &context.trace_id,
        &[
            b"deliver",
            group.as_bytes(),
            topic.as_bytes(),
            &partition.to_le_bytes(),
            &offset.to_le_bytes(),
            &attempt.to_le_bytes(),
        ],
    )
}

/// Id of the nack (or expiry) that ended delivery number `attempt`.
pub fn nack_span_id(
    context: &TraceParent,
    group: &str,
    topic: &str,
    partition: u32,
    offset: u64,
    attempt: u32,
) -> [u8; 8] {
    derived_span_id(
        &context.trace_id,
        &[
            b"nack",
            group.as_bytes(),
            topic.as_bytes(),
            &partition.to_le_bytes(),
            &offset.to_le_bytes(),
            &attempt.to_le_bytes(),
        ],
    )
}

impl Traces {
    /// Opens (creating if needed) `__traces` and starts the writer task.
    pub fn open(
        topics: &Topics,
        shutdown: Shutdown,
        sample_unsampled: f64,
    ) -> Result<Arc<Traces>, BrokerError> {
        let config = TopicConfig {
            durability: storage::Durability::IntervalMs(1000),
            retention_ms: Some(TRACE_RETENTION_MS),
            ..TopicConfig::internal_default()
        };
        let partition = topics.internal_partition(TRACES_TOPIC, config)?;
        let (spans, rx) = mpsc::channel(SPAN_QUEUE);
        tokio::spawn(write_spans(partition, rx, shutdown));
        let sample_per_million = (sample_unsampled.clamp(0.0, 1.0) * 1_000_000.0).round() as u64;
        Ok(Arc::new(Traces {
            spans,
            dropped: AtomicU64::new(0),
            sample_per_million,
        }))
    }

    /// Queues a span for writing; never waits.
    pub fn record(&self, span: Span) {
        if self.spans.try_send(span).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
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

    /// The traced records of a batch that this traces wants.
    pub fn traced(&self, batch: &[u8], base_offset: u64, from: u64, to: u64) -> Vec<Traced> {
        let mut found = traced_records(batch, base_offset, from, to);
        found.retain(|t| self.wants(&t.context));
        found
    }

    /// Like [`traced`](Self::traced), over a run of whole batches delivered for
    /// `[from, to)`.
    pub fn traced_in(&self, batches: &bytes::Bytes, from: u64, to: u64) -> Vec<Traced> {
        let mut found = traced_in(batches, from, to);
        found.retain(|t| self.wants(&t.context));
        found
    }

    /// Spans dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Records a span with the usual attributes.
    #[allow(clippy::too_many_arguments)]
    pub fn span(
        &self,
        context: &TraceParent,
        span_id: [u8; 8],
        parent_id: [u8; 8],
        name: &str,
        start_us: u64,
        end_us: u64,
        mut attributes: Vec<(String, String)>,
    ) {
        clip_attributes(&mut attributes);
        self.record(Span {
            trace_id: context.trace_id,
            span_id,
            parent_id,
            name: name.to_string(),
            start_us,
            duration_us: end_us.saturating_sub(start_us),
            attributes,
        });
    }
}

/// Cuts every value to [`MAX_ATTRIBUTE_BYTES`] at a character boundary.
fn clip_attributes(attributes: &mut [(String, String)]) {
    for (_, value) in attributes {
        value.truncate(value.floor_char_boundary(MAX_ATTRIBUTE_BYTES));
    }
}

/// Attributes naming a message.
pub fn message_attributes(topic: &str, partition: u32, offset: u64) -> Vec<(String, String)> {
    vec![
        ("topic".into(), topic.into()),
        ("partition".into(), partition.to_string()),
        ("offset".into(), offset.to_string()),
    ]
}

async fn write_spans(
    partition: Arc<Partition>,
    mut rx: mpsc::Receiver<Span>,
    mut shutdown: Shutdown,
) {
    let mut pending: Vec<Span> = Vec::new();
    let mut tick = tokio::time::interval(FLUSH_INTERVAL);
    loop {
        tokio::select! {
            span = rx.recv() => match span {
                Some(span) => {
                    pending.push(span);
                    if pending.len() < SPANS_PER_BATCH {
                        continue;
                    }
                }
                None => return,
            },
            _ = tick.tick() => {}
            _ = shutdown.recv() => {
                while let Ok(span) = rx.try_recv() {
                    pending.push(span);
                }
                flush(&partition, &mut pending);
                return;
            }
        }
        flush(&partition, &mut pending);
    }
}

fn flush(partition: &Partition, pending: &mut Vec<Span>) {
    if pending.is_empty() {
        return;
    }
    let mut builder = BatchBuilder::new();
    let now_ms = (now_us() / 1000) as i64;
    let mut count = 0u32;
    for span in pending.drain(..) {
        let Ok(value) = span.encode() else { continue };
        if builder
            .push(now_ms, Some(&span.trace_id), Some(&value), &[])
            .is_ok()
        {
            count += 1;
        }
    }
    if count > 0 {
        if let Err(error) = partition.append(&builder.finish()) {
            tracing::warn!(%error, "writing trace spans failed; they are lost");
        }
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
        let shutdown = crate::shutdown::ShutdownSignal::new();
        let none = Traces::open(&topics, shutdown.subscribe(), 0.0).unwrap();
        let all = Traces::open(&topics, shutdown.subscribe(), 1.0).unwrap();
        let half = Traces::open(&topics, shutdown.subscribe(), 0.5).unwrap();
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

    #[test]
    fn only_records_with_a_valid_traceparent_are_found() {
        let mut builder = BatchBuilder::new();
        let header = context(true, 5).to_header();
        builder
            .push(
                1,
                None,
                Some(b"a"),
                &[(TRACEPARENT_HEADER, header.as_bytes())],
            )
            .unwrap();
        builder.push(1, None, Some(b"b"), &[]).unwrap();
        builder
            .push(
                1,
                None,
                Some(b"c"),
                &[(TRACEPARENT_HEADER, b"not a traceparent")],
            )
            .unwrap();
        let found = traced_records(&builder.finish(), 100, 0, u64::MAX);
        assert_eq!(found.iter().map(|t| t.offset).collect::<Vec<_>>(), [100]);
    }
}
