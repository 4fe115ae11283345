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

use super::client::Collector;
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
                // No answer (refused, reset, too slow): the collector may be back soon.
                Err(error) => Verdict::Retry(error.to_string()),
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

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use http_body_util::{BodyExt, Full};
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

    use super::*;
    use crate::shutdown::ShutdownSignal;
    use crate::traces::otlp::{Endpoint, ExportQueue};

    /// A collector answering with `script`'s statuses in turn (then 200), recording
    /// how many spans each request held.
    #[derive(Clone, Default)]
    struct Fake {
        script: Arc<Mutex<VecDeque<u16>>>,
        requests: Arc<Mutex<Vec<usize>>>,
    }

    impl Fake {
        async fn start(script: &[u16]) -> (Fake, Endpoint) {
            let fake = Fake::default();
            fake.script.lock().unwrap().extend(script);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let endpoint =
                Endpoint::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
            let shared = fake.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let fake = shared.clone();
                    let service =
                        service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                            let fake = fake.clone();
                            async move {
                                let body = request.into_body().collect().await?.to_bytes();
                                let spans = ExportTraceServiceRequest::decode(body)
                                    .map_or(0, |r| r.resource_spans[0].scope_spans[0].spans.len());
                                fake.requests.lock().unwrap().push(spans);
                                let status = fake.script.lock().unwrap().pop_front().unwrap_or(200);
                                let mut answer = hyper::Response::new(Full::new(Bytes::new()));
                                *answer.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                                Ok::<_, hyper::Error>(answer)
                            }
                        });
                    tokio::spawn(
                        hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service),
                    );
                }
            });
            (fake, endpoint)
        }

        fn requests(&self) -> Vec<usize> {
            self.requests.lock().unwrap().clone()
        }
    }

    fn span(n: u8) -> Span {
        Span {
            trace_id: [n; 16],
            span_id: [n; 8],
            parent_id: [1; 8],
            name: "produce".into(),
            start_us: 1,
            duration_us: 1,
            attributes: vec![("topic".into(), "t".into())],
        }
    }

    /// An exporter to `endpoint` fed by the returned queue; `spans` are queued before
    /// it first runs (the test runtime has one thread), so batches are predictable.
    fn exporter(
        endpoint: Endpoint,
        batch_spans: usize,
        max_retries: u32,
        spans: u8,
    ) -> (ExportQueue, tokio::task::JoinHandle<()>, ShutdownSignal) {
        let counters = Arc::new(ExportCounters::default());
        let (queue, rx) = ExportQueue::bounded(64, counters.clone());
        for n in 1..=spans {
            queue.offer(span(n));
        }
        let batching = Batching {
            batch_spans,
            flush_interval: Duration::from_millis(20),
            timeout: Duration::from_secs(5),
            retry: RetryPolicy {
                max_retries,
                initial_backoff: Duration::from_millis(1),
                max_backoff: Duration::from_millis(2),
            },
        };
        let signal = ShutdownSignal::new();
        let exporter = Exporter::new(
            Collector::new(endpoint, Duration::from_secs(5)),
            map::resource("brokerd", "test"),
            batching,
            counters,
            signal.subscribe(),
        );
        (queue, tokio::spawn(exporter.run(rx)), signal)
    }

    /// Closes the queue and waits for the exporter to send what it holds and end.
    async fn finish(
        queue: ExportQueue,
        task: tokio::task::JoinHandle<()>,
    ) -> super::super::ExportStats {
        let counters = queue.counters().clone();
        drop(queue);
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("the exporter ends once its queue is closed")
            .unwrap();
        counters.read()
    }

    #[tokio::test]
    async fn batches_are_cut_at_the_batch_size_and_the_rest_sent_when_the_queue_closes() {
        let (fake, endpoint) = Fake::start(&[]).await;
        let (queue, task, _signal) = exporter(endpoint, 4, 0, 10);
        let stats = finish(queue, task).await;
        assert_eq!(fake.requests(), [4, 4, 2]);
        assert_eq!((stats.exported, stats.failed, stats.dropped), (10, 0, 0));
    }

    #[tokio::test]
    async fn a_busy_collector_is_retried_and_a_refusing_one_is_not() {
        let (busy, endpoint) = Fake::start(&[503, 429]).await;
        let (queue, task, _signal) = exporter(endpoint, 8, 2, 3);
        let stats = finish(queue, task).await;
        assert_eq!(busy.requests(), [3, 3, 3], "two retries, then accepted");
        assert_eq!((stats.exported, stats.failed), (3, 0));

        let (refusing, endpoint) = Fake::start(&[400]).await;
        let (queue, task, _signal) = exporter(endpoint, 8, 2, 3);
        let stats = finish(queue, task).await;
        assert_eq!(refusing.requests(), [3], "a 400 is final");
        assert_eq!((stats.exported, stats.failed), (0, 3));

        let (down, endpoint) = Fake::start(&[503, 503, 503]).await;
        let (queue, task, _signal) = exporter(endpoint, 8, 2, 3);
        let stats = finish(queue, task).await;
        assert_eq!(down.requests().len(), 3, "the first try and two retries");
        assert_eq!((stats.exported, stats.failed), (0, 3));
    }

    #[tokio::test]
    async fn an_unreachable_collector_costs_counted_spans_and_no_retry_once_stopping() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint =
            Endpoint::parse(&format!("http://{}", closed.local_addr().unwrap())).unwrap();
        drop(closed);
        let (queue, task, signal) = exporter(endpoint, 2, 1, 4);
        signal.trigger();
        let stats = finish(queue, task).await;
        assert_eq!((stats.exported, stats.failed, stats.dropped), (0, 4, 0));
    }
}
