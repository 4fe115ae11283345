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

use std::collections::BTreeMap;
use std::sync::Arc;

use super::backoff::Backoff;
pub use protocol::internal::queue::QueueEvent;

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

/// Where a message is.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryState {
    /// Delivered to `member` (unknown after a restart) until `deadline_ms`.
    InFlight {
        member: Option<Arc<str>>,
        deadline_ms: i64,
    },
    /// Waiting to be redelivered at `due_ms`.
    Waiting { due_ms: i64 },
    /// Being copied to the dead-letter topic.
    DeadLettering,
    /// Acked or dead-lettered.
    Settled,
}

/// One delivered, unsettled (or recently settled) message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Deliveries so far.
    pub attempts: u32,
    /// Where it is.
    pub state: EntryState,
    /// First delivery time.
    pub first_ms: i64,
    /// Latest delivery time.
    pub last_ms: i64,
    /// Why the latest delivery failed.
    pub reason: Option<String>,
}

/// The state of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionQueue {
    /// Next offset never delivered.
    pub read: u64,
    /// Messages dead-lettered so far.
    pub dead_lettered: u64,
    entries: BTreeMap<u64, Entry>,
    /// `(deadline or due time, offset)` of every entry in flight or waiting: the
    /// dispatcher finds what is due without scanning all entries.
    timers: std::collections::BTreeSet<(i64, u64)>,
    /// Offsets being dead-lettered.
    dead: std::collections::BTreeSet<u64>,
}

/// The time an entry in this state is due, if any.
fn timer_of(state: &EntryState) -> Option<i64> {
    match state {
        EntryState::InFlight { deadline_ms, .. } => Some(*deadline_ms),
        EntryState::Waiting { due_ms } => Some(*due_ms),
        EntryState::DeadLettering | EntryState::Settled => None,
    }
}

impl PartitionQueue {
    /// Everything below this is settled.
    pub fn floor(&self) -> u64 {
        self.entries
            .first_key_value()
            .map_or(self.read, |(offset, _)| *offset)
    }

    /// Moves an entry to a new state, keeping the indexes in step. Every state
    /// change of an existing entry goes through here.
    fn set_state(&mut self, offset: u64, state: EntryState) {
        let Some(entry) = self.entries.get_mut(&offset) else {
            return;
        };
        if let Some(at) = timer_of(&entry.state) {
            self.timers.remove(&(at, offset));
        }
        if entry.state == EntryState::DeadLettering {
            self.dead.remove(&offset);
        }
        if let Some(at) = timer_of(&state) {
            self.timers.insert((at, offset));
        }
        if state == EntryState::DeadLettering {
            self.dead.insert(offset);
        }
        entry.state = state;
    }

    /// The entry for `offset`, created (settled, no attempts) if new.
    fn entry_mut(&mut self, offset: u64, now_ms: i64) -> &mut Entry {
        self.entries.entry(offset).or_insert(Entry {
            attempts: 0,
            state: EntryState::Settled,
            first_ms: now_ms,
            last_ms: now_ms,
            reason: None,
        })
    }

    fn settle(&mut self, offset: u64) {
        self.set_state(offset, EntryState::Settled);
        while let Some(entry) = self.entries.first_entry() {
            if entry.get().state != EntryState::Settled {
                break;
            }
            entry.remove();
        }
    }

    /// The entry for `offset`, if delivered and not yet below the floor.
    pub fn entry(&self, offset: u64) -> Option<&Entry> {
        self.entries.get(&offset)
    }
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
    /// Waiting for a retry (or being dead-lettered).
    pub waiting_retry: u64,
    /// Dead-lettered so far.
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
        self.apply(&event);
        Some(event)
    }

    /// Delivers `[from, to)` (new messages, or one message being retried) to `member`.
    pub fn deliver(
        &mut self,
        partition: u32,
        from: u64,
        to: u64,
        member: &Arc<str>,
        now_ms: i64,
    ) -> QueueEvent {
        let deadline_ms = now_ms.saturating_add(self.policy.ack_deadline_ms as i64);
        let mut attempt = 1;
        if let Ok(part) = self.part(partition) {
            for offset in from..to {
                let entry = part.entry_mut(offset, now_ms);
                entry.attempts += 1;
                entry.last_ms = now_ms;
                attempt = entry.attempts;
                let state = EntryState::InFlight {
                    member: Some(member.clone()),
                    deadline_ms,
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
            at_ms: now_ms,
            deadline_ms,
        }
    }

    /// Messages waiting for a retry that are due at `now_ms`, earliest first, at most
    /// `limit`.
    pub fn due_retries(&self, now_ms: i64, limit: usize) -> Vec<(u32, u64)> {
        // The `limit` earliest of each partition (its timers are in due order) hold the
        // `limit` earliest overall, so no partition can crowd out another's.
        let mut due: Vec<(i64, u32, u64)> = Vec::new();
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
                || matches!(part.entries.get(&offset), Some(e) if e.state != EntryState::DeadLettering);
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
    /// the dead-letter copy. `delay_ms` overrides the backoff.
    pub fn fail(
        &mut self,
        partition: u32,
        offset: u64,
        reason: &str,
        delay_ms: Option<u64>,
        now_ms: i64,
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
            part.set_state(offset, EntryState::DeadLettering);
            return Ok(QueueEvent::DeadLettering {
                partition,
                offset,
                reason: reason.to_string(),
            });
        }
        let delay = delay_ms.unwrap_or_else(|| policy.backoff.delay_ms(attempts, offset));
        let due_ms = now_ms.saturating_add(delay as i64);
        part.set_state(offset, EntryState::Waiting { due_ms });
        Ok(QueueEvent::Failed {
            partition,
            offset,
            reason: reason.to_string(),
            due_ms,
        })
    }

    /// Pushes the deadline of a message in flight to `now + extend_ms`.
    pub fn extend(
        &mut self,
        partition: u32,
        offset: u64,
        extend_ms: u64,
        now_ms: i64,
    ) -> Result<(), Refusal> {
        let part = self.part(partition)?;
        match part.entries.get(&offset).map(|e| &e.state) {
            Some(EntryState::InFlight { member, .. }) => {
                let state = EntryState::InFlight {
                    member: member.clone(),
                    deadline_ms: now_ms.saturating_add(extend_ms as i64),
                };
                part.set_state(offset, state);
                Ok(())
            }
            _ => Err(Refusal::NotInFlight { partition, offset }),
        }
    }

    /// Deliveries whose deadline passed fail. With `gone`, deliveries to members for
    /// which it answers true fail too (a full scan: only after members went away).
    pub fn expire(&mut self, now_ms: i64, gone: Option<&dyn Fn(&str) -> bool>) -> Vec<QueueEvent> {
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
                        deadline_ms,
                    } = &entry.state
                    {
                        if *deadline_ms > now_ms && gone(member) {
                            failed.push((p as u32, *offset, "consumer disconnected"));
                        }
                    }
                }
            }
        }
        failed
            .into_iter()
            .filter_map(|(p, o, reason)| self.fail(p, o, reason, None, now_ms).ok())
            .collect()
    }

    /// The dead-letter copy of `offset` is durable: settle it.
    pub fn dead_lettered(&mut self, partition: u32, offset: u64) -> Result<QueueEvent, Refusal> {
        let part = self.part(partition)?;
        if !matches!(part.entries.get(&offset), Some(e) if e.state == EntryState::DeadLettering) {
            return Err(Refusal::NotInFlight { partition, offset });
        }
        part.settle(offset);
        part.dead_lettered += 1;
        Ok(QueueEvent::DeadLettered { partition, offset })
    }

    /// Messages waiting for their dead-letter copy (after a restart, the copy is made
    /// again; the dead-letter topic may then hold it twice).
    pub fn dead_lettering(&self) -> Vec<(u32, u64)> {
        let mut out = Vec::new();
        for (p, part) in self.partitions.iter().enumerate() {
            out.extend(part.dead.iter().map(|offset| (p as u32, *offset)));
        }
        out
    }

    /// The earliest time something is due (a deadline or a retry).
    pub fn next_wakeup_ms(&self) -> Option<i64> {
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
                EntryState::Waiting { .. } | EntryState::DeadLettering => counts.waiting_retry += 1,
                EntryState::Settled => {}
            }
        }
        counts
    }

    /// Replays a persisted event. Members are not persisted: in-flight messages come
    /// back with no member and are redelivered once their deadline passes.
    pub fn apply(&mut self, event: &QueueEvent) {
        match event {
            QueueEvent::Delivered {
                partition,
                from,
                to,
                attempt,
                at_ms,
                deadline_ms,
            } => {
                let Ok(part) = self.part(*partition) else {
                    return;
                };
                for offset in *from..*to {
                    if offset < part.floor() && offset < part.read {
                        continue;
                    }
                    let entry = part.entry_mut(offset, *at_ms);
                    entry.attempts = *attempt;
                    entry.last_ms = *at_ms;
                    part.set_state(
                        offset,
                        EntryState::InFlight {
                            member: None,
                            deadline_ms: *deadline_ms,
                        },
                    );
                }
                part.read = part.read.max(*to);
            }
            QueueEvent::Acked { partition, offsets } => {
                if let Ok(part) = self.part(*partition) {
                    for offset in offsets {
                        part.settle(*offset);
                    }
                }
            }
            QueueEvent::Failed {
                partition,
                offset,
                reason,
                due_ms,
            } => {
                if let Ok(part) = self.part(*partition) {
                    if let Some(entry) = part.entries.get_mut(offset) {
                        entry.reason = Some(reason.clone());
                        part.set_state(*offset, EntryState::Waiting { due_ms: *due_ms });
                    }
                }
            }
            QueueEvent::DeadLettering {
                partition,
                offset,
                reason,
            } => {
                if let Ok(part) = self.part(*partition) {
                    if let Some(entry) = part.entries.get_mut(offset) {
                        entry.reason = Some(reason.clone());
                        part.set_state(*offset, EntryState::DeadLettering);
                    }
                }
            }
            QueueEvent::DeadLettered { partition, offset } => {
                let _ = self.dead_lettered(*partition, *offset);
            }
            QueueEvent::Position {
                partition,
                floor,
                read,
                dead_lettered,
            } => {
                if let Ok(part) = self.part(*partition) {
                    part.read = *read;
                    part.dead_lettered = *dead_lettered;
                    let below: Vec<u64> = part.entries.range(..*floor).map(|(o, _)| *o).collect();
                    for offset in below {
                        part.set_state(offset, EntryState::Settled);
                        part.entries.remove(&offset);
                    }
                }
            }
            QueueEvent::Entry {
                partition,
                offset,
                attempts,
                first_ms,
                last_ms,
            } => {
                if let Ok(part) = self.part(*partition) {
                    part.set_state(*offset, EntryState::Settled);
                    part.entries.insert(
                        *offset,
                        Entry {
                            attempts: *attempts,
                            state: EntryState::Settled,
                            first_ms: *first_ms,
                            last_ms: *last_ms,
                            reason: None,
                        },
                    );
                }
            }
        }
    }

    /// How many events [`snapshot`](Self::snapshot) returns, without building them.
    pub fn snapshot_len(&self) -> usize {
        self.partitions
            .iter()
            .map(|p| 1 + 2 * p.entries.len())
            .sum()
    }

    /// Events that rebuild this whole state from nothing (for compaction).
    pub fn snapshot(&self) -> Vec<QueueEvent> {
        let mut events = Vec::new();
        for (p, part) in self.partitions.iter().enumerate() {
            let partition = p as u32;
            events.push(QueueEvent::Position {
                partition,
                floor: part.floor(),
                read: part.read,
                dead_lettered: part.dead_lettered,
            });
            for (offset, entry) in &part.entries {
                events.push(QueueEvent::Entry {
                    partition,
                    offset: *offset,
                    attempts: entry.attempts,
                    first_ms: entry.first_ms,
                    last_ms: entry.last_ms,
                });
                let reason = entry.reason.clone().unwrap_or_default();
                match &entry.state {
                    EntryState::InFlight { deadline_ms, .. } => {
                        events.push(QueueEvent::Delivered {
                            partition,
                            from: *offset,
                            to: offset + 1,
                            attempt: entry.attempts,
                            at_ms: entry.last_ms,
                            deadline_ms: *deadline_ms,
                        })
                    }
                    EntryState::Waiting { due_ms } => events.push(QueueEvent::Failed {
                        partition,
                        offset: *offset,
                        reason,
                        due_ms: *due_ms,
                    }),
                    EntryState::DeadLettering => events.push(QueueEvent::DeadLettering {
                        partition,
                        offset: *offset,
                        reason,
                    }),
                    EntryState::Settled => events.push(QueueEvent::Acked {
                        partition,
                        offsets: vec![*offset],
                    }),
                }
            }
        }
        events
    }
}

#[cfg(test)]
impl QueueState {
    /// The timer and dead-letter indexes agree with the entries.
    fn assert_indexes(&self) {
        for part in &self.partitions {
            let timers: std::collections::BTreeSet<(i64, u64)> = part
                .entries
                .iter()
                .filter_map(|(o, e)| timer_of(&e.state).map(|t| (t, *o)))
                .collect();
            assert_eq!(part.timers, timers);
            let dead: std::collections::BTreeSet<u64> = part
                .entries
                .iter()
                .filter(|(_, e)| e.state == EntryState::DeadLettering)
                .map(|(o, _)| *o)
                .collect();
            assert_eq!(part.dead, dead);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Random operations keep the indexes consistent with the entries, and a
        /// replay of the events gives the same entries.
        #[test]
        fn indexes_and_replay_stay_consistent(ops in proptest::collection::vec((0u8..6, 0u64..30, 0i64..5000), 1..200)) {
            let mut q = QueueState::new(QueuePolicy { max_unacked_per_partition: 20, ..policy() }, &[0, 0]);
            let members = [member("a"), member("b")];
            let mut log = Vec::new();
            let mut now = 0;
            for (op, x, dt) in ops {
                now += dt / 10;
                let p = (x % 2) as u32;
                match op {
                    0 => if let Some((from, to)) = q.new_range(p, 40, 1 + x % 5) {
                        log.push(q.deliver(p, from, to, &members[(x % 2) as usize], now));
                    },
                    1 => if let Ok(e) = q.ack(p, &[x]) { log.push(e) },
                    2 => if let Ok(e) = q.fail(p, x, "r", (x % 3 == 0).then_some(5), now) { log.push(e) },
                    3 => { let _ = q.extend(p, x, 100, now); }
                    4 => log.extend(q.expire(now, Some(&|m: &str| m == "b"))),
                    _ => {
                        for (p, o) in q.due_retries(now, 3) { log.push(q.deliver(p, o, o + 1, &members[0], now)); }
                        for (p, o) in q.dead_lettering() { if let Ok(e) = q.dead_lettered(p, o) { log.push(e) } }
                    }
                }
                q.assert_indexes();
            }
            let mut replayed = QueueState::new(q.policy.clone(), &[0, 0]);
            for event in &log { replayed.apply(event); }
            replayed.assert_indexes();
            for p in 0..2 {
                let (a, b) = (q.partition(p).unwrap(), replayed.partition(p).unwrap());
                prop_assert_eq!(a.floor(), b.floor());
                prop_assert_eq!(a.read, b.read);
                prop_assert_eq!(a.dead_lettered, b.dead_lettered);
                let attempts = |x: &PartitionQueue| x.entries.iter().map(|(o, e)| (*o, e.attempts)).collect::<Vec<_>>();
                prop_assert_eq!(attempts(a), attempts(b));
            }
        }
    }

    fn policy() -> QueuePolicy {
        QueuePolicy {
            ack_deadline_ms: 1000,
            max_attempts: 3,
            backoff: Backoff {
                initial_ms: 100,
                multiplier: 2.0,
                max_ms: 10_000,
                jitter: 0.0,
            },
            max_unacked_per_partition: 100,
        }
    }

    fn member(name: &str) -> Arc<str> {
        Arc::from(name)
    }

    #[test]
    fn a_partition_with_many_retries_does_not_hide_an_earlier_one_elsewhere() {
        let mut q = QueueState::new(policy(), &[0, 0]);
        let a = member("a");
        q.new_range(0, 20, 20).unwrap();
        q.deliver(0, 0, 20, &a, 0);
        q.new_range(1, 1, 1).unwrap();
        q.deliver(1, 0, 1, &a, 0);
        // Partition 1's retry is due first; partition 0 has 20 due a little later.
        q.fail(1, 0, "r", Some(10), 0).unwrap();
        for offset in 0..20 {
            q.fail(0, offset, "r", Some(20), 0).unwrap();
        }
        let due = q.due_retries(100, 3);
        assert_eq!(due.len(), 3);
        assert_eq!(due[0], (1, 0), "the earliest retry comes first: {due:?}");
    }

    #[test]
    fn offsets_gone_from_the_log_are_skipped_and_their_entries_settled() {
        let mut q = QueueState::new(policy(), &[0]);
        q.new_range(0, 4, 10).unwrap();
        q.deliver(0, 0, 4, &member("a"), 0);
        q.fail(0, 1, "r", None, 0).unwrap(); // waiting for a retry
        assert_eq!(q.skip_before(0, 0), None, "nothing below the start yet");
        // Retention removed [0, 10): the retry and the in-flight ones are settled,
        // and reading resumes at 10.
        let event = q.skip_before(0, 10).unwrap();
        assert!(matches!(
            event,
            QueueEvent::Position {
                floor: 10,
                read: 10,
                ..
            }
        ));
        let part = q.partition(0).unwrap();
        assert_eq!(part.read, 10);
        assert!((0..4).all(|o| part.entry(o).is_none()));
        assert!(q.due_retries(i64::MAX, 10).is_empty());
        assert_eq!(q.new_range(0, 12, 10), Some((10, 12)));
        assert_eq!(q.skip_before(0, 10), None, "done once");
    }

    #[test]
    fn a_long_nack_reason_is_clipped_in_memory_and_in_its_event() {
        let mut q = QueueState::new(policy(), &[0]);
        q.new_range(0, 1, 10).unwrap();
        q.deliver(0, 0, 1, &member("a"), 0);
        let reason = "x".repeat(64 * 1024);
        let event = q.fail(0, 0, &reason, None, 0).unwrap();
        let max = protocol::internal::queue::MAX_REASON_BYTES;
        assert!(matches!(event, QueueEvent::Failed { ref reason, .. } if reason.len() == max));
        let kept = q.partition(0).unwrap().entry(0).unwrap().reason.clone();
        assert_eq!(kept.map(|r| r.len()), Some(max));
    }

    #[test]
    fn a_poison_message_is_retried_with_growing_backoff_then_dead_lettered_without_blocking_others()
    {
        let mut q = QueueState::new(policy(), &[0]);
        let a = member("a");
        let (from, to) = q.new_range(0, 10, 10).unwrap();
        assert_eq!((from, to), (0, 10));
        q.deliver(0, from, to, &a, 0);
        // Offset 3 is poison: nacked every time; everything else is acked.
        q.ack(0, &[0, 1, 2, 4, 5, 6, 7, 8, 9]).unwrap();
        let mut now = 0;
        let mut dues = Vec::new();
        for attempt in 1..=3 {
            let event = q.fail(0, 3, "bad payload", None, now).unwrap();
            match event {
                QueueEvent::Failed { due_ms, .. } => {
                    assert!(attempt < 3);
                    dues.push(due_ms - now);
                    assert!(
                        q.due_retries(due_ms - 1, 10).is_empty(),
                        "not before its time"
                    );
                    assert_eq!(q.due_retries(due_ms, 10), [(0, 3)]);
                    now = due_ms;
                    q.deliver(0, 3, 4, &a, now);
                    assert_eq!(
                        q.partition(0).unwrap().entry(3).unwrap().attempts,
                        attempt + 1
                    );
                }
                QueueEvent::DeadLettering { reason, .. } => {
                    assert_eq!(attempt, 3);
                    assert_eq!(reason, "bad payload");
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(dues, [100, 200], "backoff grows per attempt");
        // The messages behind it were never held up: all settled but the poison one.
        assert_eq!(q.partition(0).unwrap().floor(), 3);
        q.dead_lettered(0, 3).unwrap();
        assert_eq!(q.partition(0).unwrap().floor(), 10);
        assert_eq!(
            q.counts(0),
            Counts {
                in_flight: 0,
                waiting_retry: 0,
                dead_lettered: 1
            }
        );
    }

    #[test]
    fn deadlines_expire_and_disconnected_members_lose_their_deliveries() {
        let mut q = QueueState::new(policy(), &[0, 0]);
        let (a, b) = (member("a"), member("b"));
        q.deliver(0, 0, 2, &a, 0);
        q.deliver(1, 0, 2, &b, 500);
        q.extend(0, 1, 5000, 900).unwrap();
        let events = q.expire(1000, None);
        assert_eq!(
            events.len(),
            1,
            "only partition 0 offset 0 passed its deadline: {events:?}"
        );
        let events = q.expire(1001, Some(&|m: &str| m == "b"));
        assert_eq!(events.len(), 2, "b's deliveries fail when b is gone");
        assert!(
            matches!(q.ack(0, &[5]), Err(Refusal::NotInFlight { .. })),
            "never delivered"
        );
        q.ack(0, &[1]).unwrap();
        q.ack(0, &[1])
            .unwrap_or_else(|e| panic!("acks are idempotent: {e:?}"));
        assert_eq!(q.next_wakeup_ms(), Some(1100));
    }

    #[test]
    fn flow_control_bounds_unsettled_messages() {
        let mut q = QueueState::new(
            QueuePolicy {
                max_unacked_per_partition: 5,
                ..policy()
            },
            &[0],
        );
        let a = member("a");
        let (from, to) = q.new_range(0, 100, 100).unwrap();
        assert_eq!(to - from, 5);
        q.deliver(0, from, to, &a, 0);
        assert_eq!(q.new_range(0, 100, 100), None);
        q.ack(0, &[0, 1]).unwrap();
        assert_eq!(q.new_range(0, 100, 100), Some((5, 7)));
    }

    #[test]
    fn replaying_events_or_a_snapshot_gives_the_same_state() {
        let mut q = QueueState::new(policy(), &[0]);
        let a = member("a");
        let mut log = vec![
            q.deliver(0, 0, 6, &a, 10),
            q.ack(0, &[0, 2]).unwrap(),
            q.fail(0, 1, "nope", Some(50), 20).unwrap(),
            q.fail(0, 3, "later", None, 30).unwrap(),
        ];
        for (p, o) in q.due_retries(70, 10) {
            log.push(q.deliver(p, o, o + 1, &a, 70));
        }
        let mut replayed = QueueState::new(policy(), &[0]);
        for event in &log {
            replayed.apply(event);
        }
        let mut from_snapshot = QueueState::new(policy(), &[0]);
        assert_eq!(q.snapshot_len(), q.snapshot().len());
        for event in q.snapshot() {
            from_snapshot.apply(&event);
        }
        for state in [&replayed, &from_snapshot] {
            let part = state.partition(0).unwrap();
            assert_eq!(part.floor(), 1);
            assert_eq!(part.read, 6);
            assert_eq!(part.entry(1).unwrap().attempts, 2);
            assert_eq!(part.entry(3).unwrap().attempts, 1);
            assert!(matches!(
                part.entry(3).unwrap().state,
                EntryState::Waiting { due_ms: 130 }
            ));
            assert_eq!(
                state.counts(0),
                Counts {
                    in_flight: 3,
                    waiting_retry: 1,
                    dead_lettered: 0
                }
            );
        }
    }
}
