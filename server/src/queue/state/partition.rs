//! One partition of a queue group's state: its delivered, unsettled messages and the
//! indexes that find what is due without scanning them all.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Where a message is.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryState {
    /// Delivered to `member` (unknown after a restart) until `deadline_mono_ms`, on
    /// the monotonic clock.
    InFlight {
        member: Option<Arc<str>>,
        deadline_mono_ms: u64,
    },
    /// Waiting to be redelivered at `due_mono_ms`, on the monotonic clock.
    Waiting { due_mono_ms: u64 },
    /// Out of attempts, waiting for its copy in the dead-letter topic. The topic's end
    /// was `dlq_from` when this began, so a copy made for it is at or after that.
    DeadLettering { dlq_from: u64 },
    /// Its copy was appended to the dead-letter topic at `dlq_offset` and the settle
    /// recorded; settled once both are durable (after a restart: once the copy is
    /// found there).
    Copied { dlq_offset: u64 },
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
    /// First delivery time, by the wall clock (what a dead letter's history shows).
    pub first_ms: i64,
    /// Latest delivery time, by the wall clock.
    pub last_ms: i64,
    /// Why the latest delivery failed.
    pub reason: Option<String>,
}

impl Entry {
    /// Out of attempts: waiting for its dead-letter copy, or for that copy to be durable.
    pub fn is_dead_lettering(&self) -> bool {
        matches!(
            self.state,
            EntryState::DeadLettering { .. } | EntryState::Copied { .. }
        )
    }
}

/// The state of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionQueue {
    /// Next offset never delivered.
    pub read: u64,
    /// Messages dead-lettered so far.
    pub dead_lettered: u64,
    pub(super) entries: BTreeMap<u64, Entry>,
    /// `(deadline or due time, offset)` of every entry in flight or waiting, on the
    /// monotonic clock: the dispatcher finds what is due without scanning all entries.
    pub(super) timers: BTreeSet<(u64, u64)>,
    /// Offsets waiting for their dead-letter copy.
    pub(super) dead: BTreeSet<u64>,
    /// How many entries are [`EntryState::Copied`] (their copy not yet durable).
    pub(super) copied: usize,
}

/// The time an entry in this state is due, if any.
pub(super) fn timer_of(state: &EntryState) -> Option<u64> {
    match state {
        EntryState::InFlight {
            deadline_mono_ms, ..
        } => Some(*deadline_mono_ms),
        EntryState::Waiting { due_mono_ms } => Some(*due_mono_ms),
        EntryState::DeadLettering { .. } | EntryState::Copied { .. } | EntryState::Settled => None,
    }
}

impl PartitionQueue {
    /// Entries whose dead-letter copy is not yet known durable.
    pub fn copied(&self) -> usize {
        self.copied
    }

    /// Everything below this is settled.
    pub fn floor(&self) -> u64 {
        self.entries
            .first_key_value()
            .map_or(self.read, |(offset, _)| *offset)
    }

    /// Moves an entry to a new state, keeping the indexes in step. Every state
    /// change of an existing entry goes through here.
    pub(super) fn set_state(&mut self, offset: u64, state: EntryState) {
        let Some(entry) = self.entries.get_mut(&offset) else {
            return;
        };
        if let Some(at) = timer_of(&entry.state) {
            self.timers.remove(&(at, offset));
        }
        if matches!(entry.state, EntryState::DeadLettering { .. }) {
            self.dead.remove(&offset);
        }
        if matches!(entry.state, EntryState::Copied { .. }) {
            self.copied -= 1;
        }
        if matches!(state, EntryState::Copied { .. }) {
            self.copied += 1;
        }
        if let Some(at) = timer_of(&state) {
            self.timers.insert((at, offset));
        }
        if matches!(state, EntryState::DeadLettering { .. }) {
            self.dead.insert(offset);
        }
        entry.state = state;
    }

    /// The entry for `offset`, created (settled, no attempts) if new.
    pub(super) fn entry_mut(&mut self, offset: u64, now_ms: i64) -> &mut Entry {
        self.entries.entry(offset).or_insert(Entry {
            attempts: 0,
            state: EntryState::Settled,
            first_ms: now_ms,
            last_ms: now_ms,
            reason: None,
        })
    }

    pub(super) fn settle(&mut self, offset: u64) {
        self.set_state(offset, EntryState::Settled);
        while let Some(entry) = self.entries.first_entry() {
            if entry.get().state != EntryState::Settled {
                break;
            }
            entry.remove();
        }
        debug_assert!(
            self.floor() <= self.read,
            "everything below the floor was read"
        );
    }

    /// The entry for `offset`, if delivered and not yet below the floor.
    pub fn entry(&self, offset: u64) -> Option<&Entry> {
        self.entries.get(&offset)
    }
}
