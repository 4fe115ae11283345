//! One Kafka consumer group under the classic group protocol, pure: members, the
//! phases of a rebalance, the generation, the leader, and the assignments the leader
//! hands out. Time is a number the caller passes (`now_ms`, monotonic), so the rules
//! are tested without a clock or a socket.
//!
//! The protocol (as Kafka's own coordinator runs it): a join (a new member, or an
//! old one rejoining) starts a rebalance (`PreparingRebalance`); it completes when
//! every member has rejoined, or when the longest rebalance timeout has passed
//! (those that did not rejoin are dropped). Completing bumps the generation, picks
//! the protocol every member supports that most of them prefer, keeps or picks a
//! leader, and answers every join: the leader's answer lists the members and their
//! metadata (`CompletingRebalance`). The leader computes the assignment (the broker
//! never reads it) and sends it with its SyncGroup; every member's SyncGroup is
//! answered with its share (`Stable`). Members heartbeat within their session
//! timeout; one that does not, or leaves, starts a new rebalance.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

/// Where a group is in its rebalance cycle (Kafka's names, which DescribeGroups
/// and ListGroups report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// No members (its committed offsets may remain).
    #[default]
    Empty,
    /// Waiting for the members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
}

impl Phase {
    /// Kafka's name for the phase.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Empty => "Empty",
            Phase::PreparingRebalance => "PreparingRebalance",
            Phase::CompletingRebalance => "CompletingRebalance",
            Phase::Stable => "Stable",
        }
    }
}

/// Why a group request is refused, in Kafka's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// The member id is not (or no longer) in the group: join again without it.
    #[error("unknown member")]
    UnknownMember,
    /// The member's generation is not the group's.
    #[error("illegal generation")]
    IllegalGeneration,
    /// A rebalance is under way: join again.
    #[error("rebalance in progress")]
    RebalanceInProgress,
    /// The member's protocol type or protocols do not match the group's.
    #[error("inconsistent group protocol")]
    InconsistentProtocol,
    /// The group has as many members as it may.
    #[error("the group is full")]
    GroupFull,
}

/// A join as the group sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    /// The member's id; empty for a new member.
    pub member_id: String,
    /// Static membership's instance id (recorded and reported only).
    pub instance_id: Option<String>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// Session timeout, ms (already checked against the broker's bounds).
    pub session_timeout_ms: u64,
    /// How long the member may take to rejoin in a rebalance, ms.
    pub rebalance_timeout_ms: u64,
    /// "consumer" for consumers; the broker only checks that members agree.
    pub protocol_type: String,
    /// The protocols (assignors) the member supports, preferred first, with its
    /// metadata for each.
    pub protocols: Vec<(String, Bytes)>,
}

/// One member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// What its last join said.
    pub join: Join,
    /// Its share of the leader's assignment (empty until the leader syncs).
    pub assignment: Bytes,
    /// When it was last heard of (any request), ms.
    pub last_seen_ms: u64,
    /// It has joined in this rebalance and waits for the answer.
    awaiting_join: bool,
    /// It has sent SyncGroup and waits for the leader's.
    awaiting_sync: bool,
}

impl Member {
    /// Its metadata for `protocol`.
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.join
            .protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }
}

/// The answer to a completed join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinAnswer {
    /// The new generation.
    pub generation: i32,
    /// The protocol type.
    pub protocol_type: String,
    /// The protocol chosen.
    pub protocol: String,
    /// The leader's member id.
    pub leader: String,
    /// The member's own id.
    pub member_id: String,
    /// For the leader: every member's id, instance id and metadata for the chosen
    /// protocol; empty for the others.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

/// What a SyncGroup gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Synced {
    /// The member's assignment.
    Ready(Bytes),
    /// Wait for the leader's SyncGroup.
    Wait,
}

/// One group's state.
#[derive(Debug, Clone, Default)]
pub struct ClassicGroup {
    phase: Phase,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    /// When a rebalance under way gives up on members that have not rejoined.
    rebalance_deadline_ms: u64,
    /// Answers of completed joins, until their members take them.
    join_answers: HashMap<String, JoinAnswer>,
    /// Answers of SyncGroups that waited for the leader, until taken.
    sync_answers: HashMap<String, Result<Bytes, GroupError>>,
}

impl ClassicGroup {
    /// The phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The generation (0 before the first rebalance completes).
    pub fn generation(&self) -> i32 {
        self.generation
    }

    /// The protocol type of its members, once it has had any.
    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    /// The protocol the last rebalance chose.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The leader's member id.
    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }

    /// The members, by id.
    pub fn members(&self) -> impl Iterator<Item = (&String, &Member)> {
        self.members.iter()
    }

    /// How many members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether it has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Whether `member_id` is a member.
    pub fn has(&self, member_id: &str) -> bool {
        self.members.contains_key(member_id)
    }

    /// A join: a new member (empty id; `new_id` names it) or an old one rejoining.
    /// Returns the member id; the answer comes once the rebalance completes
    /// ([`ClassicGroup::take_join_answer`]), perhaps at once.
    pub fn join(
        &mut self,
        join: Join,
        new_id: impl FnOnce() -> String,
        max_members: usize,
        now_ms: u64,
    ) -> Result<String, GroupError> {
        if join.protocol_type.is_empty() || join.protocols.is_empty() {
            return Err(GroupError::InconsistentProtocol);
        }
        let mut others = self
            .members
            .values()
            .filter(|m| m.join.member_id != join.member_id)
            .peekable();
        if others.peek().is_some() {
            if self.protocol_type.as_deref() != Some(join.protocol_type.as_str()) {
                return Err(GroupError::InconsistentProtocol);
            }
            let others: Vec<&Member> = others.collect();
            let shared = join.protocols.iter().any(|(name, _)| {
                others
                    .iter()
                    .all(|m| m.join.protocols.iter().any(|(n, _)| n == name))
            });
            if !shared {
                return Err(GroupError::InconsistentProtocol);
            }
        }
        let member_id = if join.member_id.is_empty() {
            if self.members.len() >= max_members {
                return Err(GroupError::GroupFull);
            }
            new_id()
        } else if self.has(&join.member_id) {
            join.member_id.clone()
        } else {
            return Err(GroupError::UnknownMember);
        };
        self.protocol_type = Some(join.protocol_type.clone());
        let join = Join {
            member_id: member_id.clone(),
            ..join
        };
        self.join_answers.remove(&member_id);
        self.sync_answers.remove(&member_id);
        let member = self.members.entry(member_id.clone()).or_insert(Member {
            join: join.clone(),
            assignment: Bytes::new(),
            last_seen_ms: now_ms,
            awaiting_join: false,
            awaiting_sync: false,
        });
        member.join = join;
        member.last_seen_ms = now_ms;
        member.awaiting_join = true;
        member.awaiting_sync = false;
        if self.phase() != Phase::PreparingRebalance {
            self.begin_rebalance(now_ms);
        } else {
            // A member joining late may extend the wait to its own timeout.
            let deadline =
                now_ms.saturating_add(self.members[&member_id].join.rebalance_timeout_ms);
            self.rebalance_deadline_ms = self.rebalance_deadline_ms.max(deadline);
        }
        self.try_complete_join(now_ms);
        Ok(member_id)
    }

    /// Starts a rebalance: SyncGroups waiting are told to rejoin.
    fn begin_rebalance(&mut self, now_ms: u64) {
        self.phase = Phase::PreparingRebalance;
        let longest = self
            .members
            .values()
            .map(|m| m.join.rebalance_timeout_ms)
            .max()
            .unwrap_or(0);
        self.rebalance_deadline_ms = now_ms.saturating_add(longest);
        for (id, member) in &mut self.members {
            if std::mem::take(&mut member.awaiting_sync) {
                self.sync_answers
                    .insert(id.clone(), Err(GroupError::RebalanceInProgress));
            }
        }
    }

    /// Completes a rebalance if every member has rejoined or the deadline passed;
    /// whether it did.
    fn try_complete_join(&mut self, now_ms: u64) -> bool {
        if self.phase() != Phase::PreparingRebalance {
            return false;
        }
        let all_joined = self.members.values().all(|m| m.awaiting_join);
        if !all_joined && now_ms < self.rebalance_deadline_ms {
            return false;
        }
        self.members.retain(|_, m| m.awaiting_join);
        self.generation = self.generation.wrapping_add(1).max(1);
        if self.members.is_empty() {
            self.become_empty();
            return true;
        }
        let protocol = self.choose_protocol();
        let leader = match &self.leader {
            Some(leader) if self.members.contains_key(leader) => leader.clone(),
            _ => self.members.keys().next().cloned().unwrap_or_default(),
        };
        let listing: Vec<(String, Option<String>, Bytes)> = self
            .members
            .values()
            .map(|m| {
                (
                    m.join.member_id.clone(),
                    m.join.instance_id.clone(),
                    m.metadata(&protocol),
                )
            })
            .collect();
        let protocol_type = self.protocol_type.clone().unwrap_or_default();
        for (id, member) in &mut self.members {
            member.awaiting_join = false;
            member.last_seen_ms = now_ms;
            member.assignment = Bytes::new();
            let answer = JoinAnswer {
                generation: self.generation,
                protocol_type: protocol_type.clone(),
                protocol: protocol.clone(),
                leader: leader.clone(),
                member_id: id.clone(),
                members: if *id == leader {
                    listing.clone()
                } else {
                    Vec::new()
                },
            };
            self.join_answers.insert(id.clone(), answer);
        }
        self.protocol = Some(protocol);
        self.leader = Some(leader);
        self.phase = Phase::CompletingRebalance;
        true
    }

    /// The protocol every member supports that most members list first among
    /// those (ties: the one listed earliest by the first member).
    fn choose_protocol(&self) -> String {
        let Some(first) = self.members.values().next() else {
            return String::new();
        };
        let candidates: Vec<&String> = first
            .join
            .protocols
            .iter()
            .map(|(name, _)| name)
            .filter(|name| {
                self.members
                    .values()
                    .all(|m| m.join.protocols.iter().any(|(n, _)| n == *name))
            })
            .collect();
        let mut votes = vec![0usize; candidates.len()];
        for member in self.members.values() {
            let preferred = member
                .join
                .protocols
                .iter()
                .find_map(|(name, _)| candidates.iter().position(|c| *c == name));
            if let Some(i) = preferred {
                votes[i] += 1;
            }
        }
        let best = (0..candidates.len()).max_by(|&a, &b| votes[a].cmp(&votes[b]).then(b.cmp(&a)));
        best.map(|i| candidates[i].clone()).unwrap_or_default()
    }

    fn become_empty(&mut self) {
        self.phase = Phase::Empty;
        self.leader = None;
        self.protocol = None;
        self.protocol_type = None;
    }

    /// The answer to `member_id`'s join, once the rebalance completed.
    pub fn take_join_answer(&mut self, member_id: &str) -> Option<JoinAnswer> {
        self.join_answers.remove(member_id)
    }

    /// A SyncGroup. The leader's carries the assignment of every member (missing
    /// ones get an empty one) and completes the rebalance.
    pub fn sync(
        &mut self,
        member_id: &str,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
        now_ms: u64,
    ) -> Result<Synced, GroupError> {
        let phase = self.phase();
        let leads = self.leader.as_deref() == Some(member_id);
        let member = self.current_member(member_id, generation, now_ms)?;
        if phase == Phase::Stable {
            return Ok(Synced::Ready(member.assignment.clone()));
        }
        if !leads {
            member.awaiting_sync = true;
            return Ok(Synced::Wait);
        }
        let mut given: HashMap<String, Bytes> = assignments.into_iter().collect();
        for (id, member) in &mut self.members {
            member.assignment = given.remove(id).unwrap_or_default();
            if std::mem::take(&mut member.awaiting_sync) {
                self.sync_answers
                    .insert(id.clone(), Ok(member.assignment.clone()));
            }
        }
        self.phase = Phase::Stable;
        let own = self.members.get(member_id).map(|m| m.assignment.clone());
        Ok(Synced::Ready(own.unwrap_or_default()))
    }

    /// The answer to `member_id`'s waiting SyncGroup, once there is one.
    pub fn take_sync_answer(&mut self, member_id: &str) -> Option<Result<Bytes, GroupError>> {
        self.sync_answers.remove(member_id)
    }

    /// A heartbeat: keeps the session alive, and says when to rejoin.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        generation: i32,
        now_ms: u64,
    ) -> Result<(), GroupError> {
        self.current_member(member_id, generation, now_ms)
            .map(|_| ())
    }

    /// `member_id`, heard of at `now_ms`, if it is in step with the group: known,
    /// no rebalance waiting for it to rejoin, and at the group's generation.
    fn current_member(
        &mut self,
        member_id: &str,
        generation: i32,
        now_ms: u64,
    ) -> Result<&mut Member, GroupError> {
        let (phase, current) = (self.phase, self.generation);
        let member = self
            .members
            .get_mut(member_id)
            .ok_or(GroupError::UnknownMember)?;
        member.last_seen_ms = now_ms;
        if phase == Phase::PreparingRebalance {
            return Err(GroupError::RebalanceInProgress);
        }
        if generation != current {
            return Err(GroupError::IllegalGeneration);
        }
        Ok(member)
    }

    /// Whether `member_id` at `generation` may commit offsets now. A group without
    /// members takes commits from anyone who names no member (generation -1), as
    /// Kafka's does (tools resetting offsets, consumers using `assign`).
    pub fn may_commit(
        &mut self,
        member_id: &str,
        generation: i32,
        now_ms: u64,
    ) -> Result<(), GroupError> {
        if generation < 0 && member_id.is_empty() && self.members.is_empty() {
            return Ok(());
        }
        if self.phase() == Phase::CompletingRebalance {
            return Err(GroupError::RebalanceInProgress);
        }
        let member = self
            .members
            .get_mut(member_id)
            .ok_or(GroupError::UnknownMember)?;
        if generation != self.generation {
            return Err(GroupError::IllegalGeneration);
        }
        member.last_seen_ms = now_ms;
        Ok(())
    }

    /// A member leaves; the others rebalance.
    pub fn leave(&mut self, member_id: &str, now_ms: u64) -> Result<(), GroupError> {
        if self.remove(member_id).is_none() {
            return Err(GroupError::UnknownMember);
        }
        self.after_removal(now_ms);
        Ok(())
    }

    fn remove(&mut self, member_id: &str) -> Option<Member> {
        self.join_answers.remove(member_id);
        self.sync_answers.remove(member_id);
        self.members.remove(member_id)
    }

    fn after_removal(&mut self, now_ms: u64) {
        if self.members.is_empty() {
            self.become_empty();
        } else if self.phase() != Phase::PreparingRebalance {
            self.begin_rebalance(now_ms);
        }
        self.try_complete_join(now_ms);
    }

    /// Drops the members whose session ran out (not those waiting for a join's
    /// answer: the rebalance deadline bounds them) and completes a rebalance whose
    /// deadline passed. Returns the expired members' ids.
    pub fn expire(&mut self, now_ms: u64) -> Vec<String> {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                !m.awaiting_join
                    && m.last_seen_ms.saturating_add(m.join.session_timeout_ms) <= now_ms
            })
            .map(|m| m.join.member_id.clone())
            .collect();
        for id in &expired {
            self.remove(id);
        }
        if !expired.is_empty() {
            self.after_removal(now_ms);
        } else {
            self.try_complete_join(now_ms);
        }
        expired
    }

    /// Whether answers wait to be taken (a waiter should look).
    pub fn has_answers(&self) -> bool {
        !self.join_answers.is_empty() || !self.sync_answers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 10;

    fn join(id: &str, protocols: &[&str]) -> Join {
        Join {
            member_id: id.into(),
            instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: "consumer".into(),
            protocols: protocols
                .iter()
                .map(|p| (p.to_string(), Bytes::from(format!("{id}:{p}"))))
                .collect(),
        }
    }

    fn new_member(g: &mut ClassicGroup, name: &str, now: u64) -> String {
        g.join(join("", &["range"]), || name.to_string(), MAX, now)
            .unwrap()
    }

    #[test]
    fn a_lone_member_joins_leads_and_gets_its_assignment() {
        let mut g = ClassicGroup::default();
        let a = new_member(&mut g, "a", 0);
        let answer = g.take_join_answer(&a).expect("completes at once");
        assert_eq!((answer.generation, answer.leader.as_str()), (1, "a"));
        assert_eq!(answer.protocol, "range");
        assert_eq!(answer.members.len(), 1);
        assert_eq!(g.phase(), Phase::CompletingRebalance);
        let mine = g
            .sync(&a, 1, vec![(a.clone(), Bytes::from_static(b"p0"))], 1)
            .unwrap();
        assert_eq!(mine, Synced::Ready(Bytes::from_static(b"p0")));
        assert_eq!(g.phase(), Phase::Stable);
        assert_eq!(g.heartbeat(&a, 1, 2), Ok(()));
    }

    #[test]
    fn a_second_member_waits_until_the_first_rejoins_then_both_get_their_share() {
        let mut g = ClassicGroup::default();
        let a = new_member(&mut g, "a", 0);
        g.take_join_answer(&a).unwrap();
        g.sync(&a, 1, vec![(a.clone(), Bytes::from_static(b"all"))], 0)
            .unwrap();
        let b = new_member(&mut g, "b", 10);
        assert_eq!(g.take_join_answer(&b), None, "waits for a to rejoin");
        assert_eq!(g.heartbeat(&a, 1, 20), Err(GroupError::RebalanceInProgress));
        g.join(join(&a, &["range"]), || unreachable!(), MAX, 30)
            .unwrap();
        let (ja, jb) = (
            g.take_join_answer(&a).unwrap(),
            g.take_join_answer(&b).unwrap(),
        );
        assert_eq!((ja.generation, jb.generation), (2, 2));
        assert_eq!(
            (ja.leader.as_str(), ja.members.len(), jb.members.len()),
            ("a", 2, 0)
        );
        // The follower syncs first and waits for the leader.
        assert_eq!(g.sync(&b, 2, vec![], 40), Ok(Synced::Wait));
        let shares = vec![
            (a.clone(), Bytes::from_static(b"p0")),
            (b.clone(), Bytes::from_static(b"p1")),
        ];
        assert_eq!(
            g.sync(&a, 2, shares, 50),
            Ok(Synced::Ready(Bytes::from_static(b"p0")))
        );
        assert_eq!(g.take_sync_answer(&b), Some(Ok(Bytes::from_static(b"p1"))));
        assert_eq!(g.phase(), Phase::Stable);
    }

    #[test]
    fn a_member_that_does_not_rejoin_is_dropped_at_the_rebalance_deadline() {
        let mut g = ClassicGroup::default();
        let a = new_member(&mut g, "a", 0);
        g.take_join_answer(&a).unwrap();
        g.sync(&a, 1, vec![], 0).unwrap();
        let b = new_member(&mut g, "b", 100);
        // a keeps its session alive but never rejoins.
        for now in (5_000..30_000).step_by(5_000) {
            assert_eq!(
                g.heartbeat(&a, 1, now),
                Err(GroupError::RebalanceInProgress)
            );
            assert!(g.expire(now).is_empty());
        }
        assert!(g.expire(100 + 29_999).is_empty());
        assert_eq!(g.take_join_answer(&b), None);
        g.expire(100 + 30_000);
        let answer = g.take_join_answer(&b).expect("completed at the deadline");
        assert_eq!((answer.leader.as_str(), answer.members.len()), ("b", 1));
        assert!(!g.has(&a));
    }

    #[test]
    fn a_silent_member_expires_and_the_rest_rebalance() {
        let mut g = ClassicGroup::default();
        let a = new_member(&mut g, "a", 0);
        let b = new_member(&mut g, "b", 0);
        g.join(join(&a, &["range"]), || unreachable!(), MAX, 0)
            .unwrap();
        g.take_join_answer(&a).unwrap();
        g.take_join_answer(&b).unwrap();
        g.sync(&a, 2, vec![], 0).unwrap();
        g.heartbeat(&b, 2, 9_000).unwrap();
        assert_eq!(g.expire(10_000), vec![a.clone()]);
        assert_eq!(
            g.heartbeat(&b, 2, 10_001),
            Err(GroupError::RebalanceInProgress)
        );
        g.join(join(&b, &["range"]), || unreachable!(), MAX, 10_002)
            .unwrap();
        let answer = g.take_join_answer(&b).unwrap();
        assert_eq!((answer.generation, answer.leader.as_str()), (3, "b"));
    }

    #[test]
    fn leaving_rebalances_the_rest_and_the_last_one_out_empties_the_group() {
        let mut g = ClassicGroup::default();
        let a = new_member(&mut g, "a", 0);
        let b = new_member(&mut g, "b", 0);
        g.join(join(&a, &["range"]), || unreachable!(), MAX, 0)
            .unwrap();
        g.sync(&a, 2, vec![], 0).unwrap();
        assert_eq!(g.sync(&b, 2, vec![], 0), Ok(Synced::Ready(Bytes::new())));
        g.leave(&a, 1).unwrap();
        assert_eq!(g.phase(), Phase::PreparingRebalance);
        assert_eq!(g.leave(&a, 1), Err(GroupError::UnknownMember));
        g.leave(&b, 2).unwrap();
        assert_eq!(g.phase(), Phase::Empty);
        assert_eq!(
            g.may_commit("", -1, 3),
            Ok(()),
            "an empty group takes simple commits"
        );
    }

    #[test]
    fn a_waiting_sync_is_told_to_rejoin_when_a_rebalance_starts() {
        let mut g = ClassicGroup::default();
        let a = new_member(&mut g, "a", 0);
        let b = new_member(&mut g, "b", 0);
        g.join(join(&a, &["range"]), || unreachable!(), MAX, 0)
            .unwrap();
        assert_eq!(g.sync(&b, 2, vec![], 0), Ok(Synced::Wait));
        new_member(&mut g, "c", 1);
        assert_eq!(
            g.take_sync_answer(&b),
            Some(Err(GroupError::RebalanceInProgress))
        );
    }

    #[test]
    fn protocols_must_be_shared_and_the_most_preferred_wins() {
        let mut g = ClassicGroup::default();
        let a = g
            .join(
                join("", &["cooperative-sticky", "range"]),
                || "a".into(),
                MAX,
                0,
            )
            .unwrap();
        let b = g
            .join(
                join("", &["range", "cooperative-sticky"]),
                || "b".into(),
                MAX,
                0,
            )
            .unwrap();
        let c = g
            .join(join("", &["cooperative-sticky"]), || "c".into(), MAX, 0)
            .unwrap();
        assert_eq!(
            g.join(join("", &["roundrobin"]), || "d".into(), MAX, 0),
            Err(GroupError::InconsistentProtocol)
        );
        g.join(
            join(&a, &["cooperative-sticky", "range"]),
            || unreachable!(),
            MAX,
            0,
        )
        .unwrap();
        g.join(
            join(&b, &["range", "cooperative-sticky"]),
            || unreachable!(),
            MAX,
            0,
        )
        .unwrap();
        let answer = g.take_join_answer(&c).unwrap();
        assert_eq!(answer.protocol, "cooperative-sticky");
        let leader = g.take_join_answer(&a).unwrap();
        assert!(leader
            .members
            .iter()
            .all(|(_, _, m)| m.ends_with(b":cooperative-sticky")));
    }

    #[test]
    fn commits_need_the_current_generation_of_a_member() {
        let mut g = ClassicGroup::default();
        let a = new_member(&mut g, "a", 0);
        assert_eq!(g.may_commit(&a, 1, 0), Err(GroupError::RebalanceInProgress));
        g.sync(&a, 1, vec![], 0).unwrap();
        assert_eq!(g.may_commit(&a, 1, 0), Ok(()));
        assert_eq!(g.may_commit(&a, 0, 0), Err(GroupError::IllegalGeneration));
        assert_eq!(g.may_commit("z", 1, 0), Err(GroupError::UnknownMember));
        assert_eq!(g.may_commit("", -1, 0), Err(GroupError::UnknownMember));
    }

    #[test]
    fn unknown_members_and_full_groups_are_refused() {
        let mut g = ClassicGroup::default();
        assert_eq!(
            g.join(join("ghost", &["range"]), || unreachable!(), MAX, 0),
            Err(GroupError::UnknownMember)
        );
        g.join(join("", &["range"]), || "a".into(), 1, 0).unwrap();
        assert_eq!(
            g.join(join("", &["range"]), || "b".into(), 1, 0),
            Err(GroupError::GroupFull)
        );
        assert_eq!(g.heartbeat("ghost", 1, 0), Err(GroupError::UnknownMember));
        assert_eq!(
            g.sync("ghost", 1, vec![], 0),
            Err(GroupError::UnknownMember)
        );
    }
}
