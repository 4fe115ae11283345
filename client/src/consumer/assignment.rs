//! Following the membership: which partitions the consumer reads, and from where.
//!
//! Two steps, so that the rule is a pure function tested alone: [`plan_change`]
//! compares the applied membership with the latest one and says which partitions keep
//! their positions, which (re)start from the group's committed offsets and which are
//! dropped with what was buffered for them; [`Consumer::apply_membership`] commits the
//! positions of the partitions being dropped ([`revoked_positions`]: the broker still
//! counts them as this member's until it heartbeats that it applied the change) and
//! looks up the starting offsets, and only then changes the fetcher and the positions,
//! all at once after the last `.await`, so that a call cancelled half way changes
//! nothing (a commit it made is made again next time, which is harmless). Last, it
//! tells the heartbeater what it applied, so the broker can hand the dropped
//! partitions over.

use std::collections::{BTreeMap, HashMap};

use super::membership::Membership;
use super::{Consumer, StartFrom};
use crate::connection::Client;
use crate::error::ClientError;

/// How to get from one applied assignment to the next: which partitions keep their
/// positions, and which must be (re)started from the group's committed offsets.
#[derive(Debug, PartialEq, Eq)]
struct AssignmentChange {
    keep: Vec<u32>,
    start: Vec<u32>,
    drop: Vec<u32>,
}

/// Pure: a partition keeps this member's position if the member id is the same and
/// the broker told it the partition both times, however many generations apart. The
/// broker gives a partition to another member only after this one released it, and
/// this member releases a partition only by applying an assignment without it (which
/// then is not in `old`). The one exception, a release forced after a whole session
/// timeout without applying, leaves a position another member may have committed
/// past or not reached: records read twice, never skipped.
fn plan_change(old: Option<&Membership>, new: &Membership) -> AssignmentChange {
    let Some(old) = old else {
        return AssignmentChange {
            keep: Vec::new(),
            start: new.partitions.clone(),
            drop: Vec::new(),
        };
    };
    let continuous = old.member_id == new.member_id;
    let mut change = AssignmentChange {
        keep: Vec::new(),
        start: Vec::new(),
        drop: Vec::new(),
    };
    for &p in &new.partitions {
        if continuous && old.partitions.binary_search(&p).is_ok() {
            change.keep.push(p);
        } else {
            change.start.push(p);
        }
    }
    for &p in &old.partitions {
        if change.keep.binary_search(&p).is_err() {
            change.drop.push(p);
        }
    }
    change
}

/// Pure: what to commit for the partitions `change` drops, in `new`'s generation:
/// their returned positions not committed yet. Nothing when the member id changed:
/// the old member is gone, and with it its right to commit.
fn revoked_positions(
    old: Option<&Membership>,
    new: &Membership,
    change: &AssignmentChange,
    returned: &BTreeMap<u32, u64>,
    committed: &HashMap<u32, u64>,
) -> Vec<(u32, u64)> {
    if old.is_none_or(|old| old.member_id != new.member_id) {
        return Vec::new();
    }
    change
        .drop
        .iter()
        .filter_map(|p| {
            let offset = *returned.get(p)?;
            (committed.get(p) != Some(&offset)).then_some((*p, offset))
        })
        .collect()
}

/// Pure: where a partition that (re)starts begins. From `start` (the group's
/// committed offset, or the configured start position without one), unless this
/// consumer rejoined as a new member (the broker forgot the old one: a restart, or a
/// session timeout) and had already returned records of the partition up to `before`,
/// past `start`: then from `before`. Every record below it was returned by this
/// consumer, so nothing is skipped, and nothing this consumer returned is returned
/// again. A commit past `before` (another member read further meanwhile) wins.
fn resume_offset(start: u64, before: Option<u64>) -> u64 {
    before.map_or(start, |before| before.max(start))
}

impl Consumer {
    /// Brings the fetcher in line with the latest assignment: commits the positions of
    /// the partitions it drops, starts the ones it gains, and reports the applied
    /// generation to the heartbeater. Cancel-safe: the commit and the lookups come
    /// first, the state changes after them, all at once.
    ///
    /// A failed commit of dropped partitions is logged and the partitions are dropped
    /// all the same: their next owner reads again from the last commit (duplicates,
    /// never a gap).
    pub(super) async fn apply_membership(&mut self) -> Result<(), ClientError> {
        let current = self.membership.borrow().clone();
        if self.applied.as_ref() == Some(&current) {
            return Ok(());
        }
        let change = plan_change(self.applied.as_ref(), &current);
        let revoked = revoked_positions(
            self.applied.as_ref(),
            &current,
            &change,
            &self.returned,
            &self.committed,
        );
        if !revoked.is_empty() {
            let committed = self
                .client
                .commit_offsets(
                    &self.group,
                    &current.member_id,
                    current.generation,
                    &self.topic,
                    &revoked,
                )
                .await;
            match committed {
                Ok(()) => tracing::debug!(group = %self.group, ?revoked, "committed on revoke"),
                Err(error) => tracing::warn!(
                    group = %self.group,
                    ?revoked,
                    %error,
                    "committing revoked partitions failed; their next owner reads again from the last commit"
                ),
            }
        }
        let starts = if change.start.is_empty() {
            Vec::new()
        } else {
            Self::starting_offsets(
                &self.client,
                &self.group,
                &self.topic,
                self.config.start,
                &change.start,
            )
            .await?
        };
        let rejoined = self
            .applied
            .as_ref()
            .is_some_and(|old| old.member_id != current.member_id);
        // How far this consumer got under its previous member id, read before the
        // dropped partitions forget it.
        let returned_before = self.returned.clone();
        for p in &change.drop {
            self.fetcher.revoke(*p);
            self.returned.remove(p);
            self.committed.remove(p);
        }
        let mut resumed = Vec::new();
        for (p, start, committed) in starts {
            let before = if rejoined {
                returned_before.get(&p).copied()
            } else {
                None
            };
            let offset = resume_offset(start, before);
            if offset != start {
                resumed.push((p, offset));
            }
            self.fetcher.assign(p, offset);
            self.returned.insert(p, offset);
            // An untouched partition is not committed again; with no committed offset
            // the start position stands in for one. A resumed partition differs from
            // its commit, so the next commit records how far this consumer got.
            self.committed.insert(p, committed.unwrap_or(start));
        }
        if !resumed.is_empty() {
            tracing::debug!(group = %self.group, ?resumed, "rejoined; resuming past the commits");
        }
        tracing::debug!(group = %self.group, ?current, ?change, "assignment applied");
        self.heartbeater.applied(&current, !change.drop.is_empty());
        self.applied = Some(current);
        Ok(())
    }

    /// `(partition, start offset, committed offset)` for newly owned partitions.
    ///
    /// An associated function over the fields it needs, not `&self`: a future holding
    /// `&Consumer` would need `Consumer: Sync`, and its fetcher is not, which would make
    /// the consumer unusable inside `tokio::spawn`.
    async fn starting_offsets(
        client: &Client,
        group: &str,
        topic: &str,
        start_from: StartFrom,
        partitions: &[u32],
    ) -> Result<Vec<(u32, u64, Option<u64>)>, ClientError> {
        let committed: HashMap<u32, Option<u64>> = client
            .fetch_offsets(group, topic)
            .await?
            .into_iter()
            .map(|c| (c.partition, c.offset))
            .collect();
        let uncommitted: Vec<u32> = partitions
            .iter()
            .copied()
            .filter(|p| committed.get(p).copied().flatten().is_none())
            .collect();
        let needs_bounds = !uncommitted.is_empty();
        let by_time: HashMap<u32, u64> = match start_from {
            StartFrom::Timestamp(ms) if !uncommitted.is_empty() => client
                .offsets_for_time(topic, &uncommitted, ms)
                .await?
                .into_iter()
                .collect(),
            _ => HashMap::new(),
        };
        let bounds: HashMap<u32, (u64, u64)> = if needs_bounds {
            client
                .describe_topic(topic)
                .await?
                .partitions
                .into_iter()
                .map(|p| (p.partition, (p.start_offset, p.end_offset)))
                .collect()
        } else {
            HashMap::new()
        };
        let mut starts = Vec::with_capacity(partitions.len());
        for &p in partitions {
            let committed = committed.get(&p).copied().flatten();
            let offset = match committed {
                Some(offset) => offset,
                None => {
                    let (start, end) = bounds.get(&p).copied().unwrap_or((0, 0));
                    match start_from {
                        StartFrom::Earliest => start,
                        StartFrom::Latest => end,
                        StartFrom::Offset(o) => o.clamp(start, end),
                        StartFrom::Timestamp(_) => by_time.get(&p).copied().unwrap_or(start),
                    }
                }
            };
            starts.push((p, offset, committed));
        }
        Ok(starts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(member: &str, generation: u32, partitions: &[u32]) -> Membership {
        Membership::new(member.into(), generation, partitions.to_vec())
    }

    #[test]
    fn first_assignment_starts_everything() {
        let change = plan_change(None, &m("a", 1, &[2, 0]));
        assert_eq!(change.start, [0, 2]);
        assert!(change.keep.is_empty() && change.drop.is_empty());
    }

    #[test]
    fn next_generation_keeps_positions_of_kept_partitions() {
        let change = plan_change(Some(&m("a", 1, &[0, 1, 2, 3])), &m("a", 2, &[0, 2]));
        assert_eq!(change.keep, [0, 2]);
        assert!(change.start.is_empty());
        assert_eq!(change.drop, [1, 3]);
    }

    #[test]
    fn skipped_generations_keep_positions_and_a_new_member_id_restarts_from_commits() {
        // Told partition 0 in both: the broker cannot have given it to anyone else in
        // between, since this member never applied an assignment without it.
        let change = plan_change(Some(&m("a", 1, &[0, 1])), &m("a", 3, &[0]));
        assert_eq!(change.keep, [0]);
        assert_eq!(change.drop, [1]);
        // Told a partition again after applying an assignment without it: restart.
        let change = plan_change(Some(&m("a", 2, &[1])), &m("a", 3, &[0, 1]));
        assert_eq!((change.keep, change.start), (vec![1], vec![0]));
        let change = plan_change(Some(&m("a", 1, &[0])), &m("b", 2, &[0]));
        assert_eq!(change.start, [0]);
        assert_eq!(change.drop, [0]);
    }

    #[test]
    fn a_rejoined_consumer_resumes_where_it_got_to_unless_the_group_got_further() {
        assert_eq!(resume_offset(10, None), 10, "never read it: the commit");
        assert_eq!(resume_offset(10, Some(25)), 25, "read past the commit");
        assert_eq!(
            resume_offset(30, Some(25)),
            30,
            "another member committed further"
        );
    }

    #[test]
    fn dropped_partitions_commit_what_was_returned_and_not_committed() {
        let old = m("a", 1, &[0, 1, 2, 3]);
        let new = m("a", 2, &[0]);
        let change = plan_change(Some(&old), &new);
        let returned = BTreeMap::from([(0, 10), (1, 20), (2, 30), (3, 40)]);
        let committed = HashMap::from([(0, 5), (1, 20), (2, 25)]);
        assert_eq!(
            revoked_positions(Some(&old), &new, &change, &returned, &committed),
            [(2, 30), (3, 40)],
            "1 is committed already; 0 is kept"
        );
        let rejoined = m("b", 3, &[]);
        let change = plan_change(Some(&old), &rejoined);
        assert!(
            revoked_positions(Some(&old), &rejoined, &change, &returned, &committed).is_empty(),
            "a member that is gone commits nothing"
        );
        assert!(revoked_positions(None, &new, &change, &returned, &committed).is_empty());
    }
}
