//! Traced messages fetched by a stream group and not yet committed: what a commit's
//! spans are about. A commit of offset `o` on a partition covers every message below
//! `o` the group was delivered, so the spans of a commit are those of the remembered
//! messages below it, which it then forgets.
//!
//! Also what keeps a message from getting a second `deliver` span while it waits for
//! its commit: a member that fetches the same offsets again (a retried fetch, a
//! consumer that re-reads after a reconnect) delivers nothing new.
//!
//! Bounded by [`MAX_UNCOMMITTED_TRACED`] across the broker: past it a delivery is still
//! spanned but not remembered, so its commit leaves no span. Entries of a group that
//! never commits again stay until the bound pushes new ones out; a group that commits
//! keeps the set small.

use std::collections::{BTreeMap, HashMap};

use protocol::trace::TraceParent;

/// Traced, fetched, uncommitted messages remembered for their commit spans, at most.
pub const MAX_UNCOMMITTED_TRACED: usize = 16_384;

/// A group's place in one partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    group: String,
    topic: String,
    partition: u32,
}

/// What [`Uncommitted::delivered`] decided about one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// Newly delivered, and remembered for its commit.
    New,
    /// Newly delivered, but the set is full: its commit will leave no span.
    NotRemembered,
    /// Delivered before and not committed since: no new delivery.
    Again,
}

/// The set; pure, the caller locks it.
#[derive(Debug, Default)]
pub struct Uncommitted {
    by_partition: HashMap<Key, BTreeMap<u64, TraceParent>>,
    len: usize,
}

impl Uncommitted {
    /// How many messages are remembered.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The message at `offset` of `topic`/`partition` was fetched by a member of
    /// `group`.
    pub fn delivered(
        &mut self,
        group: &str,
        topic: &str,
        partition: u32,
        offset: u64,
        context: TraceParent,
    ) -> Delivered {
        let key = Key {
            group: group.into(),
            topic: topic.into(),
            partition,
        };
        if let Some(offsets) = self.by_partition.get(&key) {
            if offsets.contains_key(&offset) {
                return Delivered::Again;
            }
        }
        if self.len >= MAX_UNCOMMITTED_TRACED {
            return Delivered::NotRemembered;
        }
        self.by_partition
            .entry(key)
            .or_default()
            .insert(offset, context);
        self.len += 1;
        debug_assert!(self.len <= MAX_UNCOMMITTED_TRACED);
        Delivered::New
    }

    /// `group` committed `committed` on `topic`/`partition`: returns (and forgets) the
    /// remembered messages below it, in offset order.
    pub fn committed(
        &mut self,
        group: &str,
        topic: &str,
        partition: u32,
        committed: u64,
    ) -> Vec<(u64, TraceParent)> {
        let key = Key {
            group: group.into(),
            topic: topic.into(),
            partition,
        };
        let Some(offsets) = self.by_partition.get_mut(&key) else {
            return Vec::new();
        };
        let above = offsets.split_off(&committed);
        let below = std::mem::replace(offsets, above);
        if offsets.is_empty() {
            self.by_partition.remove(&key);
        }
        self.len -= below.len();
        below.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(seed: u8) -> TraceParent {
        TraceParent {
            trace_id: [seed; 16],
            parent_id: [1; 8],
            sampled: true,
        }
    }

    #[test]
    fn a_commit_takes_the_messages_below_it_once() {
        let mut set = Uncommitted::default();
        for offset in [3, 7, 9] {
            let d = set.delivered("g", "t", 0, offset, context(offset as u8));
            assert_eq!(d, Delivered::New);
        }
        assert_eq!(set.delivered("g", "t", 0, 7, context(7)), Delivered::Again);
        assert_eq!(set.delivered("h", "t", 0, 7, context(7)), Delivered::New);
        assert_eq!(set.len(), 4);

        assert!(
            set.committed("g", "t", 1, 100).is_empty(),
            "other partition"
        );
        let taken: Vec<u64> = set.committed("g", "t", 0, 8).iter().map(|t| t.0).collect();
        assert_eq!(taken, [3, 7], "below the committed offset, in order");
        assert!(set.committed("g", "t", 0, 8).is_empty(), "once");
        assert_eq!(set.len(), 2);
        let taken: Vec<u64> = set.committed("g", "t", 0, 10).iter().map(|t| t.0).collect();
        assert_eq!(taken, [9]);
        assert_eq!(set.len(), 1, "group h's message stays");
        assert_eq!(set.delivered("g", "t", 0, 7, context(7)), Delivered::New);
    }

    #[test]
    fn past_the_bound_deliveries_are_not_remembered() {
        let mut set = Uncommitted::default();
        for offset in 0..MAX_UNCOMMITTED_TRACED as u64 {
            assert_eq!(
                set.delivered("g", "t", 0, offset, context(1)),
                Delivered::New
            );
        }
        let over = MAX_UNCOMMITTED_TRACED as u64;
        assert_eq!(
            set.delivered("g", "t", 0, over, context(1)),
            Delivered::NotRemembered
        );
        assert_eq!(set.len(), MAX_UNCOMMITTED_TRACED);
        assert_eq!(set.committed("g", "t", 0, 10).len(), 10);
        assert_eq!(set.delivered("g", "t", 0, over, context(1)), Delivered::New);
    }
}
