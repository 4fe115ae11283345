//! The delivery state of one queue group: which messages of each partition are in
//! flight, waiting for a retry, dead-lettering or settled. Pure: time is a parameter,
//! nothing here does I/O, and every change is described by a [`QueueEvent`] that the
//! caller persists and that [`QueueState::apply`] replays after a restart.
//!
//! Per partition, everything below `floor` is settled (acked or dead-lettered) and
//! costs nothing; offsets in `[floor, read)` that were delivered have an entry; `read`
//! is the next offset never delivered. Entries are bounded by
//! `max_unacked_per_partition`: when a partition has that many, no new messages are
//! read from it until some settle.

use std::sync::Arc;

use super::backoff::Backoff;
pub use protocol::internal::queue::QueueEvent;

mod dead_letter;
mod partition;
mod replay;
#[cfg(test)]
mod tests;

pub use partition::{Entry, EntryState, PartitionQueue};

/// A reading of the broker's clock: monotonic time for every timer (deadlines,
/// retries), wall-clock time for what is persisted and shown (delivery times, the
/// absolute deadlines in events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic milliseconds.
    pub mono_ms: u64,
    /// Wall-clock milliseconds since the epoch.
    pub wall_ms: i64,
}

impl Now {
    /// Reads `clock`.
    pub fn read(clock: &dyn crate::clock::Clock) -> Now {
        Now {
            mono_ms: clock.monotonic_ms(),
            wall_ms: clock.wall_ms(),
        }
    }

    /// Both clocks at `ms` (tests).
    pub fn at(ms: u64) -> Now {
        Now {
            mono_ms: ms,
            wall_ms: ms as i64,
        }
    }

    /// The wall-clock time of monotonic time `mono_ms`, as seen now.
    fn wall_of(self, mono_ms: u64) -> i64 {
        let ahead = mono_ms.saturating_sub(self.mono_ms) as i64;
        let behind = self.mono_ms.saturating_sub(mono_ms) as i64;
        self.wall_ms.saturating_add(ahead).saturating_sub(behind)
    }
}

/// Where a replayed event is read: when its record was written, by the wall clock, and
/// the monotonic time of the replay. An event's absolute wall-clock deadline is turned
/// back into what was left of it when it was written, counted again from the replay,
/// so neither downtime nor a step of the wall clock can expire every lease at once or
/// freeze one: a lease or retry of a restarted broker waits at most what it had left.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replayed {
    /// The record's timestamp: the wall-clock time the event was written.
    pub written_wall_ms: i64,
    /// Monotonic time now.
    pub now_mono_ms: u64,
}

impl Replayed {
    /// The monotonic time of `wall_ms`, an absolute time written with the event.
    fn mono_of(self, wall_ms: i64) -> u64 {
        let left = wall_ms.saturating_sub(self.written_wall_ms).max(0) as u64;
        self.now_mono_ms.saturating_add(left)
    }
}

/// How a queue group treats its messages.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuePolicy {
    /// A delivery not acked within this long is redelivered.
    pub ack_deadline_ms: u64,
    /// After this many failed deliveries a message is dead-lettered.
    pub max_attempts: u32,
    /// Delay before redelivery.
    pub backoff: Backoff,
    /// Unsettled messages tracked per partition, at most.
    pub max_unacked_per_partition: usize,
}

/// Why an ack, nack or extension was refused.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The offset was never delivered, or is not in flight.
    NotInFlight { partition: u32, offset: u64 },
    /// No such partition.
    NoPartition(u32),
}

/// Counts for `groups describe`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Delivered and not yet acked, nacked or expired.
    pub in_flight: u64,
    /// Waiting for a retry (or being dead-lettered, its copy not yet made).
    pub waiting_retry: u64,
    /// Dead-lettered so far: copied to the dead-letter topic.
    pub dead_lettered: u64,
}

/// The queue state of a group over all partitions of its topic.
#[derive(Debug, Clone)]
pub struct QueueState {
    /// The policy.
    pub policy: QueuePolicy,
    partitions: Vec<PartitionQueue>,
}

impl QueueState {
    /// A new state starting each partition at the given offset.
    pub fn new(policy: QueuePolicy, starts: &[u64]) -> QueueState {
        let partitions = starts
            .iter()
            .map(|&read| PartitionQueue {
                read,
                ..PartitionQueue::default()
            })
            .collect();
        QueueState { policy, partitions }
    }

    /// Partition state.
    pub fn partition(&self, partition: u32) -> Option<&PartitionQueue> {
        self.partitions.get(partition as usize)
    }

    /// Number of partitions.
    pub fn partition_count(&self) -> u32 {
        self.partitions.len() as u32
    }

    fn part(&mut self, partition: u32) -> Result<&mut PartitionQueue, Refusal> {
        self.partitions
            .get_mut(partition as usize)
            .ok_or(Refusal::NoPartition(partition))
    }

    /// The range of new messages that may be delivered from `partition`, given the
    /// partition's readable end and at most `max_messages`.
    pub fn new_range(
        &self,
        partition: u32,
        end_offset: u64,
        max_messages: u64,
    ) -> Option<(u64, u64)> {
        let part = self.partitions.get(partition as usize)?;
        let room = self
            .policy
            .max_unacked_per_partition
            .saturating_sub(part.entries.len()) as u64;
        let to = end_offset.min(part.read.saturating_add(room.min(max_messages)));
        (to > part.read).then_some((part.read, to))
    }

    /// The log no longer holds the offsets below `start` (retention, DeleteRecords):
    /// reads move up to it and whatever was unsettled below it is settled, since it can
    /// never be delivered again. Returns the event that records this, if anything
    /// changed; without it the partition would wait forever for messages it cannot
    /// read.
    pub fn skip_before(&mut self, partition: u32, start: u64) -> Option<QueueEvent> {
        let part = self.partitions.get(partition as usize)?;
        if part.read >= start && part.entries.range(..start).next().is_none() {
            return None;
        }
        let event = QueueEvent::Position {
            partition,
            floor: start,
            read: part.read.max(start),
            dead_lettered: part.dead_lettered,
        };
        self.apply(&event, Replayed::default());
        Some(event)
    }

    /// Delivers `[from, to)` (new messages, or one message being retried) to `member`.
    pub fn deliver(
        &mut self,
        partition: u32,
        from: u64,
        to: u64,
        member: &Arc<str>,
        now: Now,
    ) -> QueueEvent {
        debug_assert!(from < to, "a delivery carries at least one message");
        let deadline_mono_ms = now.mono_ms.saturating_add(self.policy.ack_deadline_ms);
        let mut attempt = 1;
        if let Ok(part) = self.part(partition) {
            // New messages start at `read`; a retry redelivers one message below it.
            debug_assert!(from == part.read || (to == from + 1 && from < part.read));
            for offset in from..to {
                let entry = part.entry_mut(offset, now.wall_ms);
                entry.attempts += 1;
                entry.last_ms = now.wall_ms;
                attempt = entry.attempts;
                let state = EntryState::InFlight {
                    member: Some(member.clone()),
                    deadline_mono_ms,
                };
                part.set_state(offset, state);
            }
            part.read = part.read.max(to);
        }
        QueueEvent::Delivered {
            partition,
            from,
            to,
            attempt,
            at_ms: now.wall_ms,
            deadline_ms: now.wall_of(deadline_mono_ms),
        }
    }

    /// Messages waiting for a retry that are due `now`, earliest first, at most
    /// `limit`.
    pub fn due_retries(&self, now: Now, limit: usize) -> Vec<(u32, u64)> {
        let now_ms = now.mono_ms;
        // The `limit` earliest of each partition (its timers are in due order) hold the
        // `limit` earliest overall, so no partition can crowd out another's.
        let mut due: Vec<(u64, u32, u64)> = Vec::new();
        for (p, part) in self.partitions.iter().enumerate() {
            let mut taken = 0;
            for (at, offset) in part.timers.iter() {
                if *at > now_ms || taken >= limit {
                    break;
                }
                if matches!(
                    part.entries.get(offset).map(|e| &e.state),
                    Some(EntryState::Waiting { .. })
                ) {
                    due.push((*at, p as u32, *offset));
                    taken += 1;
                }
            }
        }
        due.sort_unstable();
        due.into_iter()
            .take(limit)
            .map(|(_, p, o)| (p, o))
            .collect()
    }

    /// Acks offsets in flight (or waiting for a retry: a late ack still counts).
    /// Offsets already settled are ignored, so acks are idempotent.
    pub fn ack(&mut self, partition: u32, offsets: &[u64]) -> Result<QueueEvent, Refusal> {
        let part = self.part(partition)?;
        for &offset in offsets {
            let known = offset < part.floor()
                || matches!(part.entries.get(&offset), Some(e) if !e.is_dead_lettering());
            if !known {
                return Err(Refusal::NotInFlight { partition, offset });
            }
        }
        for &offset in offsets {
            part.settle(offset);
        }
        Ok(QueueEvent::Acked {
            partition,
            offsets: offsets.to_vec(),
        })
    }

    /// A delivery of `offset` failed (nack, expiry, disconnect): schedule a retry or
    /// the dead-letter copy. `delay_ms` overrides the backoff; `dlq_end` is the
    /// dead-letter topic's end now (0 if it does not exist yet).
    pub fn fail(
        &mut self,
        partition: u32,
        offset: u64,
        reason: &str,
        delay_ms: Option<u64>,
        now: Now,
        dlq_end: u64,
    ) -> Result<QueueEvent, Refusal> {
        let policy = self.policy.clone();
        let part = self.part(partition)?;
        let entry = match part.entries.get_mut(&offset) {
            Some(entry) if matches!(entry.state, EntryState::InFlight { .. }) => entry,
            _ => return Err(Refusal::NotInFlight { partition, offset }),
        };
        // Clipped here, as the event log stores it: memory per entry stays bounded,
        // and the reason reads the same before and after a restart.
        let reason = protocol::internal::queue::clip_reason(reason);
        entry.reason = Some(reason.to_string());
        let attempts = entry.attempts;
        if attempts >= policy.max_attempts {
            let dlq_from = dlq_end;
            part.set_state(offset, EntryState::DeadLettering { dlq_from });
            return Ok(QueueEvent::DeadLettering {
                partition,
                offset,
                reason: reason.to_string(),
                dlq_from: Some(dlq_from),
            });
        }
        let delay = delay_ms.unwrap_or_else(|| policy.backoff.delay_ms(attempts, offset));
        let due_mono_ms = now.mono_ms.saturating_add(delay);
        part.set_state(offset, EntryState::Waiting { due_mono_ms });
        Ok(QueueEvent::Failed {
            partition,
            offset,
            reason: reason.to_string(),
            due_ms: now.wall_of(due_mono_ms),
        })
    }

    /// Pushes the deadline of a message in flight to `now + extend_ms`.
    pub fn extend(
        &mut self,
        partition: u32,
        offset: u64,
        extend_ms: u64,
        now: Now,
    ) -> Result<(), Refusal> {
        let part = self.part(partition)?;
        match part.entries.get(&offset).map(|e| &e.state) {
            Some(EntryState::InFlight { member, .. }) => {
                let state = EntryState::InFlight {
                    member: member.clone(),
                    deadline_mono_ms: now.mono_ms.saturating_add(extend_ms),
                };
                part.set_state(offset, state);
                Ok(())
            }
            _ => Err(Refusal::NotInFlight { partition, offset }),
        }
    }

    /// The members holding deliveries whose deadline passed at `now` (those
    /// [`expire`](Self::expire) is about to fail), without repeats.
    pub fn expired_holders(&self, now: Now) -> Vec<Arc<str>> {
        let mut holders: Vec<Arc<str>> = Vec::new();
        for part in &self.partitions {
            for (at, offset) in part.timers.iter() {
                if *at > now.mono_ms {
                    break;
                }
                if let Some(EntryState::InFlight {
                    member: Some(member),
                    ..
                }) = part.entries.get(offset).map(|e| &e.state)
                {
                    if !holders.contains(member) {
                        holders.push(member.clone());
                    }
                }
            }
        }
        holders
    }

    /// Deliveries whose deadline passed fail. With `gone`, deliveries to members for
    /// which it answers true fail too (a full scan: only after members went away).
    /// `dlq_end` is as for [`fail`](Self::fail).
    pub fn expire(
        &mut self,
        now: Now,
        gone: Option<&dyn Fn(&str) -> bool>,
        dlq_end: u64,
    ) -> Vec<QueueEvent> {
        let now_ms = now.mono_ms;
        let mut failed = Vec::new();
        for (p, part) in self.partitions.iter().enumerate() {
            for (at, offset) in part.timers.iter() {
                if *at > now_ms {
                    break;
                }
                if matches!(
                    part.entries.get(offset).map(|e| &e.state),
                    Some(EntryState::InFlight { .. })
                ) {
                    failed.push((p as u32, *offset, "ack deadline expired"));
                }
            }
            if let Some(gone) = gone {
                for (offset, entry) in &part.entries {
                    if let EntryState::InFlight {
                        member: Some(member),
                        deadline_mono_ms,
                    } = &entry.state
                    {
                        if *deadline_mono_ms > now_ms && gone(member) {
                            failed.push((p as u32, *offset, "consumer disconnected"));
                        }
                    }
                }
            }
        }
        failed
            .into_iter()
            .filter_map(|(p, o, reason)| self.fail(p, o, reason, None, now, dlq_end).ok())
            .collect()
    }

    /// Whether anything will need the dispatcher even with no member to deliver to:
    /// a delivery in flight (its lease expires) or a dead letter still to copy. A
    /// retry that waits needs a member to go to, so it does not count.
    pub fn has_timed_work(&self) -> bool {
        self.partitions.iter().any(|part| {
            part.entries.values().any(|entry| {
                matches!(
                    entry.state,
                    EntryState::InFlight { .. } | EntryState::DeadLettering { .. }
                )
            })
        })
    }

    /// The earliest monotonic time something is due (a deadline or a retry).
    pub fn next_wakeup_mono_ms(&self) -> Option<u64> {
        self.partitions
            .iter()
            .filter_map(|part| part.timers.first().map(|(at, _)| *at))
            .min()
    }

    /// Counts for one partition.
    pub fn counts(&self, partition: u32) -> Counts {
        let Some(part) = self.partitions.get(partition as usize) else {
            return Counts::default();
        };
        let mut counts = Counts {
            dead_lettered: part.dead_lettered,
            ..Counts::default()
        };
        for entry in part.entries.values() {
            match entry.state {
                EntryState::InFlight { .. } => counts.in_flight += 1,
                EntryState::Waiting { .. } | EntryState::DeadLettering { .. } => {
                    counts.waiting_retry += 1
                }
                // The copy is in the dead-letter topic (readable there); only its
                // settle is pending.
                EntryState::Copied { .. } => counts.dead_lettered += 1,
                EntryState::Settled => {}
            }
        }
        counts
    }
}
