//! One group's state: its members, where the assignment wants each partition (its
//! *target* member), which member *owns* it now, and the handover between the two.
//! Pure: times are passed in, nothing is read or written, and the coordinator
//! ([`super::Groups`]) holds the lock around every call.
//!
//! # The two-phase handover (stream groups)
//!
//! A partition has at most one owner, and only its owner may commit it. Every change
//! of membership starts a new generation with new targets ([`assign::sticky`], which
//! moves as few partitions as it can). A partition whose target moved away from its
//! owner is *revoked*: it stays owned by the old member, recorded with the generation
//! that revoked it and the time, but is no longer in what that member is told, which
//! is how the member learns to stop reading it and commit what it returned. The owner
//! *releases* it by heartbeating with a generation at or after the one that revoked it
//! (it has applied that assignment: stopped and committed), by leaving, or by its
//! session expiring; a revocation still held a session timeout later is released by
//! force, so a member that heartbeats but no longer polls cannot pin partitions. Only
//! then does the target member own the partition and is told about it, so it starts
//! from the old owner's last commit and no two members read a partition at once.
//!
//! A member is told the partitions it owns that are in its target: revoked ones
//! disappear at once, gained ones appear once released. The group's change counter
//! ([`Group::watch`]) moves whenever what any member is told may have changed.
//!
//! Queue groups have no ownership: every member is told every partition (the queue
//! dispatcher hands out the messages), and nothing is revoked.

use std::collections::{BTreeMap, BTreeSet};

use protocol::ops::group::GroupMode;
use tokio::sync::watch;

use super::assign;

/// One member of a group.
#[derive(Debug)]
pub(super) struct Member {
    /// From the member's handshake.
    pub(super) client_name: String,
    /// The member is removed after this long without a heartbeat, and a revocation it
    /// holds this long is forced.
    pub(super) session_timeout_ms: u64,
    /// Monotonic time of the last join, heartbeat or commit.
    pub(super) last_seen_ms: u64,
    /// Where the assignment wants this member: sorted. Queue groups: every partition.
    target: Vec<u32>,
    /// Stream groups: the partitions this member may read and commit, including those
    /// revoked from it and not yet released.
    owned: BTreeSet<u32>,
    /// Owned partitions outside the target, waiting for the member to release them.
    revoking: BTreeMap<u32, Revocation>,
}

/// When a partition was revoked from its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Revocation {
    /// The generation whose assignment took it away.
    generation: u32,
    /// Monotonic time of that rebalance.
    since_ms: u64,
}

impl Member {
    /// A member that owns nothing yet.
    pub(super) fn new(client_name: &str, session_timeout_ms: u64, now_ms: u64) -> Member {
        Member {
            client_name: client_name.to_string(),
            session_timeout_ms,
            last_seen_ms: now_ms,
            target: Vec::new(),
            owned: BTreeSet::new(),
            revoking: BTreeMap::new(),
        }
    }

    /// Whether its session is still alive at `now_ms`.
    pub(super) fn alive_at(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.last_seen_ms) < self.session_timeout_ms
    }

    /// Whether it may commit `partition`: it owns it, revoked or not.
    pub(super) fn owns(&self, partition: u32) -> bool {
        self.owned.contains(&partition)
    }
}

/// Revocations released by force: their member held them a whole session timeout.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Forced {
    /// The member that held them.
    pub(super) member: String,
    /// The partitions, sorted.
    pub(super) partitions: Vec<u32>,
}

/// Whether generation `a` comes before `b`. Generations wrap, so this is serial
/// number arithmetic (RFC 1982): `a` is before `b` if `b` is less than half the
/// number space ahead of it.
pub(super) fn is_before(a: u32, b: u32) -> bool {
    a != b && b.wrapping_sub(a) < 1 << 31
}

/// Whether a member that has applied generation `applied` has applied a revocation
/// made in generation `revoked`, the group being at `current`: `revoked <= applied <=
/// current`, counted back from `current` so that wrapping does not matter. A
/// generation the group has not reached yet applies nothing.
fn has_applied(revoked: u32, applied: u32, current: u32) -> bool {
    current.wrapping_sub(applied) <= current.wrapping_sub(revoked)
}

/// One group: its topic, mode, generation and members.
#[derive(Debug)]
pub(super) struct Group {
    /// The topic it consumes.
    pub(super) topic: String,
    /// Stream or queue.
    pub(super) mode: GroupMode,
    generation: u32,
    /// In member id order: the stable order the assignment is computed in.
    members: BTreeMap<String, Member>,
    /// The topic's partition count at the last rebalance.
    partitions: u32,
    /// Moves whenever what any member is told may have changed.
    changed: watch::Sender<u64>,
}

impl Group {
    /// A group without members, at generation 0.
    pub(super) fn new(topic: &str, mode: GroupMode) -> Group {
        Group {
            topic: topic.to_string(),
            mode,
            generation: 0,
            members: BTreeMap::new(),
            partitions: 0,
            changed: watch::channel(0).0,
        }
    }

    /// The current generation: it moves on every change of membership.
    pub(super) fn generation(&self) -> u32 {
        self.generation
    }

    /// Its members, in id order.
    pub(super) fn members(&self) -> impl Iterator<Item = (&String, &Member)> {
        self.members.iter()
    }

    /// How many members it has.
    pub(super) fn len(&self) -> usize {
        self.members.len()
    }

    /// One member.
    pub(super) fn member(&self, id: &str) -> Option<&Member> {
        self.members.get(id)
    }

    /// One member, to refresh its session.
    pub(super) fn member_mut(&mut self, id: &str) -> Option<&mut Member> {
        self.members.get_mut(id)
    }

    /// A receiver whose value moves whenever what any member is told may have
    /// changed: on every rebalance, and whenever a released partition gets its new
    /// owner.
    pub(super) fn watch(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// What `id` is told, sorted: the partitions it owns in its target (stream), or
    /// every partition (queue). `None` if it is not a member.
    pub(super) fn told(&self, id: &str) -> Option<Vec<u32>> {
        let member = self.members.get(id)?;
        Some(match self.mode {
            GroupMode::Queue => member.target.clone(),
            GroupMode::Stream => member
                .target
                .iter()
                .copied()
                .filter(|p| member.owned.contains(p))
                .collect(),
        })
    }

    /// Adds a new member and rebalances the group's `partitions` partitions.
    pub(super) fn add(&mut self, id: String, member: Member, partitions: u32, now_ms: u64) {
        debug_assert!(!self.members.contains_key(&id), "a new member");
        self.members.insert(id, member);
        self.rebalance(partitions, now_ms);
    }

    /// The topic now has `partitions` partitions: if that is a change and anyone is a
    /// member, a new generation assigns them.
    pub(super) fn resize(&mut self, partitions: u32, now_ms: u64) {
        if partitions != self.partitions && !self.members.is_empty() {
            self.rebalance(partitions, now_ms);
        }
    }

    /// The members whose session expired at `now_ms`.
    pub(super) fn expired(&self, now_ms: u64) -> Vec<String> {
        self.members
            .iter()
            .filter(|(_, m)| !m.alive_at(now_ms))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Removes members (they release everything they own at once) and rebalances if
    /// any was a member. Returns how many were.
    pub(super) fn remove(&mut self, ids: &[String], partitions: u32, now_ms: u64) -> usize {
        let removed = ids
            .iter()
            .filter(|id| self.members.remove(id.as_str()).is_some())
            .count();
        if removed > 0 {
            self.rebalance(partitions, now_ms);
        }
        removed
    }

    /// The member heartbeated saying it has applied generation `applied`: releases
    /// the partitions revoked from it in that generation or before, and gives them to
    /// their target members. Returns the partitions released.
    pub(super) fn applied(&mut self, id: &str, applied: u32) -> Vec<u32> {
        let current = self.generation;
        let Some(member) = self.members.get_mut(id) else {
            return Vec::new();
        };
        let released: Vec<u32> = member
            .revoking
            .iter()
            .filter(|(_, r)| has_applied(r.generation, applied, current))
            .map(|(&p, _)| p)
            .collect();
        for p in &released {
            member.revoking.remove(p);
            member.owned.remove(p);
        }
        if !released.is_empty() {
            self.settle();
        }
        self.check();
        released
    }

    /// Releases by force every revocation its member has held for a whole session
    /// timeout at `now_ms`, and gives the partitions to their target members.
    pub(super) fn force_overdue(&mut self, now_ms: u64) -> Vec<Forced> {
        let mut forced = Vec::new();
        for (id, member) in &mut self.members {
            let timeout_ms = member.session_timeout_ms;
            let overdue: Vec<u32> = member
                .revoking
                .iter()
                .filter(|(_, r)| now_ms.saturating_sub(r.since_ms) >= timeout_ms)
                .map(|(&p, _)| p)
                .collect();
            if overdue.is_empty() {
                continue;
            }
            for p in &overdue {
                member.revoking.remove(p);
                member.owned.remove(p);
            }
            forced.push(Forced {
                member: id.clone(),
                partitions: overdue,
            });
        }
        if !forced.is_empty() {
            self.settle();
        }
        self.check();
        forced
    }

    /// Starts a new generation: new targets, revocations for partitions whose target
    /// moved away from their owner (and cancelled for those whose target came back),
    /// and unowned partitions to their target members.
    fn rebalance(&mut self, partitions: u32, now_ms: u64) {
        self.generation = self.generation.wrapping_add(1);
        self.partitions = partitions;
        match self.mode {
            GroupMode::Queue => {
                for member in self.members.values_mut() {
                    member.target = (0..partitions).collect();
                }
            }
            GroupMode::Stream => {
                let current: Vec<Vec<u32>> =
                    self.members.values().map(|m| m.target.clone()).collect();
                let targets = assign::sticky(&current, partitions);
                let generation = self.generation;
                for (member, target) in self.members.values_mut().zip(targets) {
                    member.target = target;
                    let Member {
                        target,
                        owned,
                        revoking,
                        ..
                    } = member;
                    owned.retain(|&p| p < partitions);
                    revoking.retain(|p, _| owned.contains(p) && target.binary_search(p).is_err());
                    for &p in owned.iter() {
                        if target.binary_search(&p).is_err() {
                            revoking.entry(p).or_insert(Revocation {
                                generation,
                                since_ms: now_ms,
                            });
                        }
                    }
                }
                self.settle();
            }
        }
        self.publish();
        self.check();
    }

    /// Gives every partition nobody owns to its target member (stream groups).
    fn settle(&mut self) {
        if self.mode == GroupMode::Queue {
            return;
        }
        let mut owned = vec![false; self.partitions as usize];
        for p in self.members.values().flat_map(|m| &m.owned) {
            owned[*p as usize] = true;
        }
        let mut moved = false;
        for member in self.members.values_mut() {
            for &p in &member.target {
                if !std::mem::replace(&mut owned[p as usize], true) {
                    member.owned.insert(p);
                    moved = true;
                }
            }
        }
        if moved {
            self.publish();
        }
    }

    fn publish(&self) {
        self.changed
            .send_modify(|version| *version = version.wrapping_add(1));
    }

    /// Debug builds: the ownership rules hold. A partition has at most one owner, and
    /// one as soon as its target member has none to wait for; an owned partition
    /// outside the owner's target is being revoked, and only those are.
    fn check(&self) {
        if !cfg!(debug_assertions) || self.mode == GroupMode::Queue {
            return;
        }
        let mut owners = vec![0u32; self.partitions as usize];
        for member in self.members.values() {
            for &p in &member.owned {
                owners[p as usize] += 1;
                let targeted = member.target.binary_search(&p).is_ok();
                assert_eq!(
                    targeted,
                    !member.revoking.contains_key(&p),
                    "partition {p}: revoking exactly when outside the target"
                );
            }
            assert!(
                member.revoking.keys().all(|p| member.owned.contains(p)),
                "only owned partitions are revoked"
            );
        }
        assert!(owners.iter().all(|&n| n <= 1), "one owner at most");
        if !self.members.is_empty() {
            assert!(owners.iter().all(|&n| n == 1), "every partition owned");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT_MS: u64 = 1_000;

    fn group(members: &[&str], partitions: u32) -> Group {
        let mut group = Group::new("t", GroupMode::Stream);
        for id in members {
            group.add(
                id.to_string(),
                Member::new("test", TIMEOUT_MS, 0),
                partitions,
                0,
            );
        }
        group
    }

    fn told(group: &Group, id: &str) -> Vec<u32> {
        group.told(id).unwrap()
    }

    #[test]
    fn generations_compare_across_the_wrap() {
        assert!(is_before(1, 2) && !is_before(2, 1) && !is_before(2, 2));
        assert!(is_before(u32::MAX, 0), "0 follows u32::MAX");
        assert!(has_applied(5, 5, 7) && has_applied(5, 7, 7));
        assert!(!has_applied(5, 4, 7), "an older generation applies nothing");
        assert!(!has_applied(5, 8, 7), "nor one the group has not reached");
        assert!(has_applied(u32::MAX, 0, 1), "across the wrap");
    }

    #[test]
    fn a_revoked_partition_moves_only_when_its_owner_applied_the_generation() {
        let mut g = group(&["a"], 2);
        assert_eq!(told(&g, "a"), [0, 1]);
        g.add("b".into(), Member::new("test", TIMEOUT_MS, 0), 2, 10);
        let revoked_in = g.generation();
        assert_eq!(told(&g, "a"), [0], "a stops reading 1 at once");
        assert!(told(&g, "b").is_empty(), "b waits for a");
        assert!(g.member("a").unwrap().owns(1), "a may still commit 1");
        assert!(g.applied("a", revoked_in - 1).is_empty(), "not applied yet");
        assert!(told(&g, "b").is_empty());
        let changes = g.watch();
        assert_eq!(g.applied("a", revoked_in), [1]);
        assert!(changes.has_changed().unwrap(), "b is told something new");
        assert_eq!(told(&g, "b"), [1]);
        assert!(!g.member("a").unwrap().owns(1));
        assert!(g.member("b").unwrap().owns(1));
    }

    #[test]
    fn a_target_that_comes_back_cancels_the_revocation() {
        let mut g = group(&["a", "b"], 4);
        assert_eq!((told(&g, "a"), told(&g, "b")), (vec![0, 1], vec![]));
        // b was told nothing: a still holds 2 and 3. Then b goes.
        g.remove(&["b".into()], 4, 20);
        assert_eq!(told(&g, "a"), [0, 1, 2, 3], "a's again, never released");
        assert!(
            g.applied("a", g.generation()).is_empty(),
            "nothing to release"
        );
    }

    #[test]
    fn an_overdue_revocation_is_forced_after_the_session_timeout() {
        let mut g = group(&["a"], 2);
        g.add("b".into(), Member::new("test", TIMEOUT_MS, 100), 2, 100);
        assert!(g.force_overdue(100 + TIMEOUT_MS - 1).is_empty());
        let forced = g.force_overdue(100 + TIMEOUT_MS);
        assert_eq!(
            forced,
            [Forced {
                member: "a".into(),
                partitions: vec![1]
            }]
        );
        assert_eq!(told(&g, "b"), [1]);
        assert!(g.force_overdue(10 * TIMEOUT_MS).is_empty(), "once");
    }

    #[test]
    fn leaving_releases_everything_at_once() {
        let mut g = group(&["a", "b"], 4);
        g.applied("a", g.generation());
        assert_eq!((told(&g, "a"), told(&g, "b")), (vec![0, 1], vec![2, 3]));
        g.add("c".into(), Member::new("test", TIMEOUT_MS, 0), 4, 30);
        let c_gets: Vec<u32> = g.member("c").unwrap().target.clone();
        assert!(told(&g, "c").is_empty());
        g.remove(&["a".into(), "b".into()], 4, 40);
        assert_eq!(told(&g, "c"), [0, 1, 2, 3], "no one to wait for");
        assert_eq!(c_gets.len(), 1);
    }

    #[test]
    fn queue_members_are_told_every_partition() {
        let mut g = Group::new("t", GroupMode::Queue);
        for id in ["a", "b"] {
            g.add(id.into(), Member::new("test", TIMEOUT_MS, 0), 3, 0);
        }
        assert_eq!(
            (told(&g, "a"), told(&g, "b")),
            (vec![0, 1, 2], vec![0, 1, 2])
        );
        assert!(
            !g.member("a").unwrap().owns(0),
            "queue members commit nothing"
        );
    }
}
