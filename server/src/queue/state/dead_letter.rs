//! The dead-letter side of a queue group's state: a message out of attempts is
//! *dead-lettering* (its copy not yet made), then *copied* (the copy is in the
//! dead-letter topic at a known offset), then settled once the copy and the record
//! of it are durable. After a crash, recovery checks each recorded copy, so a
//! message reaches the dead-letter topic exactly once.

use super::{EntryState, QueueEvent, QueueState, Refusal};

impl QueueState {
    /// The dead-letter copy of `offset` was appended at `dlq_offset`: record it (the
    /// returned event); [`copy_durable`](Self::copy_durable) settles the message once
    /// the copy and the event are durable.
    pub fn dead_lettered(
        &mut self,
        partition: u32,
        offset: u64,
        dlq_offset: u64,
    ) -> Result<QueueEvent, Refusal> {
        let part = self.part(partition)?;
        if !matches!(part.entries.get(&offset), Some(e) if matches!(e.state, EntryState::DeadLettering { .. }))
        {
            return Err(Refusal::NotInFlight { partition, offset });
        }
        part.set_state(offset, EntryState::Copied { dlq_offset });
        Ok(QueueEvent::DeadLettered {
            partition,
            offset,
            dlq_offset: Some(dlq_offset),
        })
    }

    /// The copy recorded by [`dead_lettered`](Self::dead_lettered) and its event are
    /// durable: the message is settled. `false` if it was not waiting for that.
    pub fn copy_durable(&mut self, partition: u32, offset: u64) -> bool {
        let Ok(part) = self.part(partition) else {
            return false;
        };
        if !matches!(part.entries.get(&offset), Some(e) if matches!(e.state, EntryState::Copied { .. }))
        {
            return false;
        }
        part.settle(offset);
        part.dead_lettered += 1;
        true
    }

    /// After a restart, decides each copy recorded before it: `copy_exists(dlq_offset)`
    /// says whether the dead-letter topic holds it. A copy that is there settles its
    /// message; one the crash took sends its message back to be copied again, from
    /// `dlq_end` (the topic's end now). Returns how many were settled and redone.
    pub fn confirm_copies(
        &mut self,
        copy_exists: impl Fn(u64) -> bool,
        dlq_end: u64,
    ) -> (usize, usize) {
        let mut copied = Vec::new();
        for (p, part) in self.partitions.iter().enumerate() {
            for (offset, entry) in &part.entries {
                if let EntryState::Copied { dlq_offset } = entry.state {
                    copied.push((p as u32, *offset, dlq_offset));
                }
            }
        }
        let (mut settled, mut redone) = (0, 0);
        for (partition, offset, dlq_offset) in copied {
            if copy_exists(dlq_offset) {
                self.copy_durable(partition, offset);
                settled += 1;
            } else if let Ok(part) = self.part(partition) {
                part.set_state(offset, EntryState::DeadLettering { dlq_from: dlq_end });
                redone += 1;
            }
        }
        (settled, redone)
    }

    /// Messages waiting for their dead-letter copy, with the dead-letter offset their
    /// copy can start at (after a restart, the caller looks there for a copy made
    /// before the crash rather than copying twice).
    pub fn dead_lettering(&self) -> Vec<(u32, u64, u64)> {
        let mut out = Vec::new();
        for (p, part) in self.partitions.iter().enumerate() {
            for offset in &part.dead {
                if let Some(EntryState::DeadLettering { dlq_from }) =
                    part.entries.get(offset).map(|e| &e.state)
                {
                    out.push((p as u32, *offset, *dlq_from));
                }
            }
        }
        out
    }
}
