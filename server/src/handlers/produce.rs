//! Produce: route a batch to a partition, append it, acknowledge at the asked level.
//!
//! Appends run inline on the connection task, in the order requests arrived, so
//! pipelined produces from one connection land in order. Produce requests that arrive
//! back to back for the same partition and acknowledgement level form a [`ProduceRun`]:
//! the connection adds them while more frames are already read, and appends the run
//! with one vectored write when the input runs dry, a different request comes, or the
//! run is full. A burst then costs one system call and, under `always` durability,
//! shares one `fdatasync`, instead of the first request's sync making the others wait
//! for a second one. Only waiting for durability is asynchronous: one task per run.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use protocol::ops::produce::{AckLevel, ProduceRequest, ProduceResponse};
use protocol::ops::Response;
use storage::{AppendInfo, MAX_BATCHES_PER_WRITE};
use tokio::sync::OwnedSemaphorePermit;

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::partition::Partition;
use crate::partitioner;
use crate::reply::Reply;
use crate::topics::Topic;
use crate::traces::{self, TracedAppend};

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

/// A produce request waiting in a run.
struct Pending {
    correlation_id: u32,
    op: u16,
    batch: Bytes,
    timeout_ms: u32,
    received_us: u64,
    permit: OwnedSemaphorePermit,
}

impl AsRef<[u8]> for Pending {
    fn as_ref(&self) -> &[u8] {
        &self.batch
    }
}

/// A produce request appended, waiting for its answer.
struct Stored {
    correlation_id: u32,
    op: u16,
    base_offset: u64,
    permit: OwnedSemaphorePermit,
    traced: Option<TracedAppend>,
}

/// Produce requests for one partition at one acknowledgement level, read back to back
/// on one connection and not yet appended. See the module documentation.
#[derive(Default)]
pub struct ProduceRun {
    route: Option<(Route, AckLevel)>,
    pending: Vec<Pending>,
    bytes: usize,
    /// The log's answer for each pending batch; kept to reuse its allocation.
    results: Vec<Result<AppendInfo, BrokerError>>,
}

impl ProduceRun {
    /// An empty run.
    pub fn new() -> ProduceRun {
        ProduceRun::default()
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

    /// Adds a request. The caller checked [`accepts`](Self::accepts) (or flushed).
    pub fn push(
        &mut self,
        route: Route,
        request: &ProduceRequest,
        correlation_id: u32,
        op: u16,
        permit: OwnedSemaphorePermit,
    ) {
        debug_assert!(self.accepts(&route, request.ack, request.batch.len()));
        self.route.get_or_insert((route, request.ack));
        self.bytes += request.batch.len();
        self.pending.push(Pending {
            correlation_id,
            op,
            batch: request.batch.clone(),
            timeout_ms: request.timeout_ms,
            received_us: traces::now_us(),
            permit,
        });
    }

    /// Appends the run with one write and answers it: at once for `none` and
    /// `appended`; for `durable`, from one task that waits (up to the longest timeout
    /// any request of the run asked for) until the last batch is durable.
    pub async fn flush(&mut self, broker: &Broker, reply: &Reply) {
        let Some((route, ack)) = self.route.take() else {
            return;
        };
        self.bytes = 0;
        route.partition.append_all(&self.pending, &mut self.results);
        let timeout_ms = self.pending.iter().map(|p| p.timeout_ms).max().unwrap_or(0);
        let durable = ack == AckLevel::Durable;
        let mut stored = Vec::new();
        let mut durable_target = 0;
        let appended = self.pending.drain(..).zip(self.results.drain(..));
        for (request, result) in appended {
            let info = match result {
                Ok(info) => info,
                Err(error) => {
                    let (correlation_id, op) = (request.correlation_id, request.op);
                    reply
                        .send(correlation_id, op, Err(error), Some(request.permit))
                        .await;
                    continue;
                }
            };
            let traced = broker.traces.on_produce(
                &route.topic.name,
                route.partition_id,
                &request.batch,
                info.base_offset,
                request.received_us,
            );
            let done = Stored {
                correlation_id: request.correlation_id,
                op: request.op,
                base_offset: info.base_offset,
                permit: request.permit,
                traced,
            };
            if durable {
                durable_target = info.next_offset;
                stored.push(done);
            } else {
                answer(reply, &route, ack, done).await;
            }
        }
        if stored.is_empty() {
            return;
        }
        let reply = reply.clone();
        let spans = broker.traces.clone();
        tokio::spawn(async move {
            let timeout = Duration::from_millis(u64::from(timeout_ms.max(1)));
            match route.partition.wait_durable(durable_target, timeout).await {
                Ok(()) => {
                    for traced in stored.iter().filter_map(|s| s.traced.as_ref()) {
                        spans.on_durable(traced);
                    }
                    for done in stored {
                        answer(&reply, &route, ack, done).await;
                    }
                }
                Err(error) => {
                    for s in stored {
                        reply
                            .send_error(s.correlation_id, s.op, &error, Some(s.permit))
                            .await;
                    }
                }
            }
        });
    }
}

/// Answers an appended request: with its offset, or (`none`) only its partition.
async fn answer(reply: &Reply, route: &Route, ack: AckLevel, done: Stored) {
    let response = ProduceResponse {
        partition: route.partition_id,
        base_offset: (ack != AckLevel::None).then_some(done.base_offset),
    };
    reply
        .send(
            done.correlation_id,
            done.op,
            Ok(Response::Produce(response)),
            Some(done.permit),
        )
        .await;
}
