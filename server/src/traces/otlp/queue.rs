//! The hand-over from the span writer to the exporter: a bounded queue that never
//! waits. A full queue drops the span and counts it, so a slow or absent collector
//! costs the broker spans in the export, never time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use protocol::trace::Span;
use tokio::sync::mpsc;

/// What happened to the spans handed to the exporter, since the broker started.
#[derive(Debug, Default)]
pub struct ExportCounters {
    /// Spans the collector accepted.
    pub exported: AtomicU64,
    /// Spans dropped because the export queue was full.
    pub dropped: AtomicU64,
    /// Spans lost because their request failed (after its retries) or the collector
    /// rejected them.
    pub failed: AtomicU64,
}

/// A reading of [`ExportCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// Spans the collector accepted.
    pub exported: u64,
    /// Spans dropped because the export queue was full.
    pub dropped: u64,
    /// Spans lost to failed or rejected requests.
    pub failed: u64,
}

impl ExportCounters {
    /// The counters now.
    pub fn read(&self) -> ExportStats {
        ExportStats {
            exported: self.exported.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

/// The sending end of the export queue.
#[derive(Debug)]
pub struct ExportQueue {
    spans: mpsc::Sender<Span>,
    counters: Arc<ExportCounters>,
}

impl ExportQueue {
    /// A queue of at most `capacity_spans` spans (at least 1), and its receiving end.
    pub fn bounded(
        capacity_spans: usize,
        counters: Arc<ExportCounters>,
    ) -> (ExportQueue, mpsc::Receiver<Span>) {
        let (spans, rx) = mpsc::channel(capacity_spans.max(1));
        (ExportQueue { spans, counters }, rx)
    }

    /// Hands `span` to the exporter, or drops and counts it if the queue is full (or
    /// the exporter is gone); never waits.
    pub fn offer(&self, span: Span) {
        if self.spans.try_send(span).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counters this queue and its exporter keep.
    pub fn counters(&self) -> &Arc<ExportCounters> {
        &self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(n: u8) -> Span {
        Span {
            trace_id: [n; 16],
            span_id: [n; 8],
            parent_id: [1; 8],
            name: "produce".into(),
            start_us: 0,
            duration_us: 0,
            attributes: Vec::new(),
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_waiting() {
        let counters = Arc::new(ExportCounters::default());
        let (queue, mut rx) = ExportQueue::bounded(3, counters.clone());
        for n in 1..=5 {
            queue.offer(span(n));
        }
        assert_eq!(counters.read().dropped, 2, "two spans beyond the capacity");
        let kept: Vec<u8> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|s| s.trace_id[0])
            .collect();
        assert_eq!(kept, [1, 2, 3], "the first ones are kept, in order");
        queue.offer(span(6));
        assert_eq!(
            rx.try_recv().unwrap().trace_id[0],
            6,
            "room again once drained"
        );
        assert_eq!(counters.read().dropped, 2);
    }

    #[test]
    fn spans_offered_after_the_exporter_is_gone_are_counted_too() {
        let counters = Arc::new(ExportCounters::default());
        let (queue, rx) = ExportQueue::bounded(8, counters.clone());
        drop(rx);
        queue.offer(span(1));
        assert_eq!(
            counters.read(),
            ExportStats {
                exported: 0,
                dropped: 1,
                failed: 0
            }
        );
    }
}
