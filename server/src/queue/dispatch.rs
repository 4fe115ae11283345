//! The dispatcher: a task per queue group with members (or leases in flight) that
//! hands out messages under the members' credit, in rounds. A group with neither has
//! no task: the dispatcher ends after a round with nothing to do, and the next member
//! to attach or pull starts it again (`QueueGroup::start_dispatcher`).
//!
//! A round, under the group's lock: expire overdue deliveries (and those of members
//! that left), hand out due retries first (one message per delivery), then new
//! messages round-robin over partitions and over members with credit, and list the
//! messages out of attempts. Every hand-out is recorded as an event on
//! `__queue_state`; after the lock is released the task waits for those events to be
//! durable, pushes the deliveries, copies the dead letters, and sleeps until
//! something changes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use protocol::internal::queue::QueueEvent;
use protocol::ops::subscribe::Delivery;

use super::group::{Inner, QueueGroup, Sink};
use super::state::{Now, QueueState};
use crate::delivery::{cut_to_credit, wait_for_any, Slot};
use crate::error::BrokerError;
use crate::partition::Partition;
use crate::shutdown::Shutdown;
use crate::traces::Recipient;

/// Longest a dispatcher sleeps without looking again.
const IDLE_WAIT: Duration = Duration::from_millis(250);
/// Due retries handed out per dispatch round, at most.
const RETRIES_PER_ROUND: usize = 1024;
/// Bytes read per delivery of new messages, at most.
const DELIVERY_MAX_BYTES: usize = 1024 * 1024;
/// Pause before trying again after a dead letter could not be copied.
const DEAD_LETTER_RETRY: Duration = Duration::from_millis(500);

/// A message out of attempts, to be copied to the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DeadLetter {
    pub(super) partition: u32,
    pub(super) offset: u64,
    pub(super) reason: String,
    /// The dead-letter topic's end when the message ran out of attempts: its copy,
    /// if one was made before a restart, is at or after this.
    pub(super) dlq_from: u64,
}

/// What one dispatch round produced.
#[derive(Debug)]
pub(super) struct Round {
    /// Deliveries to push, each to its member.
    pub(super) deliveries: Vec<(Slot, Delivery)>,
    /// Messages to dead-letter.
    pub(super) dead: Vec<DeadLetter>,
    /// The `__queue_state` offset that must be durable before anything is pushed.
    pub(super) durable_at: u64,
}

impl Round {
    /// Whether the round did anything, so another may find more at once.
    pub(super) fn is_busy(&self) -> bool {
        !self.deliveries.is_empty() || !self.dead.is_empty()
    }
}

/// What a round is handing out, while it runs.
pub(super) struct Handout {
    /// Members with a subscription, in round-robin order.
    pub(super) members: Vec<Arc<str>>,
    pub(super) now: Now,
    pub(super) events: Vec<QueueEvent>,
    pub(super) deliveries: Vec<(Slot, Delivery)>,
}

/// The next member in round-robin order after `next` that has credit and room in its
/// queue, with the place reserved for its delivery. A member whose connection does not
/// read (its queue full) is passed over: it holds what it has until its leases expire,
/// and never holds up the others. A member whose lease just expired is paused: it gets
/// work only when no other member can take it, so a consumer that hangs while reading
/// does not burn the attempts of the messages redelivered after it.
fn member_with_room(
    members: &[Arc<str>],
    sinks: &BTreeMap<Arc<str>, Sink>,
    next: &mut usize,
    now: Now,
) -> Option<(Arc<str>, Slot)> {
    let paused = |s: &Sink| s.paused_until_mono_ms.is_some_and(|t| t > now.mono_ms);
    for take_paused in [false, true] {
        for i in 0..members.len() {
            let member = &members[(*next + i) % members.len()];
            let Some(sink) = sinks
                .get(member)
                .filter(|s| s.credit.allows_delivery() && paused(s) == take_paused)
            else {
                continue;
            };
            if let Some(slot) = sink.pushes.try_reserve() {
                *next = (*next + i + 1) % members.len();
                return Some((member.clone(), slot));
            }
        }
    }
    None
}

/// Deliveries so far of a message.
fn attempt_of(state: &QueueState, partition: u32, offset: u64) -> u32 {
    state
        .partition(partition)
        .and_then(|p| p.entry(offset))
        .map_or(1, |e| e.attempts)
}

impl QueueGroup {
    /// One dispatch round. See the module documentation.
    pub(super) fn dispatch_round(&self) -> Result<Round, BrokerError> {
        let dlq_end = self.dead_letter_end();
        let mut inner = self.lock();
        let now = Now::read(self.clock.as_ref());
        let mut out = Handout {
            members: inner.sinks.keys().cloned().collect(),
            now,
            events: self.expire(&mut inner, now, dlq_end),
            deliveries: Vec::new(),
        };
        if !out.members.is_empty() {
            self.hand_out_retries(&mut inner, &mut out);
            self.hand_out_new(&mut inner, &mut out);
        }
        let Handout {
            events, deliveries, ..
        } = out;
        // Every message out of attempts (from a nack, an expiry, or before a restart)
        // is copied now; the dispatcher finishes those copies before its next round.
        let dead = inner
            .state
            .dead_lettering()
            .into_iter()
            .map(|(partition, offset, dlq_from)| DeadLetter {
                partition,
                offset,
                dlq_from,
                reason: inner
                    .state
                    .partition(partition)
                    .and_then(|p| p.entry(offset))
                    .and_then(|e| e.reason.clone())
                    .unwrap_or_default(),
            })
            .collect();
        self.trace_events(&mut inner, &events);
        let durable_at = self.persist(events)?;
        Ok(Round {
            deliveries,
            dead,
            durable_at,
        })
    }

    /// Fails overdue deliveries, and (only after a member went away, when it is worth
    /// the scan) those of members gone; settles what the log no longer holds.
    fn expire(&self, inner: &mut Inner, now: Now, dlq_end: u64) -> Vec<QueueEvent> {
        let Inner {
            state,
            sinks,
            pullers,
            members_left,
            ..
        } = inner;
        let pause_ms = state.policy.ack_deadline_ms;
        for holder in state.expired_holders(now) {
            if let Some(sink) = sinks.get_mut(&holder) {
                tracing::debug!(group = %self.name, member = %holder, "a lease expired; pausing the member's deliveries");
                sink.paused_until_mono_ms = Some(now.mono_ms.saturating_add(pause_ms));
            }
        }
        let gone = |member: &str| !sinks.contains_key(member) && !pullers.contains(member);
        let check_gone: Option<&dyn Fn(&str) -> bool> = if std::mem::take(members_left) {
            Some(&gone)
        } else {
            None
        };
        let mut events = state.expire(now, check_gone, dlq_end);
        for part in &self.topic.partitions {
            events.extend(state.skip_before(part.id, part.start_offset()));
        }
        events
    }

    /// Due retries, one message per delivery, earliest due first.
    pub(super) fn hand_out_retries(&self, inner: &mut Inner, out: &mut Handout) {
        let Handout {
            members,
            now,
            events,
            deliveries,
        } = out;
        let now = *now;
        let Inner {
            state,
            sinks,
            next_member,
            traced,
            ..
        } = inner;
        for (partition, offset) in state.due_retries(now, RETRIES_PER_ROUND) {
            let Some((member, slot)) = member_with_room(members, sinks, next_member, now) else {
                break;
            };
            let Ok(part) = self.topic.partition(partition) else {
                continue;
            };
            let chunk = match part.read(offset, 1) {
                Ok(chunk) if !chunk.is_empty() => chunk,
                _ => continue,
            };
            let event = state.deliver(partition, offset, offset + 1, &member, now);
            let attempt = match &event {
                QueueEvent::Delivered { attempt, .. } => *attempt,
                _ => 1,
            };
            events.push(event);
            let Some(sink) = sinks.get_mut(&member) else {
                break;
            };
            sink.credit.spend(1, chunk.bytes.len() as u64);
            let delivery = Delivery {
                subscription_id: sink.subscription_id,
                partition,
                from_offset: offset,
                to_offset: offset + 1,
                attempt,
                batches: chunk.bytes,
            };
            self.trace_delivery(traced, state, &delivery);
            deliveries.push((slot, delivery));
        }
    }

    /// New messages, round-robin over partitions, each delivery cut to its member's
    /// credit and to the partition's room for unsettled messages.
    pub(super) fn hand_out_new(&self, inner: &mut Inner, out: &mut Handout) {
        let Handout {
            members,
            now,
            events,
            deliveries,
        } = out;
        let now = *now;
        let Inner {
            state,
            sinks,
            next_member,
            next_partition,
            traced,
            ..
        } = inner;
        let partitions = state.partition_count();
        let mut idle_partitions = 0;
        while partitions > 0 && idle_partitions < partitions {
            let partition = (*next_partition % partitions as usize) as u32;
            *next_partition = next_partition.wrapping_add(1);
            let Some((member, slot)) = member_with_room(members, sinks, next_member, now) else {
                break;
            };
            let Some(sink) = sinks.get_mut(&member) else {
                break;
            };
            let Ok(part) = self.topic.partition(partition) else {
                break;
            };
            let credit = sink.credit;
            let readable = state.new_range(partition, part.visible_end(), credit.messages);
            let chunk = readable.and_then(|(from, _)| {
                let chunk = part
                    .read(from, credit.read_bytes(DELIVERY_MAX_BYTES))
                    .ok()?;
                (!chunk.is_empty()).then_some((from, chunk))
            });
            let Some((from, chunk)) = chunk else {
                idle_partitions += 1;
                continue;
            };
            let Some((_, limit)) = state.new_range(partition, chunk.next_offset, credit.messages)
            else {
                idle_partitions += 1;
                continue;
            };
            let cut = cut_to_credit(&chunk.bytes, from, limit - from);
            debug_assert!(
                cut.to <= limit,
                "never beyond the credit or the room for unsettled"
            );
            if cut.to <= from {
                idle_partitions += 1;
                continue;
            }
            idle_partitions = 0;
            events.push(state.deliver(partition, from, cut.to, &member, now));
            sink.credit.spend(cut.to - from, cut.bytes as u64);
            let delivery = Delivery {
                subscription_id: sink.subscription_id,
                partition,
                from_offset: from,
                to_offset: cut.to,
                attempt: 1,
                batches: chunk.bytes.slice(..cut.bytes),
            };
            self.trace_delivery(traced, state, &delivery);
            deliveries.push((slot, delivery));
        }
    }

    /// Counts a delivery being pushed: the partition's traffic out, its end-to-end
    /// latency, and a retry as a redelivery.
    pub(super) fn count_delivery(&self, delivery: &Delivery, now_wall_ms: i64) {
        if let Ok(partition) = self.topic.partition(delivery.partition) {
            let messages = delivery.to_offset - delivery.from_offset;
            self.metrics
                .delivered(partition, messages, &delivery.batches, now_wall_ms);
        }
        if delivery.attempt > 1 {
            self.count_redelivery();
        }
    }

    /// `deliver` spans for the traced messages of a delivery, remembered until they
    /// settle.
    fn trace_delivery(
        &self,
        traced: &mut std::collections::HashMap<(u32, u64), (protocol::trace::TraceParent, u32)>,
        state: &QueueState,
        delivery: &Delivery,
    ) {
        let attempt = |offset| attempt_of(state, delivery.partition, offset);
        let to = Recipient::Queue {
            group: &self.name,
            attempt: &attempt,
        };
        for t in self.traces.on_deliver(self.topic_name(), delivery, to) {
            traced.insert(
                (delivery.partition, t.offset),
                (t.context, attempt(t.offset)),
            );
        }
    }

    /// How long the dispatcher may sleep, and the reads to wake it for: data past
    /// what is already readable (a backlog the round could not hand out, for want of
    /// credit or room, must not wake it at once; credit, acks and new members wake it
    /// through `wake`).
    pub(super) fn idle(&self) -> (Duration, Vec<(Arc<Partition>, u64)>) {
        let inner = self.lock();
        let now_ms = self.clock.monotonic_ms();
        let idle_ms = IDLE_WAIT.as_millis() as u64;
        let sleep = inner
            .state
            .next_wakeup_mono_ms()
            .map(|at| Duration::from_millis(at.saturating_sub(now_ms).clamp(1, idle_ms)))
            .unwrap_or(IDLE_WAIT);
        let reads = self
            .topic
            .partitions
            .iter()
            .filter_map(|p| {
                let read = inner.state.partition(p.id)?.read;
                Some((p.clone(), read.max(p.visible_end())))
            })
            .collect();
        (sleep, reads)
    }
}

/// Runs a group's dispatcher until shutdown.
pub(super) async fn run_dispatcher(group: Arc<QueueGroup>, mut shutdown: Shutdown) {
    loop {
        if shutdown.is_shutdown() || group.is_closed() {
            return;
        }
        let notified = group.wake.notified();
        match group.dispatch_round() {
            Ok(round) => {
                let busy = round.is_busy();
                if busy {
                    // Nothing is sent before the delivery is recorded durably.
                    if let Err(error) = group.log.wait_durable(round.durable_at).await {
                        tracing::error!(group = %group.name, %error, "queue state not durable; stopping delivery");
                        return;
                    }
                }
                // Every place was reserved in the round: nothing here waits on a member.
                let now_wall_ms = group.clock.wall_ms();
                for (slot, delivery) in round.deliveries {
                    group.count_delivery(&delivery, now_wall_ms);
                    slot.push(delivery);
                }
                if !dead_letter_all(&group, &round.dead).await {
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
                if group.park_dispatcher() {
                    return;
                }
            }
            Err(error) => tracing::error!(group = %group.name, %error, "dispatch failed"),
        }
        // Sleep until something changes, something comes due, or new data arrives.
        let (sleep, reads) = group.idle();
        tokio::select! {
            _ = notified => {}
            _ = wait_for_any(&reads, sleep) => {}
            _ = shutdown.recv() => return,
        }
    }
}

/// Copies every dead letter of a round; `false` if any failed (it is tried again).
async fn dead_letter_all(group: &QueueGroup, dead: &[DeadLetter]) -> bool {
    match group.dead_letter_round(dead).await {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(group = %group.name, letters = dead.len(), %error, "dead-lettering failed; will retry");
            false
        }
    }
}
