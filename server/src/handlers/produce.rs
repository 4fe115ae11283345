//! Produce: route a batch to a partition, append it, acknowledge at the asked level.
//!
//! Appends run inline, in the order requests arrived, so pipelined produces from one
//! session land in order. Produce requests that arrive back to back for the same
//! partition and acknowledgement level form a [`ProduceRun`]: the native connection
//! adds them while more frames are already read, and appends the run with one vectored
//! write when the input runs dry, a different request comes, or the run is full. A
//! burst then costs one system call and, under `always` durability, shares one
//! `fdatasync`, instead of the first request's sync making the others wait for a
//! second one. Only waiting for durability is asynchronous: one task per run.
//! [`produce`] serves a single request through a run of one, so every listener
//! appends through the same code.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use protocol::ops::produce::{AckLevel, InitProducerResponse, ProduceRequest, ProduceResponse};
use protocol::ops::Response;
use storage::{AppendInfo, ProducerTag, MAX_BATCHES_PER_WRITE};
use tokio::sync::oneshot;

use super::{Answer, Answers, Outcome};
use crate::broker::Broker;
use crate::error::BrokerError;
use crate::metrics::Metrics;
use crate::partition::{NotDurable, Partition, Placed};
use crate::partitioner;
use crate::topics::Topic;
use crate::traces::{self, TracedAppend, Traces};

/// A run holding this many bytes is appended at once, without waiting for more.
/// Coalescing pays for small batches (a syscall and a sync shared by many); past this
/// size it saves little, and holding a large batch back while the next one is read
/// would stall the pipeline of a throughput-bound producer.
pub const RUN_FLUSH_BYTES: usize = 64 * 1024;

/// Where a produce request goes.
#[derive(Debug, Clone)]
pub struct Route {
    /// The topic.
    pub topic: Arc<Topic>,
    /// The partition's number.
    pub partition_id: u32,
    /// The partition.
    pub partition: Arc<Partition>,
}

/// Finds the partition a produce request goes to, refusing internal topics.
pub fn route(broker: &Broker, request: &ProduceRequest) -> Result<Route, BrokerError> {
    let topic = broker.topics.get(&request.topic)?;
    if topic.internal {
        return Err(BrokerError::InvalidRequest(format!(
            "{:?} is an internal topic; clients cannot produce to it",
            topic.name
        )));
    }
    let partition_id = partitioner::select(&topic, &request.partition)?;
    let partition = topic.partition(partition_id)?.clone();
    Ok(Route {
        topic,
        partition_id,
        partition,
    })
}

/// Serves one produce request: a run of one.
pub fn produce(broker: &Broker, request: ProduceRequest) -> Outcome {
    let route = match route(broker, &request) {
        Ok(route) => route,
        Err(error) => return Outcome::Now(Err(error)),
    };
    let (answer, answered) = oneshot::channel();
    let mut run = ProduceRun::new(OneShot);
    run.push(route, &request, answer);
    let flushed = run.flush(broker);
    Outcome::Later(Box::pin(async move {
        flushed.await;
        answered
            .await
            .unwrap_or_else(|_| Err(BrokerError::Internal("produce answer lost".into())))
    }))
}

/// Serves `InitProducer`: a new producer id (its allocation may sync a file, so it
/// runs on the blocking pool).
pub async fn init_producer(broker: Arc<Broker>) -> Result<InitProducerResponse, BrokerError> {
    let ids = broker.producer_ids.clone();
    let producer_id = tokio::task::spawn_blocking(move || ids.allocate())
        .await
        .map_err(|e| BrokerError::Internal(format!("allocating a producer id: {e}")))??;
    Ok(InitProducerResponse { producer_id })
}

/// Answers through a one-shot channel per request.
#[derive(Debug, Clone, Copy)]
struct OneShot;

impl Answers for OneShot {
    type Ticket = oneshot::Sender<Answer>;

    async fn answer(&self, ticket: Self::Ticket, answer: Answer) {
        let _ = ticket.send(answer);
    }
}

/// A produce request waiting in a run.
struct Pending<T> {
    ticket: T,
    batch: Bytes,
    /// The idempotent producer's tag, if any.
    producer: Option<ProducerTag>,
    timeout_ms: u32,
    received_us: u64,
    /// When the request joined the run, for the produce latency.
    received: Instant,
}

impl<T> AsRef<[u8]> for Pending<T> {
    fn as_ref(&self) -> &[u8] {
        &self.batch
    }
}

/// A produce request appended, waiting for durability.
struct Stored<T> {
    ticket: T,
    base_offset: u64,
    duplicate: bool,
    traced: Option<TracedAppend>,
    received: Instant,
}

/// Produce requests for one partition at one acknowledgement level, read back to back
/// and not yet appended; their answers go to `A`. See the module documentation.
pub struct ProduceRun<A: Answers> {
    answers: A,
    route: Option<(Route, AckLevel)>,
    pending: Vec<Pending<A::Ticket>>,
    bytes: usize,
    /// The log's answer for each pending batch; kept to reuse its allocation.
    results: Vec<Result<Placed, BrokerError>>,
    /// The same, from a run without idempotent producers.
    appended: Vec<Result<AppendInfo, BrokerError>>,
    /// Each pending batch's producer tag, for a run with idempotent producers.
    tags: Vec<Option<ProducerTag>>,
}

impl<A: Answers> ProduceRun<A> {
    /// An empty run answering through `answers`.
    pub fn new(answers: A) -> ProduceRun<A> {
        ProduceRun {
            answers,
            route: None,
            pending: Vec::new(),
            bytes: 0,
            results: Vec::new(),
            appended: Vec::new(),
            tags: Vec::new(),
        }
    }

    /// Nothing waits to be appended.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The run should be appended now rather than wait for more requests.
    pub fn is_full(&self) -> bool {
        self.bytes >= RUN_FLUSH_BYTES || self.pending.len() >= MAX_BATCHES_PER_WRITE
    }

    /// Whether a request for `route` at `ack` can join: same partition and level, and
    /// room left (a batch of `RUN_FLUSH_BYTES` or more always starts its own run).
    pub fn accepts(&self, route: &Route, ack: AckLevel, batch_bytes: usize) -> bool {
        match &self.route {
            None => true,
            Some((current, level)) => {
                Arc::ptr_eq(&current.partition, &route.partition)
                    && *level == ack
                    && self.pending.len() < MAX_BATCHES_PER_WRITE
                    && self.bytes + batch_bytes <= RUN_FLUSH_BYTES
            }
        }
    }

    /// Adds a request, appending the run first if the request cannot join it and
    /// after if it is then full. A request that cannot be routed is answered at once.
    pub async fn offer(&mut self, broker: &Broker, request: ProduceRequest, ticket: A::Ticket) {
        let route = match route(broker, &request) {
            Ok(route) => route,
            Err(error) => return self.answers.answer(ticket, Err(error)).await,
        };
        if !self.accepts(&route, request.ack, request.batch.len()) {
            self.flush(broker).await;
        }
        self.push(route, &request, ticket);
        if self.is_full() {
            self.flush(broker).await;
        }
    }

    /// Adds a request. The caller checked [`accepts`](Self::accepts) (or flushed).
    pub fn push(&mut self, route: Route, request: &ProduceRequest, ticket: A::Ticket) {
        debug_assert!(self.accepts(&route, request.ack, request.batch.len()));
        self.route.get_or_insert((route, request.ack));
        self.bytes += request.batch.len();
        self.pending.push(Pending {
            ticket,
            batch: request.batch.clone(),
            producer: request.producer.map(|p| ProducerTag {
                producer_id: p.producer_id,
                sequence: p.sequence,
            }),
            timeout_ms: request.timeout_ms,
            received_us: traces::now_us(),
            received: Instant::now(),
        });
    }

    /// Appends the run with one write and answers it: at once for `none` and
    /// `appended` (and for any batch the log refused); for `durable`, from one task
    /// that waits (up to the longest timeout any request of the run asked for) until
    /// the last batch is durable. The write happens before this returns; the returned
    /// future only delivers the immediate answers.
    pub fn flush(
        &mut self,
        broker: &Broker,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut now: Vec<(A::Ticket, Answer)> = Vec::new();
        let answers = self.answers.clone();
        if let Some((route, ack)) = self.route.take() {
            self.append(broker, route, ack, &mut now);
        }
        async move {
            for (ticket, answer) in now {
                answers.answer(ticket, answer).await;
            }
        }
    }

    fn append(
        &mut self,
        broker: &Broker,
        route: Route,
        ack: AckLevel,
        now: &mut Vec<(A::Ticket, Answer)>,
    ) {
        self.bytes = 0;
        if self.pending.iter().any(|p| p.producer.is_some()) {
            self.tags.clear();
            self.tags.extend(self.pending.iter().map(|p| p.producer));
            route
                .partition
                .append_sequenced(&self.pending, &self.tags, &mut self.results);
        } else {
            route
                .partition
                .append_all(&self.pending, &mut self.appended);
            let stored = self.appended.drain(..).map(|r| r.map(Placed::Stored));
            self.results.extend(stored);
        }
        assert_eq!(
            self.results.len(),
            self.pending.len(),
            "one result per appended batch"
        );
        let timeout_ms = self.pending.iter().map(|p| p.timeout_ms).max().unwrap_or(0);
        // One clock read for the whole run: its answers are decided now.
        let appended_at = Instant::now();
        let mut stored = Vec::new();
        let mut durable_target = 0;
        for (request, result) in self.pending.drain(..).zip(self.results.drain(..)) {
            let placed = match result {
                Ok(placed) => placed,
                Err(error) => {
                    now.push((request.ticket, Err(error)));
                    continue;
                }
            };
            let duplicate = matches!(placed, Placed::Duplicate(_));
            // A retry stored nothing: no produce span, the first attempt had it.
            let traced = match placed {
                Placed::Stored(info) => broker.traces.on_produce(
                    &route.topic.name,
                    route.partition_id,
                    &request.batch,
                    info.base_offset,
                    request.received_us,
                ),
                Placed::Duplicate(_) => None,
            };
            if ack == AckLevel::Durable {
                // A duplicate's original lies below anything this run stored, so
                // waiting for the run's end covers it too.
                debug_assert!(
                    duplicate || placed.next_offset() > durable_target,
                    "offsets grow within a run"
                );
                durable_target = durable_target.max(placed.next_offset());
                stored.push(Stored {
                    ticket: request.ticket,
                    base_offset: placed.base_offset(),
                    duplicate,
                    traced,
                    received: request.received,
                });
            } else {
                broker
                    .metrics
                    .produce_answered(ack, request.received, appended_at);
                let answer = response(&route, ack, placed.base_offset(), duplicate);
                now.push((request.ticket, Ok(answer)));
            }
        }
        if stored.is_empty() {
            return;
        }
        let answers = self.answers.clone();
        let traces = broker.traces.clone();
        let metrics = broker.metrics.clone();
        tokio::spawn(async move {
            let timeout = Duration::from_millis(u64::from(timeout_ms.max(1)));
            let durable = route.partition.wait_durable(durable_target, timeout).await;
            answer_durable(&answers, &traces, &metrics, &route, stored, durable).await;
        });
    }
}

/// Answers the stored requests of a durable run once its wait ended.
async fn answer_durable<A: Answers>(
    answers: &A,
    traces: &Traces,
    metrics: &Metrics,
    route: &Route,
    stored: Vec<Stored<A::Ticket>>,
    durable: Result<(), NotDurable>,
) {
    let durable_at = Instant::now();
    for done in stored {
        let answer = match &durable {
            Ok(()) => {
                if let Some(traced) = &done.traced {
                    traces.on_durable(traced);
                }
                metrics.produce_answered(AckLevel::Durable, done.received, durable_at);
                Ok(response(
                    route,
                    AckLevel::Durable,
                    done.base_offset,
                    done.duplicate,
                ))
            }
            Err(error) => Err(BrokerError::from(error.clone())),
        };
        answers.answer(done.ticket, answer).await;
    }
}

/// The answer to an appended request: its offset, or (`none`) only its partition;
/// for a retry of a stored batch, the original's offset.
fn response(route: &Route, ack: AckLevel, base_offset: u64, duplicate: bool) -> Response {
    Response::Produce(ProduceResponse {
        partition: route.partition_id,
        base_offset: (ack != AckLevel::None).then_some(base_offset),
        duplicate,
    })
}
