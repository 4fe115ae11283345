//! Replaying a queue group's persisted events after a restart, and the snapshot
//! that compaction writes in their place.

use super::{Entry, EntryState, Now, QueueEvent, QueueState, Replayed};

impl QueueState {
    /// Replays a persisted event, read as `replayed` says. Members are not persisted:
    /// in-flight messages come back with no member and are redelivered once their
    /// deadline passes.
    pub fn apply(&mut self, event: &QueueEvent, replayed: Replayed) {
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
                            deadline_mono_ms: replayed.mono_of(*deadline_ms),
                        },
                    );
                }
                part.read = part.read.max(*to);
            }
            QueueEvent::Acked { partition, offsets } => {
                if let Ok(part) = self.part(*partition) {
                    for offset in offsets {
                        // An ack is refused while a message is dead-lettering, so one
                        // here came after its copy settled it (a late, idempotent ack):
                        // the copy, not the ack, decides it.
                        if !part
                            .entries
                            .get(offset)
                            .is_some_and(Entry::is_dead_lettering)
                        {
                            part.settle(*offset);
                        }
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
                        let due_mono_ms = replayed.mono_of(*due_ms);
                        part.set_state(*offset, EntryState::Waiting { due_mono_ms });
                    }
                }
            }
            QueueEvent::DeadLettering {
                partition,
                offset,
                reason,
                dlq_from,
            } => {
                if let Ok(part) = self.part(*partition) {
                    if let Some(entry) = part.entries.get_mut(offset) {
                        entry.reason = Some(reason.clone());
                        // Before 2026-12 the start was not recorded: look from 0.
                        let dlq_from = dlq_from.unwrap_or(0);
                        part.set_state(*offset, EntryState::DeadLettering { dlq_from });
                    }
                }
            }
            QueueEvent::DeadLettered {
                partition,
                offset,
                dlq_offset,
            } => match dlq_offset {
                // Whether the copy survived is decided once replay is over
                // (`confirm_copies`), when the dead-letter topic can be asked.
                // The latest record wins: after a copy lost in a crash, the copy made
                // again is recorded after the first.
                Some(dlq_offset) => {
                    if let Ok(part) = self.part(*partition) {
                        if part
                            .entries
                            .get(offset)
                            .is_some_and(Entry::is_dead_lettering)
                        {
                            let dlq_offset = *dlq_offset;
                            part.set_state(*offset, EntryState::Copied { dlq_offset });
                        }
                    }
                }
                // Before 2026-12 this came only once the copy was durable.
                None => {
                    if let Ok(part) = self.part(*partition) {
                        if matches!(part.entries.get(offset), Some(e) if e.is_dead_lettering()) {
                            part.settle(*offset);
                            part.dead_lettered += 1;
                        }
                    }
                }
            },
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
            .map(|p| 1 + 2 * p.entries.len() + p.copied())
            .sum()
    }

    /// Events that rebuild this whole state from nothing (for compaction), with their
    /// absolute times as of `now`.
    pub fn snapshot(&self, now: Now) -> Vec<QueueEvent> {
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
                    EntryState::InFlight {
                        deadline_mono_ms, ..
                    } => events.push(QueueEvent::Delivered {
                        partition,
                        from: *offset,
                        to: offset + 1,
                        attempt: entry.attempts,
                        at_ms: entry.last_ms,
                        deadline_ms: now.wall_of(*deadline_mono_ms),
                    }),
                    EntryState::Waiting { due_mono_ms } => events.push(QueueEvent::Failed {
                        partition,
                        offset: *offset,
                        reason,
                        due_ms: now.wall_of(*due_mono_ms),
                    }),
                    EntryState::DeadLettering { dlq_from } => {
                        events.push(QueueEvent::DeadLettering {
                            partition,
                            offset: *offset,
                            reason,
                            dlq_from: Some(*dlq_from),
                        })
                    }
                    // As written: the intent, then the copy's place, which the replay
                    // after a crash checks.
                    EntryState::Copied { dlq_offset } => {
                        events.push(QueueEvent::DeadLettering {
                            partition,
                            offset: *offset,
                            reason,
                            dlq_from: Some(*dlq_offset),
                        });
                        events.push(QueueEvent::DeadLettered {
                            partition,
                            offset: *offset,
                            dlq_offset: Some(*dlq_offset),
                        });
                    }
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
