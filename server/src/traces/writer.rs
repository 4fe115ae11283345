//! The span writer: one task draining the span queue onto `__traces` in batches,
//! and handing what it wrote on to the OTLP export when there is one.

use std::time::Duration;

use protocol::trace::Span;
use tokio::sync::mpsc;

use super::otlp::ExportQueue;
use crate::internal::InternalLog;
use crate::shutdown::Shutdown;

/// Spans gathered before they are written without waiting for the flush interval.
const SPANS_PER_WRITE: usize = 1024;
/// How long spans may wait to be written.
const FLUSH_INTERVAL: Duration = Duration::from_millis(50);

/// Writes spans from `rx` until shutdown (then writes what is queued) or until every
/// sender is gone; each written batch then goes to `export` (without waiting: a full
/// export queue drops). Dropping `export` on return lets the exporter finish.
pub async fn write_spans(
    log: InternalLog<Span>,
    mut rx: mpsc::Receiver<Span>,
    export: Option<ExportQueue>,
    mut shutdown: Shutdown,
) {
    let mut pending: Vec<Span> = Vec::new();
    let mut tick = tokio::time::interval(FLUSH_INTERVAL);
    loop {
        tokio::select! {
            span = rx.recv() => match span {
                Some(span) => {
                    pending.push(span);
                    if pending.len() < SPANS_PER_WRITE {
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
                flush(&log, &mut pending, export.as_ref());
                return;
            }
        }
        flush(&log, &mut pending, export.as_ref());
    }
}

fn flush(log: &InternalLog<Span>, pending: &mut Vec<Span>, export: Option<&ExportQueue>) {
    if pending.is_empty() {
        return;
    }
    if let Err(error) = log.append(pending) {
        tracing::warn!(%error, spans = pending.len(), "writing trace spans failed; they are lost");
    }
    // Exported even when the append failed: the collector is another copy, and
    // the spans were recorded all the same. Moved, not cloned.
    match export {
        Some(export) => pending.drain(..).for_each(|span| export.offer(span)),
        None => pending.clear(),
    }
}
