//! One queue group: its delivery state, the members that receive from it, and the
//! operations members call (ack, nack, extend) and that the dispatcher runs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use protocol::internal::queue::{QueueEvent, QueueRecord};
use protocol::ops::group::QueueCounts;
use protocol::trace::TraceParent;
use tokio::sync::Notify;

use super::config::QueueConfig;
use super::state::{Now, QueueState, Refusal};
use crate::clock::Clock;
use crate::delivery::{Credit, Pushes};
use crate::error::BrokerError;
use crate::internal::InternalLog;
use crate::metrics::Metrics;
use crate::tasks::Tasks;
use crate::topics::{Topic, Topics};
use crate::traces::{At, Traces};

/// A member's push subscription.
#[derive(Debug)]
pub(super) struct Sink {
    pub(super) subscription_id: u64,
    pub(super) pushes: Pushes,
    pub(super) credit: Credit,
    /// A lease of this member expired: it gets no new deliveries until this monotonic
    /// time (one ack deadline later) or until it grants credit again, whichever comes
    /// first (its client grants credit as it settles). So a member that stopped
    /// reading holds at most what it had, its expired messages go to the others, and a
    /// member that was only slow is back in one deadline.
    pub(super) paused_until_mono_ms: Option<u64>,
}

/// What the group's lock guards.
#[derive(Debug)]
pub(super) struct Inner {
    pub(super) state: QueueState,
    /// Members with an open subscription, by member id.
    pub(super) sinks: BTreeMap<Arc<str>, Sink>,
    /// Members that take messages by pulling them ([`QueueGroup::pull`]) instead of a
    /// subscription: present until they leave or expire, so their leases are not
    /// taken for a gone member's. Bounded by the group's members.
    pub(super) pullers: BTreeSet<Arc<str>>,
    /// Where the round-robin over members and over partitions goes on.
    pub(super) next_member: usize,
    pub(super) next_partition: usize,
    /// A member went away since the last dispatch round.
    pub(super) members_left: bool,
    /// Trace context of traced messages delivered and not yet settled, with the
    /// attempt they were last delivered as (their spans' parent; an ack may already
    /// have removed the entry that counted it).
    pub(super) traced: HashMap<(u32, u64), (TraceParent, u32)>,
}

/// One queue group.
#[derive(Debug)]
pub struct QueueGroup {
    pub(super) name: Arc<str>,
    pub(super) topic: Arc<Topic>,
    topic_name: Arc<str>,
    pub(super) config: Mutex<QueueConfig>,
    pub(super) inner: Mutex<Inner>,
    /// Wakes the dispatcher: credit, acks, members coming and going.
    pub(super) wake: Notify,
    /// Set (under the state lock) when the group is deleted or purged away: nothing
    /// more is recorded for it, so no event can follow the tombstone that forgets it,
    /// and its dispatcher stops.
    closed: AtomicBool,
    /// A dispatcher task runs for the group. Set and cleared under the state lock
    /// (`start_dispatcher`, `park_dispatcher`): a group without members and with
    /// nothing in flight has no task at all, and the member that arrives starts one.
    dispatching: AtomicBool,
    /// Where the dispatcher runs, and the shutdown it obeys.
    tasks: Arc<Tasks>,
    pub(super) log: Arc<InternalLog<QueueRecord>>,
    pub(super) topics: Arc<Topics>,
    pub(super) traces: Arc<Traces>,
    pub(super) clock: Arc<dyn Clock>,
    /// Where deliveries are counted.
    pub(super) metrics: Arc<Metrics>,
    /// Messages delivered again (after a nack or an expired lease) since the broker
    /// started; counted by the dispatcher once per redelivery.
    redeliveries: AtomicU64,
}

impl QueueGroup {
    /// A group over `topic`, its partitions starting at `starts`, nothing delivered.
    pub(super) fn new(
        name: &str,
        topic: Arc<Topic>,
        config: QueueConfig,
        starts: &[u64],
        parts: GroupParts,
    ) -> QueueGroup {
        QueueGroup {
            name: Arc::from(name),
            topic_name: Arc::from(topic.name.as_str()),
            topic,
            inner: Mutex::new(Inner {
                state: QueueState::new(config.policy(), starts),
                sinks: BTreeMap::new(),
                pullers: BTreeSet::new(),
                next_member: 0,
                next_partition: 0,
                members_left: false,
                traced: HashMap::new(),
            }),
            config: Mutex::new(config),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
            dispatching: AtomicBool::new(false),
            tasks: parts.tasks,
            log: parts.log,
            topics: parts.topics,
            traces: parts.traces,
            clock: parts.clock,
            metrics: parts.metrics,
            redeliveries: AtomicU64::new(0),
        }
    }

    /// The error for a refused settlement.
    pub(super) fn refusal(&self, refusal: Refusal) -> BrokerError {
        match refusal {
            Refusal::NotInFlight { partition, offset } => {
                BrokerError::NotInFlight { partition, offset }
            }
            Refusal::NoPartition(partition) => BrokerError::InvalidPartition {
                topic: self.topic.name.clone(),
                partition,
                count: self.topic.partitions.len() as u32,
            },
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends events while the state lock is held, so the log order is the order of
    /// the changes. Returns the offset to wait on for durability.
    pub(super) fn persist(&self, events: Vec<QueueEvent>) -> Result<u64, BrokerError> {
        if self.is_closed() {
            return Err(BrokerError::UnknownGroup(self.name.to_string()));
        }
        let records: Vec<QueueRecord> = events
            .into_iter()
            .map(|event| QueueRecord {
                group: self.name.clone(),
                topic: self.topic_name.clone(),
                event: Some(event),
            })
            .collect();
        self.log.append(&records)
    }

    /// Starts the dispatcher unless one runs; the caller holds the state lock (`inner`)
    /// and has just given the group a member, or created it.
    pub(super) fn start_dispatcher(self: &Arc<Self>, _inner: &Inner) {
        if self.dispatching.swap(true, Ordering::AcqRel) {
            return;
        }
        self.tasks.spawn(
            "queue dispatcher",
            super::dispatch::run_dispatcher(self.clone(), self.tasks.shutdown()),
        );
    }

    /// Called by the dispatcher after a round with nothing to do: ends it (returns
    /// `true`) when no member could receive anything and nothing in flight will
    /// expire, so an idle group costs no task and no wake-up. Under the state lock,
    /// so a member attaching meanwhile either is seen here or sees the dispatcher
    /// gone and starts another.
    pub(super) fn park_dispatcher(&self) -> bool {
        let inner = self.lock();
        let idle = inner.sinks.is_empty()
            && inner.pullers.is_empty()
            && !inner.members_left
            && !inner.state.has_timed_work();
        if idle {
            self.dispatching.store(false, Ordering::Release);
        }
        idle
    }

    /// Whether a dispatcher task runs for the group now.
    pub fn is_dispatching(&self) -> bool {
        self.dispatching.load(Ordering::Acquire)
    }

    /// Whether the group was closed ([`close`](Self::close)).
    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Closes the group for good: appends the tombstone that makes a replay forget
    /// its state, followed by `then` (a purge's fresh start; recorded as the group's
    /// whole state after the tombstone), refuses every later change, and stops the
    /// dispatcher. Returns the offset to wait on for durability.
    pub(super) fn close(&self, then: Vec<QueueEvent>) -> Result<u64, BrokerError> {
        let _inner = self.lock();
        if self.closed.swap(true, Ordering::AcqRel) {
            return Err(BrokerError::UnknownGroup(self.name.to_string()));
        }
        let key = |event| QueueRecord {
            group: self.name.clone(),
            topic: self.topic_name.clone(),
            event,
        };
        let records: Vec<QueueRecord> = std::iter::once(key(None))
            .chain(then.into_iter().map(|e| key(Some(e))))
            .collect();
        let wait = self.log.append(&records);
        self.wake.notify_one();
        wait
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
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

    /// Messages delivered again since the broker started.
    pub fn redeliveries(&self) -> u64 {
        self.redeliveries.load(Ordering::Relaxed)
    }

    /// Counts one redelivered message.
    pub(super) fn count_redelivery(&self) {
        self.redeliveries.fetch_add(1, Ordering::Relaxed);
    }

    /// Everything below this offset of `partition` is settled.
    pub fn floor(&self, partition: u32) -> Option<u64> {
        self.lock().state.partition(partition).map(|p| p.floor())
    }

    /// The group's settings.
    pub fn config(&self) -> QueueConfig {
        self.config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the group's settings (a join's overrides).
    pub(super) fn reconfigure(&self, config: QueueConfig) {
        self.lock().state.policy = config.policy();
        *self.config.lock().unwrap_or_else(|p| p.into_inner()) = config;
    }

    /// The spans of settlements of traced messages.
    pub(super) fn trace_events(&self, inner: &mut Inner, events: &[QueueEvent]) {
        if inner.traced.is_empty() {
            return;
        }
        let (group, topic) = (&*self.name, &*self.topic_name);
        let at = |partition, offset| At {
            topic,
            partition,
            offset,
        };
        for event in events {
            match event {
                QueueEvent::Acked { partition, offsets } => {
                    for &offset in offsets {
                        if let Some((context, attempt)) = inner.traced.remove(&(*partition, offset))
                        {
                            self.traces
                                .on_ack(&context, at(*partition, offset), group, attempt);
                        }
                    }
                }
                QueueEvent::Failed {
                    partition,
                    offset,
                    reason,
                    due_ms,
                } => {
                    if let Some((context, attempt)) = inner.traced.get(&(*partition, *offset)) {
                        let at = at(*partition, *offset);
                        self.traces.on_nack(context, at, group, *attempt, reason);
                        self.traces.on_retry(context, at, group, *attempt, *due_ms);
                    }
                }
                QueueEvent::DeadLettering {
                    partition,
                    offset,
                    reason,
                    ..
                } => {
                    if let Some((context, attempt)) = inner.traced.get(&(*partition, *offset)) {
                        self.traces.on_nack(
                            context,
                            at(*partition, *offset),
                            group,
                            *attempt,
                            reason,
                        );
                    }
                }
                _ => {}
            }
        }
    }

    /// Acks offsets; returns once the acks are durable.
    pub async fn ack(&self, partition: u32, offsets: &[u64]) -> Result<(), BrokerError> {
        let wait = {
            let mut inner = self.lock();
            let event = inner
                .state
                .ack(partition, offsets)
                .map_err(|r| self.refusal(r))?;
            self.trace_events(&mut inner, std::slice::from_ref(&event));
            self.persist(vec![event])?
        };
        self.wake.notify_one();
        self.log.wait_durable(wait).await
    }

    /// Nacks one message: redelivery after `delay_ms` (or the backoff), or dead letter.
    pub async fn nack(
        &self,
        partition: u32,
        offset: u64,
        reason: &str,
        delay_ms: Option<u64>,
    ) -> Result<(), BrokerError> {
        let dlq_end = self.dead_letter_end();
        let wait = {
            let mut inner = self.lock();
            let now = Now::read(self.clock.as_ref());
            let event = inner
                .state
                .fail(partition, offset, reason, delay_ms, now, dlq_end)
                .map_err(|r| self.refusal(r))?;
            self.trace_events(&mut inner, std::slice::from_ref(&event));
            self.persist(vec![event])?
        };
        self.wake.notify_one();
        self.log.wait_durable(wait).await
    }

    /// Extends the ack deadline of a message in flight.
    pub fn extend(&self, partition: u32, offset: u64, extend_ms: u64) -> Result<(), BrokerError> {
        let now = Now::read(self.clock.as_ref());
        self.lock()
            .state
            .extend(partition, offset, extend_ms, now)
            .map_err(|r| self.refusal(r))?;
        self.wake.notify_one();
        Ok(())
    }

    /// Attaches a member's subscription.
    pub(super) fn attach(self: &Arc<Self>, member: &str, sink: Sink) {
        let mut inner = self.lock();
        inner.sinks.insert(Arc::from(member), sink);
        self.start_dispatcher(&inner);
        drop(inner);
        self.wake.notify_one();
    }

    /// Adds credit to a member's subscription; `false` if it is not this one.
    pub(super) fn credit(
        &self,
        member: &str,
        subscription_id: u64,
        messages: u32,
        bytes: u64,
    ) -> bool {
        let mut inner = self.lock();
        let Some(sink) = inner
            .sinks
            .get_mut(member)
            .filter(|s| s.subscription_id == subscription_id)
        else {
            return false;
        };
        sink.credit.grant(messages, bytes);
        sink.paused_until_mono_ms = None;
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
        // A puller leaves only with its membership (no subscription id names it).
        if subscription_id.is_none() && inner.pullers.remove(member) {
            inner.members_left = true;
        }
        drop(inner);
        self.wake.notify_one();
    }

    /// Records a whole-group snapshot, for compaction.
    pub(super) fn snapshot(&self) -> Result<(), BrokerError> {
        let inner = self.lock();
        if self.is_closed() {
            return Ok(());
        }
        let now = Now::read(self.clock.as_ref());
        self.persist(inner.state.snapshot(now)).map(|_| ())
    }

    /// Records a snapshot of the group would take.
    pub(super) fn snapshot_records(&self) -> u64 {
        self.lock().state.snapshot_len() as u64
    }
}

/// What every group of a broker shares.
#[derive(Debug, Clone)]
pub(super) struct GroupParts {
    pub(super) log: Arc<InternalLog<QueueRecord>>,
    pub(super) topics: Arc<Topics>,
    pub(super) traces: Arc<Traces>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) tasks: Arc<Tasks>,
}
