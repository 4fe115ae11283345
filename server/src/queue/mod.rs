//! Queue groups: work-queue delivery with per-message acks, ack deadlines, retries
//! with backoff, and dead-letter topics, on top of the partition logs.
//!
//! A queue group delivers each message of its topic to one live member at a time
//! (any member, not one per partition). Its state (what is in flight, waiting for a
//! retry, settled) lives in a pure [`state::QueueState`]; every change is an event
//! appended to the internal topic `__queue_state` ([`store`]) before anyone learns of
//! it, so a restart (or `kill -9`) resumes with the same attempts, retries and dead
//! letters. One dispatcher task per group hands out messages under the members'
//! credit: due retries first, then new messages, round-robin over members and
//! partitions, so a message waiting for its retry never holds up the ones behind it.

pub mod backoff;
pub mod state;
pub mod store;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use protocol::batch::{split_batches, BatchBuilder, BatchHeader, BatchView};
use protocol::ops::group::QueueCounts;
use protocol::ops::subscribe::Delivery;
use protocol::ops::topic::ConfigEntry;
use protocol::Message;
use tokio::sync::{mpsc, Notify};

use crate::error::BrokerError;
use crate::now_ms;
use crate::shutdown::Shutdown;
use crate::topics::{QueueConfig, Topic, Topics};
use crate::traces::{self, Traces};
use backoff::Backoff;
use protocol::trace::{derived_span_id, TraceParent};
use state::{Event, QueuePolicy, QueueState, Refusal};
use store::QueueStore;

/// Unsettled messages tracked per partition of a queue group, at most.
pub const MAX_UNACKED_PER_PARTITION: usize = 10_000;
/// Longest a dispatcher sleeps without looking again.
const IDLE_WAIT: Duration = Duration::from_millis(250);
/// Due retries handed out per dispatch round, at most.
const RETRIES_PER_ROUND: usize = 1024;
/// Bytes read per delivery of new messages, at most.
const DELIVERY_MAX_BYTES: usize = 1024 * 1024;
/// Queue-state records appended between compactions, at least.
const COMPACT_AFTER_RECORDS: u64 = 100_000;
/// Pause before trying again after a dead letter could not be copied.
const DEAD_LETTER_RETRY: Duration = Duration::from_millis(500);

/// The policy of a group: the topic's queue settings with the group's overrides.
pub fn policy(config: &QueueConfig) -> QueuePolicy {
    QueuePolicy {
        ack_deadline_ms: config.ack_deadline_ms,
        max_attempts: config.max_delivery_attempts,
        backoff: Backoff {
            initial_ms: config.retry_backoff_ms,
            multiplier: f64::from(config.retry_backoff_multiplier_milli) / 1000.0,
            max_ms: config.retry_backoff_max_ms,
            jitter: f64::from(config.retry_jitter_milli) / 1000.0,
        },
        max_unacked_per_partition: MAX_UNACKED_PER_PARTITION,
    }
}

/// A member's push subscription.
#[derive(Debug)]
struct Sink {
    subscription_id: u64,
    outbound: mpsc::Sender<Message>,
    credit_messages: u64,
    credit_bytes: u64,
}

#[derive(Debug)]
struct Inner {
    state: QueueState,
    /// Members with an open subscription, by member id.
    sinks: BTreeMap<Arc<str>, Sink>,
    next_member: usize,
    next_partition: usize,
    /// A member went away since the last dispatch round.
    members_left: bool,
    /// Trace context of traced messages delivered and not yet settled, with the
    /// attempt they were last delivered as (their spans' parent; an ack may already
    /// have removed the entry that counted it).
    traced: HashMap<(u32, u64), (TraceParent, u32)>,
}

/// What one dispatch round produced: deliveries to send, messages to dead-letter, and
/// the queue-state offset that must be durable before anything is sent.
type Round = (
    Vec<(mpsc::Sender<Message>, Delivery)>,
    Vec<(u32, u64, String)>,
    u64,
);

/// One queue group.
#[derive(Debug)]
pub struct QueueGroup {
    name: String,
    topic: Arc<Topic>,
    config: Mutex<QueueConfig>,
    inner: Mutex<Inner>,
    wake: Notify,
    store: Arc<QueueStore>,
    topics: Arc<Topics>,
    traces: Arc<Traces>,
}

fn refusal(refusal: Refusal) -> BrokerError {
    match refusal {
        Refusal::NotInFlight { partition, offset } => {
            BrokerError::NotInFlight { partition, offset }
        }
        Refusal::NoPartition(partition) => {
            BrokerError::InvalidRequest(format!("no partition {partition}"))
        }
    }
}

impl QueueGroup {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends events while the state lock is held, so the log order is the order of
    /// the changes. Returns the offset to wait on for durability.
    fn persist(&self, events: &[Event]) -> Result<u64, BrokerError> {
        self.store.append(&self.name, &self.topic.name, events)
    }

    /// The topic it consumes.
    pub fn topic_name(&self) -> &str {
        &self.topic.name
    }

    /// Per-partition counts.
    pub fn counts(&self, partition: u32) -> QueueCounts {
        let counts = self.lock().state.counts(partition);
        QueueCounts {
            in_flight: counts.in_flight,
            waiting_retry: counts.waiting_retry,
            dead_lettered: counts.dead_lettered,
        }
    }

    /// Everything below this offset of `partition` is settled.
    pub fn floor(&self, partition: u32) -> Option<u64> {
        self.lock().state.partition(partition).map(|p| p.floor())
    }

    /// Records the broker spans of state changes of traced messages.
    fn trace_events(&self, inner: &mut Inner, events: &[Event]) {
        if inner.traced.is_empty() {
            return;
        }
        let now = traces::now_us();
        let (group, topic) = (self.name.as_str(), self.topic.name.as_str());
        for event in events {
            match event {
                Event::Acked { partition, offsets } => {
                    for offset in offsets {
                        let Some((context, attempt)) = inner.traced.remove(&(*partition, *offset))
                        else {
                            continue;
                        };
                        let parent = traces::deliver_span_id(
                            &context, group, topic, *partition, *offset, attempt,
                        );
                        let id = derived_span_id(&context.trace_id, &[b"ack", &parent]);
                        let mut attributes = traces::message_attributes(topic, *partition, *offset);
                        attributes.push(("group".into(), group.into()));
                        self.traces
                            .span(&context, id, parent, "ack", now, now, attributes);
                    }
                }
                Event::Failed {
                    partition,
                    offset,
                    reason,
                    due_ms,
                } => {
                    let Some((context, attempt)) =
                        inner.traced.get(&(*partition, *offset)).copied()
                    else {
                        continue;
                    };
                    let nack = self.trace_nack(&context, *partition, *offset, attempt, reason, now);
                    let mut attributes = traces::message_attributes(topic, *partition, *offset);
                    attributes.push(("attempt".into(), attempt.to_string()));
                    let due_us = (*due_ms).max(0) as u64 * 1000;
                    let id = derived_span_id(&context.trace_id, &[b"retry", &nack]);
                    self.traces.span(
                        &context,
                        id,
                        nack,
                        "retry",
                        now,
                        due_us.max(now),
                        attributes,
                    );
                }
                Event::DeadLettering {
                    partition,
                    offset,
                    reason,
                } => {
                    let Some((context, attempt)) =
                        inner.traced.get(&(*partition, *offset)).copied()
                    else {
                        continue;
                    };
                    self.trace_nack(&context, *partition, *offset, attempt, reason, now);
                }
                _ => {}
            }
        }
    }

    fn trace_nack(
        &self,
        context: &TraceParent,
        partition: u32,
        offset: u64,
        attempt: u32,
        reason: &str,
        now: u64,
    ) -> [u8; 8] {
        let (group, topic) = (self.name.as_str(), self.topic.name.as_str());
        let parent = traces::deliver_span_id(context, group, topic, partition, offset, attempt);
        let id = traces::nack_span_id(context, group, topic, partition, offset, attempt);
        let mut attributes = traces::message_attributes(topic, partition, offset);
        attributes.extend([
            ("group".into(), group.into()),
            ("attempt".into(), attempt.to_string()),
            ("reason".into(), reason.into()),
        ]);
        self.traces
            .span(context, id, parent, "nack", now, now, attributes);
        id
    }

    /// Records deliver spans for the traced messages of a delivery.
    fn trace_delivery(
        &self,
        traced: &mut HashMap<(u32, u64), (TraceParent, u32)>,
        state: &QueueState,
        delivery: &Delivery,
    ) {
        let found =
            self.traces
                .traced_in(&delivery.batches, delivery.from_offset, delivery.to_offset);
        if found.is_empty() {
            return;
        }
        let now = traces::now_us();
        let (group, topic) = (self.name.as_str(), self.topic.name.as_str());
        for t in found {
            let attempt = attempt_of(state, delivery.partition, t.offset);
            traced.insert((delivery.partition, t.offset), (t.context, attempt));
            let parent = traces::produce_span_id(&t.context, topic, delivery.partition, t.offset);
            let id = traces::deliver_span_id(
                &t.context,
                group,
                topic,
                delivery.partition,
                t.offset,
                attempt,
            );
            let mut attributes = traces::message_attributes(topic, delivery.partition, t.offset);
            attributes.extend([
                ("group".into(), group.into()),
                ("attempt".into(), attempt.to_string()),
            ]);
            self.traces
                .span(&t.context, id, parent, "deliver", now, now, attributes);
        }
    }

    /// Acks offsets; returns once the acks are durable.
    pub async fn ack(&self, partition: u32, offsets: &[u64]) -> Result<(), BrokerError> {
        let wait = {
            let mut inner = self.lock();
            let event = inner.state.ack(partition, offsets).map_err(refusal)?;
            self.trace_events(&mut inner, std::slice::from_ref(&event));
            self.persist(&[event])?
        };
        self.wake.notify_one();
        self.store.wait_durable(wait).await
    }

    /// Nacks one message: redelivery after `delay_ms` (or the backoff), or dead letter.
    pub async fn nack(
        &self,
        partition: u32,
        offset: u64,
        reason: &str,
        delay_ms: Option<u64>,
    ) -> Result<(), BrokerError> {
        let wait = {
            let mut inner = self.lock();
            let event = inner
                .state
                .fail(partition, offset, reason, delay_ms, now_ms())
                .map_err(refusal)?;
            self.trace_events(&mut inner, std::slice::from_ref(&event));
            self.persist(&[event])?
        };
        self.wake.notify_one();
        self.store.wait_durable(wait).await
    }

    /// Extends the ack deadline of a message in flight.
    pub fn extend(&self, partition: u32, offset: u64, extend_ms: u64) -> Result<(), BrokerError> {
        self.lock()
            .state
            .extend(partition, offset, extend_ms, now_ms())
            .map_err(refusal)?;
        self.wake.notify_one();
        Ok(())
    }

    fn attach(&self, member: &str, sink: Sink) {
        self.lock().sinks.insert(Arc::from(member), sink);
        self.wake.notify_one();
    }

    fn credit(&self, member: &str, subscription_id: u64, messages: u32, bytes: u64) -> bool {
        let mut inner = self.lock();
        let Some(sink) = inner
            .sinks
            .get_mut(member)
            .filter(|s| s.subscription_id == subscription_id)
        else {
            return false;
        };
        sink.credit_messages = sink.credit_messages.saturating_add(u64::from(messages));
        sink.credit_bytes = sink.credit_bytes.saturating_add(bytes);
        drop(inner);
        self.wake.notify_one();
        true
    }

    /// The member's subscription is gone (unsubscribe, disconnect, leave, expiry): its
    /// deliveries in flight fail at the next dispatch round.
    pub fn detach(&self, member: &str, subscription_id: Option<u64>) {
        let mut inner = self.lock();
        if inner
            .sinks
            .get(member)
            .is_some_and(|s| subscription_id.is_none_or(|id| s.subscription_id == id))
        {
            inner.sinks.remove(member);
            inner.members_left = true;
        }
        drop(inner);
        self.wake.notify_one();
    }

    /// One dispatch round: expire, hand out due retries and new messages. Returns the
    /// deliveries to send, the messages to dead-letter, and the durability offset.
    fn dispatch_round(&self) -> Result<Round, BrokerError> {
        let mut inner = self.lock();
        let now = now_ms();
        let Inner {
            state,
            sinks,
            next_member,
            next_partition,
            members_left,
            traced,
        } = &mut *inner;
        // Only after a member went away is it worth scanning for its deliveries.
        let gone = |member: &str| !sinks.contains_key(member);
        let check_gone: Option<&dyn Fn(&str) -> bool> = if std::mem::take(members_left) {
            Some(&gone)
        } else {
            None
        };
        let mut events = state.expire(now, check_gone);
        for part in &self.topic.partitions {
            events.extend(state.skip_before(part.id, part.start_offset()));
        }
        let mut deliveries = Vec::new();
        let members: Vec<Arc<str>> = sinks.keys().cloned().collect();
        let pick = |sinks: &BTreeMap<Arc<str>, Sink>, next: &mut usize| -> Option<Arc<str>> {
            for i in 0..members.len() {
                let member = &members[(*next + i) % members.len()];
                if sinks
                    .get(member)
                    .is_some_and(|s| s.credit_messages > 0 && s.credit_bytes > 0)
                {
                    *next = (*next + i + 1) % members.len();
                    return Some(member.clone());
                }
            }
            None
        };
        // Due retries first, one message per delivery.
        if !members.is_empty() {
            for (partition, offset) in state.due_retries(now, RETRIES_PER_ROUND) {
                let Some(member) = pick(sinks, next_member) else {
                    break;
                };
                let Ok(part) = self.topic.partition(partition) else {
                    continue;
                };
                let Ok(chunk) = part.read(offset, 1) else {
                    continue;
                };
                if chunk.is_empty() {
                    continue;
                }
                let event = state.deliver(partition, offset, offset + 1, &member, now);
                let attempt = match &event {
                    Event::Delivered { attempt, .. } => *attempt,
                    _ => 1,
                };
                events.push(event);
                let Some(sink) = sinks.get_mut(&member) else {
                    break;
                };
                sink.credit_messages = sink.credit_messages.saturating_sub(1);
                sink.credit_bytes = sink.credit_bytes.saturating_sub(chunk.bytes.len() as u64);
                let delivery = Delivery {
                    subscription_id: sink.subscription_id,
                    partition,
                    from_offset: offset,
                    to_offset: offset + 1,
                    attempt,
                    batches: chunk.bytes,
                };
                self.trace_delivery(traced, state, &delivery);
                deliveries.push((sink.outbound.clone(), delivery));
            }
        }
        // Then new messages, round-robin over partitions.
        let partitions = state.partition_count();
        let mut idle_partitions = 0;
        while !members.is_empty() && partitions > 0 && idle_partitions < partitions {
            let partition = (*next_partition % partitions as usize) as u32;
            *next_partition = next_partition.wrapping_add(1);
            let Some(member) = pick(sinks, next_member) else {
                break;
            };
            let sink_credit = sinks.get(&member).map_or(0, |s| s.credit_messages);
            let Ok(part) = self.topic.partition(partition) else {
                break;
            };
            let Some((from, _)) = state.new_range(partition, part.visible_end(), sink_credit)
            else {
                idle_partitions += 1;
                continue;
            };
            let chunk = match part.read(from, DELIVERY_MAX_BYTES) {
                Ok(chunk) if !chunk.is_empty() => chunk,
                _ => {
                    idle_partitions += 1;
                    continue;
                }
            };
            idle_partitions = 0;
            let Some((_, limit)) = state.new_range(partition, chunk.next_offset, sink_credit)
            else {
                continue;
            };
            // Whole batches up to `limit`; the last one may be cut by `to_offset`.
            let mut end_bytes = 0;
            let mut to = from;
            for batch in split_batches(chunk.bytes.clone()).flatten() {
                let Ok(header) = BatchHeader::parse(&batch) else {
                    break;
                };
                if to >= limit {
                    break;
                }
                end_bytes += batch.len();
                to = header.next_offset().min(limit);
            }
            if to <= from {
                continue;
            }
            let Some(sink) = sinks.get_mut(&member) else {
                break;
            };
            events.push(state.deliver(partition, from, to, &member, now));
            sink.credit_messages = sink.credit_messages.saturating_sub(to - from);
            sink.credit_bytes = sink.credit_bytes.saturating_sub(end_bytes as u64);
            let delivery = Delivery {
                subscription_id: sink.subscription_id,
                partition,
                from_offset: from,
                to_offset: to,
                attempt: 1,
                batches: chunk.bytes.slice(..end_bytes),
            };
            self.trace_delivery(traced, state, &delivery);
            deliveries.push((sink.outbound.clone(), delivery));
        }
        // Every message out of attempts (from a nack, an expiry, or before a restart)
        // is copied now; the dispatcher finishes those copies before its next round.
        let dead: Vec<(u32, u64, String)> = state
            .dead_lettering()
            .into_iter()
            .map(|(partition, offset)| {
                let reason = state
                    .partition(partition)
                    .and_then(|p| p.entry(offset))
                    .and_then(|e| e.reason.clone());
                (partition, offset, reason.unwrap_or_default())
            })
            .collect();
        self.trace_events(&mut inner, &events);
        let wait = self.persist(&events)?;
        Ok((deliveries, dead, wait))
    }

    /// Copies a message that ran out of attempts to the dead-letter topic, then
    /// settles it.
    async fn dead_letter(
        &self,
        partition: u32,
        offset: u64,
        reason: &str,
    ) -> Result<(), BrokerError> {
        let (attempts, first_ms, last_ms) = {
            let inner = self.lock();
            let entry = inner
                .state
                .partition(partition)
                .and_then(|p| p.entry(offset));
            entry.map_or((0, 0, 0), |e| (e.attempts, e.first_ms, e.last_ms))
        };
        let source = self.topic.partition(partition)?.clone();
        let chunk = source.read(offset, 1)?;
        let source_error = |e: protocol::batch::BatchError| {
            BrokerError::Internal(format!("dead letter source: {e}"))
        };
        let batch = split_batches(chunk.bytes)
            .next()
            .ok_or_else(|| {
                BrokerError::Internal(format!("offset {offset} not found for dead-lettering"))
            })?
            .map_err(source_error)?;
        let view = BatchView::new(&batch).map_err(source_error)?;
        let record = view
            .records()
            .flatten()
            .find(|r| r.offset == offset)
            .ok_or_else(|| {
                BrokerError::Internal(format!("offset {offset} not found for dead-lettering"))
            })?;
        let dlq_name = self
            .config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .dead_letter_topic(&self.topic.name);
        let extra: Vec<(String, Vec<u8>)> = vec![
            (
                "dlq.original_topic".into(),
                self.topic.name.clone().into_bytes(),
            ),
            (
                "dlq.original_partition".into(),
                partition.to_string().into_bytes(),
            ),
            (
                "dlq.original_offset".into(),
                offset.to_string().into_bytes(),
            ),
            ("dlq.group".into(), self.name.clone().into_bytes()),
            ("dlq.attempts".into(), attempts.to_string().into_bytes()),
            ("dlq.reason".into(), reason.as_bytes().to_vec()),
            (
                "dlq.first_delivery_ms".into(),
                first_ms.to_string().into_bytes(),
            ),
            (
                "dlq.last_delivery_ms".into(),
                last_ms.to_string().into_bytes(),
            ),
        ];
        let mut headers: Vec<(&str, &[u8])> = Vec::new();
        for header in record.headers().flatten() {
            if !header.0.starts_with("dlq.") {
                headers.push(header);
            }
        }
        headers.extend(extra.iter().map(|(k, v)| (k.as_str(), v.as_slice())));
        let mut builder = BatchBuilder::new();
        builder
            .push(record.timestamp_ms, record.key, record.value, &headers)
            .map_err(|e| BrokerError::Internal(format!("dead letter record: {e}")))?;
        let batch = builder.finish();
        let dlq = match self.topics.get(&dlq_name) {
            Ok(topic) => topic,
            Err(_) => {
                let topics = self.topics.clone();
                let mut config = self.topic.config.clone();
                config.partitions = 1;
                config.queue = QueueConfig::default();
                let name = dlq_name.clone();
                let created =
                    tokio::task::spawn_blocking(move || topics.create(&name, config, false)).await;
                match created.map_err(|e| BrokerError::Internal(e.to_string()))? {
                    Ok(topic) => topic,
                    Err(BrokerError::TopicExists(_)) => self.topics.get(&dlq_name)?,
                    Err(e) => return Err(e),
                }
            }
        };
        let target = dlq.partition(0)?.clone();
        let info = target.append(&batch)?;
        target
            .wait_durable(info.next_offset, Duration::from_secs(30))
            .await?;
        let wait = {
            let mut inner = self.lock();
            let event = inner
                .state
                .dead_lettered(partition, offset)
                .map_err(refusal)?;
            if let Some((context, _)) = inner.traced.remove(&(partition, offset)) {
                let now = traces::now_us();
                let parent = traces::nack_span_id(
                    &context,
                    &self.name,
                    &self.topic.name,
                    partition,
                    offset,
                    attempts,
                );
                let id = derived_span_id(&context.trace_id, &[b"dead-letter", &parent]);
                let mut attributes =
                    traces::message_attributes(&self.topic.name, partition, offset);
                attributes.extend([
                    ("group".into(), self.name.clone()),
                    ("attempts".into(), attempts.to_string()),
                    ("dead_letter_topic".into(), dlq_name.clone()),
                ]);
                self.traces
                    .span(&context, id, parent, "dead-letter", now, now, attributes);
            }
            self.persist(&[event])?
        };
        tracing::info!(group = %self.name, topic = %self.topic.name, partition, offset, attempts, dlq = %dlq_name, "dead-lettered");
        self.store.wait_durable(wait).await
    }

    /// Snapshot events of the whole group, appended (for compaction); returns the
    /// offset of the snapshot's first record.
    fn snapshot(&self) -> Result<u64, BrokerError> {
        let inner = self.lock();
        let first = self.store.end_offset();
        self.persist(&inner.state.snapshot())?;
        Ok(first)
    }
}

/// Runs a group's dispatcher until shutdown.
async fn run_dispatcher(group: Arc<QueueGroup>, mut shutdown: Shutdown) {
    loop {
        if shutdown.is_shutdown() {
            return;
        }
        let notified = group.wake.notified();
        match group.dispatch_round() {
            Ok((deliveries, dead, wait)) => {
                let busy = !deliveries.is_empty() || !dead.is_empty();
                if busy {
                    // Nothing is sent before the delivery is recorded durably.
                    if let Err(error) = group.store.wait_durable(wait).await {
                        tracing::error!(group = %group.name, %error, "queue state not durable; stopping delivery");
                        return;
                    }
                }
                for (outbound, delivery) in deliveries {
                    let _ = outbound.send(Message::Push(delivery)).await;
                }
                let mut dead_letter_failed = false;
                for (partition, offset, reason) in dead {
                    if let Err(error) = group.dead_letter(partition, offset, &reason).await {
                        tracing::warn!(group = %group.name, partition, offset, %error, "dead-lettering failed; will retry");
                        dead_letter_failed = true;
                    }
                }
                if dead_letter_failed {
                    // A failure that persists (disk full, topic creation refused) must
                    // not turn this loop into a spin; retry after a pause.
                    tokio::select! {
                        _ = tokio::time::sleep(DEAD_LETTER_RETRY) => {}
                        _ = shutdown.recv() => return,
                    }
                }
                if busy {
                    continue;
                }
            }
            Err(error) => tracing::error!(group = %group.name, %error, "dispatch failed"),
        }
        // Sleep until something changes, something comes due, or new data arrives.
        let wakeup = group.lock().state.next_wakeup_ms();
        let sleep = wakeup
            .map(|at| {
                Duration::from_millis((at - now_ms()).clamp(1, IDLE_WAIT.as_millis() as i64) as u64)
            })
            .unwrap_or(IDLE_WAIT);
        let reads: Vec<(Arc<crate::partition::Partition>, u64)> = {
            let inner = group.lock();
            group
                .topic
                .partitions
                .iter()
                // Wait for data past what is already readable: a backlog the round
                // could not hand out (no credit, too many unacked) must not wake this
                // loop at once; credit, acks and new members wake it through `wake`.
                .filter_map(|p| {
                    let read = inner.state.partition(p.id)?.read;
                    Some((p.clone(), read.max(p.visible_end())))
                })
                .collect()
        };
        let data = async {
            let waits: Vec<_> = reads
                .iter()
                .map(|(p, read)| Box::pin(p.wait_for_data(*read, sleep)))
                .collect();
            if waits.is_empty() {
                tokio::time::sleep(sleep).await;
            } else {
                futures_util::future::select_all(waits).await;
            }
        };
        tokio::select! {
            _ = notified => {}
            _ = data => {}
            _ = shutdown.recv() => return,
        }
    }
}

/// All queue groups.
#[derive(Debug)]
pub struct Queues {
    topics: Arc<Topics>,
    store: Arc<QueueStore>,
    groups: Mutex<HashMap<String, Arc<QueueGroup>>>,
    shutdown: Shutdown,
    /// subscription id -> (group, member), for credit and unsubscribe.
    subscriptions: Mutex<HashMap<u64, (Arc<QueueGroup>, String)>>,
    traces: Arc<Traces>,
    /// Records left on `__queue_state` by the last compaction: the next one waits
    /// until the log holds twice that, so a large live state is not rewritten on
    /// every tick.
    compacted_records: AtomicU64,
}

impl Queues {
    /// Opens the queue-state topic, replays it, and starts a dispatcher for every
    /// group found (blocking I/O; call inside the runtime).
    pub fn open(
        topics: Arc<Topics>,
        shutdown: Shutdown,
        traces: Arc<Traces>,
    ) -> Result<Queues, BrokerError> {
        let (store, replayed) = QueueStore::open(&topics)?;
        let manager = Queues {
            topics,
            store: Arc::new(store),
            groups: Mutex::new(HashMap::new()),
            shutdown,
            subscriptions: Mutex::new(HashMap::new()),
            traces,
            compacted_records: AtomicU64::new(0),
        };
        for ((group, topic), events) in replayed {
            let Ok(topic) = manager.topics.get(&topic) else {
                continue;
            };
            let queue_group = manager.create_group(&group, topic, &[], false)?;
            let mut inner = queue_group.lock();
            for event in &events {
                inner.state.apply(event);
            }
            drop(inner);
            tracing::info!(group, events = events.len(), "restored queue group");
        }
        Ok(manager)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<QueueGroup>>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn create_group(
        &self,
        name: &str,
        topic: Arc<Topic>,
        overrides: &[ConfigEntry],
        latest: bool,
    ) -> Result<Arc<QueueGroup>, BrokerError> {
        let config = group_config(&topic, overrides)?;
        let starts: Vec<u64> = topic
            .partitions
            .iter()
            .map(|p| {
                if latest {
                    p.visible_end()
                } else {
                    p.start_offset()
                }
            })
            .collect();
        let group = Arc::new(QueueGroup {
            name: name.to_string(),
            topic: topic.clone(),
            config: Mutex::new(config.clone()),
            inner: Mutex::new(Inner {
                state: QueueState::new(policy(&config), &starts),
                sinks: BTreeMap::new(),
                next_member: 0,
                next_partition: 0,
                members_left: false,
                traced: HashMap::new(),
            }),
            wake: Notify::new(),
            store: self.store.clone(),
            topics: self.topics.clone(),
            traces: self.traces.clone(),
        });
        self.lock().insert(name.to_string(), group.clone());
        tokio::spawn(run_dispatcher(group.clone(), self.shutdown.clone()));
        Ok(group)
    }

    /// The group, created if new (starting at each partition's start, or its end with
    /// `latest`); `overrides` (from a join) replace its policy.
    pub fn ensure_group(
        &self,
        name: &str,
        topic: &str,
        overrides: &[ConfigEntry],
        latest: bool,
    ) -> Result<Arc<QueueGroup>, BrokerError> {
        let topic = self.topics.get(topic)?;
        if let Some(group) = self.lock().get(name).cloned() {
            if group.topic.name != topic.name {
                return Err(BrokerError::InvalidRequest(format!(
                    "queue group {name:?} consumes {:?}",
                    group.topic.name
                )));
            }
            if !overrides.is_empty() {
                let config = group_config(&topic, overrides)?;
                group.lock().state.policy = policy(&config);
                *group.config.lock().unwrap_or_else(|p| p.into_inner()) = config;
            }
            return Ok(group);
        }
        self.create_group(name, topic, overrides, latest)
    }

    /// The group, if it exists.
    pub fn get(&self, name: &str) -> Option<Arc<QueueGroup>> {
        self.lock().get(name).cloned()
    }

    fn group(&self, name: &str) -> Result<Arc<QueueGroup>, BrokerError> {
        self.get(name)
            .ok_or_else(|| BrokerError::UnknownGroup(name.to_string()))
    }

    /// Attaches a member's push subscription.
    pub fn subscribe(
        &self,
        group: &str,
        member: &str,
        subscription_id: u64,
        outbound: mpsc::Sender<Message>,
        credit_messages: u32,
        credit_bytes: u64,
    ) -> Result<(), BrokerError> {
        let queue_group = self.group(group)?;
        queue_group.attach(
            member,
            Sink {
                subscription_id,
                outbound,
                credit_messages: u64::from(credit_messages),
                credit_bytes,
            },
        );
        self.subscriptions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(subscription_id, (queue_group, member.to_string()));
        Ok(())
    }

    /// Adds credit to a queue subscription; `false` if it is not one.
    pub fn credit(&self, subscription_id: u64, messages: u32, bytes: u64) -> bool {
        let subscriptions = self.subscriptions.lock().unwrap_or_else(|p| p.into_inner());
        match subscriptions.get(&subscription_id) {
            Some((group, member)) => group.credit(member, subscription_id, messages, bytes),
            None => false,
        }
    }

    /// Closes a queue subscription; `false` if it is not one.
    pub fn unsubscribe(&self, subscription_id: u64) -> bool {
        let removed = self
            .subscriptions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&subscription_id);
        match removed {
            Some((group, member)) => {
                group.detach(&member, Some(subscription_id));
                true
            }
            None => false,
        }
    }

    /// A member left or expired: its deliveries in flight go back to the queue.
    pub fn member_gone(&self, group: &str, member: &str) {
        if let Some(group) = self.get(group) {
            group.detach(member, None);
        }
    }

    /// Acks.
    pub async fn ack(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
        offsets: &[u64],
    ) -> Result<(), BrokerError> {
        let group = self.checked(group, topic)?;
        group.ack(partition, offsets).await
    }

    /// Nacks.
    pub async fn nack(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
        offset: u64,
        reason: &str,
        delay_ms: Option<u64>,
    ) -> Result<(), BrokerError> {
        let group = self.checked(group, topic)?;
        group.nack(partition, offset, reason, delay_ms).await
    }

    /// Extends a deadline.
    pub fn extend(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
        offset: u64,
        extend_ms: u64,
    ) -> Result<(), BrokerError> {
        self.checked(group, topic)?
            .extend(partition, offset, extend_ms)
    }

    fn checked(&self, group: &str, topic: &str) -> Result<Arc<QueueGroup>, BrokerError> {
        let queue_group = self.group(group)?;
        if queue_group.topic.name != topic {
            return Err(BrokerError::InvalidRequest(format!(
                "queue group {group:?} consumes {:?}, not {topic:?}",
                queue_group.topic.name
            )));
        }
        Ok(queue_group)
    }

    /// Groups known (live or restored), with their topic.
    pub fn groups(&self) -> Vec<(String, String)> {
        let mut out: Vec<_> = self
            .lock()
            .values()
            .map(|g| (g.name.clone(), g.topic.name.clone()))
            .collect();
        out.sort();
        out
    }

    /// Appends a snapshot of every group and truncates the log before the oldest, once
    /// it holds enough records to be worth it: at least `COMPACT_AFTER_RECORDS`, and
    /// twice what the last compaction left.
    pub fn compact(&self) -> Result<(), BrokerError> {
        let threshold =
            COMPACT_AFTER_RECORDS.max(2 * self.compacted_records.load(Ordering::Relaxed));
        if self.store.len() < threshold {
            return Ok(());
        }
        // The end is read under the groups lock: every event below it belongs to a
        // group in this list, so truncating up to it cuts no group's history short.
        let (groups, mut oldest) = {
            let groups = self.lock();
            let end = self.store.end_offset();
            (groups.values().cloned().collect::<Vec<_>>(), end)
        };
        for group in groups {
            oldest = oldest.min(group.snapshot()?);
        }
        self.store.truncate_before(oldest)?;
        self.compacted_records
            .store(self.store.len(), Ordering::Relaxed);
        Ok(())
    }
}

/// The topic's queue settings with a group's `overrides` (from a join) applied and
/// checked: only queue settings may be overridden.
fn group_config(topic: &Topic, overrides: &[ConfigEntry]) -> Result<QueueConfig, BrokerError> {
    let mut config = topic.config.queue.clone();
    for entry in overrides {
        if !config.apply_entry(&entry.key, &entry.value)? {
            return Err(BrokerError::InvalidConfig(format!(
                "{:?} is not a queue setting; per-group overrides take {}",
                entry.key,
                crate::topics::QUEUE_CONFIG_KEYS.join(", ")
            )));
        }
    }
    config.validate()?;
    Ok(config)
}

/// Compacts the queue-state topic now and then, until shutdown.
pub async fn run_compaction(manager: Arc<Queues>, mut shutdown: Shutdown) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.recv() => return,
        }
        let manager = manager.clone();
        let outcome = tokio::task::spawn_blocking(move || manager.compact()).await;
        if let Ok(Err(error)) = outcome {
            tracing::warn!(%error, "queue state compaction failed");
        }
    }
}

/// Deliveries so far of a message.
fn attempt_of(state: &QueueState, partition: u32, offset: u64) -> u32 {
    state
        .partition(partition)
        .and_then(|p| p.entry(offset))
        .map_or(1, |e| e.attempts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topics::TopicConfig;

    fn entry(key: &str, value: &str) -> ConfigEntry {
        ConfigEntry {
            key: key.into(),
            value: value.into(),
        }
    }

    #[tokio::test]
    async fn overrides_are_checked_the_same_on_a_new_and_an_existing_group() {
        let dir = tempfile::tempdir().unwrap();
        let topics = Arc::new(Topics::open(dir.path()).unwrap());
        let config = TopicConfig {
            partitions: 1,
            ..TopicConfig::internal_default()
        };
        topics.create("jobs", config, false).unwrap();
        let shutdown = crate::shutdown::ShutdownSignal::new();
        let traces = Traces::open(&topics, shutdown.subscribe(), 0.0).unwrap();
        let manager = Queues::open(topics, shutdown.subscribe(), traces).unwrap();
        let unknown = [entry("segment_bytes", "4096")];
        assert!(manager.ensure_group("g", "jobs", &unknown, false).is_err());
        manager
            .ensure_group("g", "jobs", &[entry("max_delivery_attempts", "7")], false)
            .unwrap();
        assert!(
            manager.ensure_group("g", "jobs", &unknown, false).is_err(),
            "an existing group refuses non-queue settings too"
        );
        let group = manager.get("g").unwrap();
        assert_eq!(group.lock().state.policy.max_attempts, 7);
    }
}
