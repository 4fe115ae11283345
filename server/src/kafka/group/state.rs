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
//!
//! Static membership (KIP-345, `group.instance.id`): a member that names an
//! instance id keeps its place across restarts. Rejoining with no member id under a
//! known instance id replaces the old member (a new member id, the old one fenced:
//! FENCED_INSTANCE_ID), and while the group is Stable and the chosen protocol stays
//! the same it gets its old assignment at the current generation without a
//! rebalance (a leader so replaced is told to skip the assignment). Only a session
//! that runs out, or a LeaveGroup naming the instance, removes a static member.

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
    /// The instance id belongs to another member id now: a newer instance of the
    /// same static member replaced this one.
    #[error("fenced: another member holds this instance id")]
    FencedInstance,
}

/// A join as the group sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    /// The member's id; empty for a new member.
    pub member_id: String,
    /// Static membership's instance id (`group.instance.id`), if the member has one.
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

/// Who a request says it is: its member id and, for a static member, its instance
/// id (checked against the member id holding that instance: FENCED_INSTANCE_ID).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberRef<'a> {
    /// The member id (empty in a LeaveGroup naming an instance alone, or in a
    /// commit from outside the group).
    pub id: &'a str,
    /// The instance id, if the request names one.
    pub instance: Option<&'a str>,
}

impl<'a> From<&'a str> for MemberRef<'a> {
    fn from(id: &'a str) -> MemberRef<'a> {
        MemberRef { id, instance: None }
    }
}

impl<'a> From<&'a String> for MemberRef<'a> {
    fn from(id: &'a String) -> MemberRef<'a> {
        MemberRef::from(id.as_str())
    }
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
    /// The group is Stable and keeps its assignment: a static leader that rejoined
    /// must not compute a new one (JoinGroup v9's `skip_assignment`).
    pub skip_assignment: bool,
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
    /// Static members: instance id to the member id that holds it. Every value is a
    /// key of `members` whose join names that instance id.
    instances: HashMap<String, String>,
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
        let held = join
            .instance_id
            .as_ref()
            .and_then(|instance| self.instances.get(instance))
            .cloned();
        // A static member's new instance takes the place of the member holding
        // its instance id; an old instance naming its member id is fenced.
        let replaces = match held {
            Some(holder) if join.member_id.is_empty() => Some(holder),
            Some(holder) if holder != join.member_id => return Err(GroupError::FencedInstance),
            _ => None,
        };
        let same = replaces.as_deref().unwrap_or(join.member_id.as_str());
        let mut others = self
            .members
            .values()
            .filter(|m| m.join.member_id != same)
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
        // `instances` names only members, so the holder is always there to take
        // over; were it not, the join goes on below as a new member's.
        if let Some((old_id, old)) = replaces.and_then(|id| self.remove(&id).map(|m| (id, m))) {
            return Ok(self.replace_static(&old_id, old, join, new_id(), now_ms));
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
        let old_instance = std::mem::replace(&mut member.join, join).instance_id;
        member.last_seen_ms = now_ms;
        member.awaiting_join = true;
        member.awaiting_sync = false;
        let instance = member.join.instance_id.clone();
        if old_instance != instance {
            if let Some(old) = old_instance {
                self.instances.remove(&old);
            }
        }
        if let Some(instance) = instance {
            self.instances.insert(instance, member_id.clone());
        }
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

    /// A static member's new instance (`join`, naming no member id) takes the place
    /// of `old_id` (`member`, just removed), under `new_id`. While the group is Stable and the protocol it
    /// would choose stays the one chosen, the new instance keeps the old one's
    /// assignment and is answered at once at the current generation: the others
    /// notice nothing. Otherwise it is a rejoin, and the group rebalances (in
    /// CompletingRebalance the leader may be assigning to the old member id).
    fn replace_static(
        &mut self,
        old_id: &str,
        mut member: Member,
        join: Join,
        new_id: String,
        now_ms: u64,
    ) -> String {
        member.join = Join {
            member_id: new_id.clone(),
            ..join
        };
        member.last_seen_ms = now_ms;
        member.awaiting_sync = false;
        if let Some(instance) = &member.join.instance_id {
            self.instances.insert(instance.clone(), new_id.clone());
        }
        if self.leader.as_deref() == Some(old_id) {
            self.leader = Some(new_id.clone());
        }
        let rejoining = member.awaiting_join;
        self.members.insert(new_id.clone(), member);
        let unchanged = self.protocol.as_deref() == Some(self.choose_protocol().as_str());
        if self.phase == Phase::Stable && unchanged && !rejoining {
            let protocol = self.protocol.clone().unwrap_or_default();
            let leads = self.leader.as_deref() == Some(new_id.as_str());
            let answer = JoinAnswer {
                generation: self.generation,
                protocol_type: self.protocol_type.clone().unwrap_or_default(),
                protocol: protocol.clone(),
                leader: self.leader.clone().unwrap_or_default(),
                member_id: new_id.clone(),
                members: if leads {
                    self.listing(&protocol)
                } else {
                    Vec::new()
                },
                skip_assignment: leads,
            };
            self.join_answers.insert(new_id.clone(), answer);
            return new_id;
        }
        if let Some(member) = self.members.get_mut(&new_id) {
            member.awaiting_join = true;
        }
        if self.phase != Phase::PreparingRebalance {
            self.begin_rebalance(now_ms);
        }
        self.try_complete_join(now_ms);
        new_id
    }

    /// Every member's id, instance id and metadata for `protocol`, for the leader.
    fn listing(&self, protocol: &str) -> Vec<(String, Option<String>, Bytes)> {
        self.members
            .values()
            .map(|m| {
                (
                    m.join.member_id.clone(),
                    m.join.instance_id.clone(),
                    m.metadata(protocol),
                )
            })
            .collect()
    }

    /// Refuses `member_id` if it names an instance id another member id holds.
    fn check_fenced(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), GroupError> {
        match instance_id.and_then(|instance| self.instances.get(instance)) {
            Some(holder) if holder != member_id => Err(GroupError::FencedInstance),
            _ => Ok(()),
        }
    }

    /// The static member holding `instance_id`, if any.
    #[cfg(test)]
    fn instance_holder(&self, instance_id: &str) -> Option<&str> {
        self.instances.get(instance_id).map(String::as_str)
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
        let members = &self.members;
        self.instances.retain(|_, id| members.contains_key(id));
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
        let listing = self.listing(&protocol);
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
                skip_assignment: false,
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
    pub fn sync<'a>(
        &mut self,
        member: impl Into<MemberRef<'a>>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
        now_ms: u64,
    ) -> Result<Synced, GroupError> {
        let MemberRef {
            id: member_id,
            instance: instance_id,
        } = member.into();
        self.check_fenced(member_id, instance_id)?;
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
    pub fn heartbeat<'a>(
        &mut self,
        member: impl Into<MemberRef<'a>>,
        generation: i32,
        now_ms: u64,
    ) -> Result<(), GroupError> {
        let MemberRef {
            id: member_id,
            instance: instance_id,
        } = member.into();
        self.check_fenced(member_id, instance_id)?;
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
    pub fn may_commit<'a>(
        &mut self,
        member: impl Into<MemberRef<'a>>,
        generation: i32,
        now_ms: u64,
    ) -> Result<(), GroupError> {
        let MemberRef {
            id: member_id,
            instance: instance_id,
        } = member.into();
        if generation < 0 && member_id.is_empty() && self.members.is_empty() {
            return Ok(());
        }
        self.check_fenced(member_id, instance_id)?;
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

    /// A member leaves; the others rebalance. A LeaveGroup may name a static
    /// member by its instance id alone (an empty member id: the admin client's
    /// "remove members"); naming both, they must agree. Returns the id of the
    /// member that left.
    pub fn leave<'a>(
        &mut self,
        member: impl Into<MemberRef<'a>>,
        now_ms: u64,
    ) -> Result<String, GroupError> {
        let MemberRef {
            id: member_id,
            instance: instance_id,
        } = member.into();
        let leaving = match instance_id {
            Some(instance) => match self.instances.get(instance) {
                Some(holder) if member_id.is_empty() || holder == member_id => holder.clone(),
                Some(_) => return Err(GroupError::FencedInstance),
                None => return Err(GroupError::UnknownMember),
            },
            None => member_id.to_owned(),
        };
        if self.remove(&leaving).is_none() {
            return Err(GroupError::UnknownMember);
        }
        self.after_removal(now_ms);
        Ok(leaving)
    }

    fn remove(&mut self, member_id: &str) -> Option<Member> {
        self.join_answers.remove(member_id);
        self.sync_answers.remove(member_id);
        let member = self.members.remove(member_id)?;
        if let Some(instance) = &member.join.instance_id {
            if self
                .instances
                .get(instance)
                .is_some_and(|id| id == member_id)
            {
                self.instances.remove(instance);
            }
        }
        Some(member)
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

    fn static_join(id: &str, instance: &str, protocols: &[&str]) -> Join {
        Join {
            instance_id: Some(instance.into()),
            ..join(id, protocols)
        }
    }

    fn as_instance<'a>(id: &'a str, instance: &'a str) -> MemberRef<'a> {
        MemberRef {
            id,
            instance: Some(instance),
        }
    }

    /// A Stable group of two static members offering `protocols`, "a" (instance
    /// "ia", the leader, with assignment "p0") and "b" ("ib", "p1"), at generation 2.
    fn stable_static_pair_of(protocols: &[&str]) -> ClassicGroup {
        let mut g = ClassicGroup::default();
        g.join(static_join("", "ia", protocols), || "a".into(), MAX, 0)
            .unwrap();
        g.take_join_answer("a").unwrap();
        g.sync("a", 1, vec![], 0).unwrap();
        g.join(static_join("", "ib", protocols), || "b".into(), MAX, 10)
            .unwrap();
        g.join(
            static_join("a", "ia", protocols),
            || unreachable!(),
            MAX,
            20,
        )
        .unwrap();
        g.take_join_answer("a").unwrap();
        g.take_join_answer("b").unwrap();
        assert_eq!(g.sync("b", 2, vec![], 30), Ok(Synced::Wait));
        let shares = vec![
            ("a".to_string(), Bytes::from_static(b"p0")),
            ("b".to_string(), Bytes::from_static(b"p1")),
        ];
        g.sync("a", 2, shares, 40).unwrap();
        g.take_sync_answer("b").unwrap().unwrap();
        assert_eq!((g.phase(), g.generation()), (Phase::Stable, 2));
        g
    }

    fn stable_static_pair() -> ClassicGroup {
        stable_static_pair_of(&["range"])
    }

    #[test]
    fn a_restarted_static_member_takes_its_old_place_without_a_rebalance() {
        let mut g = stable_static_pair();
        // b restarts: it has forgotten its member id and names its instance.
        let b2 = g
            .join(static_join("", "ib", &["range"]), || "b2".into(), MAX, 50)
            .unwrap();
        assert_eq!(b2, "b2");
        let answer = g.take_join_answer("b2").expect("answered at once");
        assert_eq!(
            (
                answer.generation,
                answer.leader.as_str(),
                answer.members.len()
            ),
            (2, "a", 0)
        );
        assert!(!answer.skip_assignment);
        assert_eq!((g.phase(), g.generation(), g.len()), (Phase::Stable, 2, 2));
        assert_eq!(g.instance_holder("ib"), Some("b2"));
        // Its SyncGroup hands back the old assignment; a noticed nothing.
        assert_eq!(
            g.sync(as_instance("b2", "ib"), 2, vec![], 60),
            Ok(Synced::Ready(Bytes::from_static(b"p1")))
        );
        assert_eq!(g.heartbeat("a", 2, 70), Ok(()));
        // The old instance is fenced wherever it names its instance id, and
        // unknown where it does not.
        let old = as_instance("b", "ib");
        assert_eq!(g.heartbeat(old, 2, 80), Err(GroupError::FencedInstance));
        assert_eq!(g.sync(old, 2, vec![], 80), Err(GroupError::FencedInstance));
        assert_eq!(g.may_commit(old, 2, 80), Err(GroupError::FencedInstance));
        assert_eq!(
            g.join(
                static_join("b", "ib", &["range"]),
                || unreachable!(),
                MAX,
                80
            ),
            Err(GroupError::FencedInstance)
        );
        assert_eq!(g.leave(old, 80), Err(GroupError::FencedInstance));
        assert_eq!(g.heartbeat("b", 2, 80), Err(GroupError::UnknownMember));
        assert_eq!((g.phase(), g.generation()), (Phase::Stable, 2));
    }

    #[test]
    fn a_restarted_static_leader_is_told_to_keep_the_assignment() {
        let mut g = stable_static_pair();
        g.join(static_join("", "ia", &["range"]), || "a2".into(), MAX, 50)
            .unwrap();
        let answer = g.take_join_answer("a2").unwrap();
        assert_eq!((answer.generation, answer.leader.as_str()), (2, "a2"));
        assert!(answer.skip_assignment);
        let listed: Vec<(&str, Option<&str>)> = answer
            .members
            .iter()
            .map(|(id, instance, _)| (id.as_str(), instance.as_deref()))
            .collect();
        assert_eq!(listed, [("a2", Some("ia")), ("b", Some("ib"))]);
        // A leader's SyncGroup in a Stable group changes no assignment.
        let other = vec![("b".to_string(), Bytes::from_static(b"other"))];
        assert_eq!(
            g.sync("a2", 2, other, 60),
            Ok(Synced::Ready(Bytes::from_static(b"p0")))
        );
        assert_eq!(
            g.sync("b", 2, vec![], 70),
            Ok(Synced::Ready(Bytes::from_static(b"p1")))
        );
    }

    #[test]
    fn a_static_rejoin_that_changes_the_chosen_protocol_or_lands_mid_rebalance_rebalances() {
        // Only "roundrobin" now: the group would choose differently.
        let mut g = stable_static_pair_of(&["range", "roundrobin"]);
        g.join(
            static_join("", "ib", &["roundrobin"]),
            || "b2".into(),
            MAX,
            50,
        )
        .unwrap();
        assert_eq!(g.take_join_answer("b2"), None);
        assert_eq!(g.phase(), Phase::PreparingRebalance);
        assert_eq!(
            g.heartbeat("a", 2, 60),
            Err(GroupError::RebalanceInProgress)
        );

        // While the leader assigns (CompletingRebalance) it may be assigning to the
        // old member id: the new instance starts a rebalance.
        let mut g = stable_static_pair();
        g.join(join("", &["range"]), || "c".into(), MAX, 50)
            .unwrap();
        for id in ["a", "b"] {
            g.join(
                static_join(id, &format!("i{id}"), &["range"]),
                || unreachable!(),
                MAX,
                60,
            )
            .unwrap();
        }
        assert_eq!((g.phase(), g.generation()), (Phase::CompletingRebalance, 3));
        g.join(static_join("", "ib", &["range"]), || "b2".into(), MAX, 70)
            .unwrap();
        assert_eq!(g.phase(), Phase::PreparingRebalance);
        assert_eq!(
            g.take_join_answer("b2"),
            None,
            "waits for a and c to rejoin"
        );
        assert!(!g.has("b") && g.has("b2"));
    }

    #[test]
    fn a_static_member_leaves_by_instance_id_or_when_its_session_runs_out() {
        let mut g = stable_static_pair();
        let instance_alone = MemberRef {
            id: "",
            instance: Some("ia"),
        };
        assert_eq!(g.leave(instance_alone, 50), Ok("a".to_string()));
        assert_eq!(g.instance_holder("ia"), None);
        assert_eq!(g.leave(instance_alone, 50), Err(GroupError::UnknownMember));
        assert_eq!(g.phase(), Phase::PreparingRebalance);
        // b never rejoins: its session ends once the rebalance gives up on it.
        g.expire(100_000);
        assert!(g.is_empty());
        assert_eq!(g.instance_holder("ib"), None);
        // A later instance of b is a new member of a new generation.
        g.join(
            static_join("", "ib", &["range"]),
            || "b2".into(),
            MAX,
            100_010,
        )
        .unwrap();
        let answer = g.take_join_answer("b2").unwrap();
        assert_eq!((answer.generation, answer.leader.as_str()), (3, "b2"));
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
