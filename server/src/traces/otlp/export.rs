//! The exporter task: gathers spans from the export queue into batches and posts
//! each batch to the collector, retrying as [`RetryPolicy`] says. It is the only
//! part that waits on the collector, and nothing waits on it: the queue in front of
//! it drops what does not fit.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use protocol::trace::Span;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::client::{Collector, SendError};
use super::retry::{judge_answer, RetryPolicy, Verdict};
use super::warn::WarnLimit;
use super::{map, ExportCounters};
use crate::shutdown::Shutdown;

/// Export failures are logged at most once per this long (with the count of those
/// not logged).
pub const WARN_INTERVAL: Duration = Duration::from_secs(30);
/// Once the broker is stopping, a request may take at most this long, and is not
/// retried: the spans still queued get one quick try.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);

/// How the exporter batches and sends.
#[derive(Debug, Clone)]
pub struct Batching {
    /// Spans per request, at most (at least 1).
    pub batch_spans: usize,
    /// How long the first span of a batch waits for the batch to fill.
    pub flush_interval: Duration,
    /// How long one request may take.
    pub timeout: Duration,
    /// When failed requests are tried again.
    pub retry: RetryPolicy,
}

/// The exporter's state.
pub struct Exporter {
    collector: Collector,
    resource: Resource,
    batching: Batching,
    counters: Arc<ExportCounters>,
    shutdown: Shutdown,
    warnings: WarnLimit,
    /// Whether the last request failed (to log the recovery once).
    failing: bool,
}

impl Exporter {
    /// An exporter posting to `collector` under `resource`.
    pub fn new(
        collector: Collector,
        resource: Resource,
        batching: Batching,
        counters: Arc<ExportCounters>,
        shutdown: Shutdown,
    ) -> Exporter {
        Exporter {
            collector,
            resource,
            batching,
            counters,
            shutdown,
            warnings: WarnLimit::new(WARN_INTERVAL),
            failing: false,
        }
    }

    /// Exports what arrives on `rx` until every sender is gone (the span writer
    /// drops its sender last thing at shutdown, after handing over what it wrote).
    pub async fn run(mut self, mut rx: mpsc::Receiver<Span>) {
        let limit = self.batching.batch_spans.max(1);
        let mut batch: Vec<Span> = Vec::with_capacity(limit);
        loop {
            if rx.recv_many(&mut batch, limit).await == 0 {
                return;
            }
            let deadline = Instant::now() + self.batching.flush_interval;
            let mut open = true;
            while batch.len() < limit {
                let room = limit - batch.len();
                match tokio::time::timeout_at(deadline, rx.recv_many(&mut batch, room)).await {
                    Ok(0) => {
                        open = false;
                        break;
                    }
                    Ok(_) => {}
                    Err(_elapsed) => break,
                }
            }
            debug_assert!(!batch.is_empty() && batch.len() <= limit);
            self.export(&mut batch).await;
            debug_assert!(batch.is_empty());
            if !open {
                return;
            }
        }
    }

    /// Posts `batch` (emptying it), retrying while the policy allows and the broker
    /// is not stopping; counts the spans as exported or failed.
    async fn export(&mut self, batch: &mut Vec<Span>) {
        let spans = batch.len() as u64;
        let body = Bytes::from(map::request(&self.resource, batch.drain(..)).encode_to_vec());
        let mut retry = 0;
        loop {
            let stopping = self.shutdown.is_shutdown();
            let timeout = if stopping {
                self.batching.timeout.min(SHUTDOWN_TIMEOUT)
            } else {
                self.batching.timeout
            };
            let verdict = match self.collector.post(body.clone(), timeout).await {
                Ok(answer) => judge_answer(answer.status, &answer.body),
                Err(error @ (SendError::Timeout { .. } | SendError::Transport(_))) => {
                    Verdict::Retry(error.to_string())
                }
            };
            match verdict {
                Verdict::Accepted { rejected, message } => {
                    let rejected = rejected.min(spans);
                    self.counters
                        .exported
                        .fetch_add(spans - rejected, Ordering::Relaxed);
                    if rejected > 0 {
                        self.counters.failed.fetch_add(rejected, Ordering::Relaxed);
                        self.warn(rejected, &format!("the collector rejected them: {message}"));
                    } else if self.failing {
                        self.failing = false;
                        tracing::info!(endpoint = %self.collector.endpoint(), "exporting trace spans works again");
                    }
                    return;
                }
                Verdict::Retry(_) if self.batching.retry.allows(retry) && !stopping => {
                    let wait = self.batching.retry.backoff(retry);
                    retry += 1;
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.shutdown.recv() => {}
                    }
                }
                Verdict::Retry(why) | Verdict::Refused(why) => {
                    self.counters.failed.fetch_add(spans, Ordering::Relaxed);
                    self.failing = true;
                    self.warn(spans, &why);
                    return;
                }
            }
        }
    }

    /// Logs that `spans` were lost, unless a warning went out recently.
    fn warn(&mut self, spans: u64, why: &str) {
        let Some(held_back) = self.warnings.admit(std::time::Instant::now()) else {
            return;
        };
        let stats = self.counters.read();
        tracing::warn!(
            endpoint = %self.collector.endpoint(),
            spans,
            why,
            failed_total = stats.failed,
            dropped_total = stats.dropped,
            warnings_held_back = held_back,
            "exporting trace spans failed; they are lost to the collector (still on __traces)"
        );
    }
}
