//! Consumer groups: membership, partition assignment and its handover, session
//! timeouts, and committed offsets.
//!
//! A group belongs to one topic. Members join and heartbeat; every change of
//! membership (join, leave, session expiry) starts a new generation. In a stream group
//! the new generation has a sticky assignment ([`assign::sticky`]: a member keeps
//! what it has up to its share, so one member coming or going moves only the
//! partitions it takes or leaves), and a partition that moves is handed over in two
//! phases (`state.rs`): the old member is told to stop and keeps owning it, so that it
//! can commit what it read, until it heartbeats saying it applied that generation
//! (or leaves, or expires, or holds it a whole session timeout); only then is the new
//! member told. Members learn what they read from the JoinGroup answer and from every
//! heartbeat. Commits are checked against ownership, not generations: only a
//! partition's owner may commit it, so a member that lost a partition cannot overwrite
//! the progress of the one that gained it, and a member being revoked can still
//! commit its last position. In a queue group every member is told every partition and
//! the queue dispatcher hands out messages ([`crate::queue`]).
//!
//! The files: this one, [`Groups`] (the coordinator: requests, the lock, the clock,
//! logging); `state.rs`, one group's pure state and the handover rules; [`assign`],
//! the pure assignment; `describe.rs`, the read-only views; [`offsets`], the committed
//! offsets and the group registry on `__consumer_offsets` (what each group is, so a
//! restart keeps its mode and overrides); `registry.rs`, recording at startup the
//! groups written before the registry existed.

mod admin;
pub mod assign;
mod describe;
mod expiry;
pub mod offsets;
mod registry;
mod state;

pub use expiry::{
    run_group_expiry, sweep_interval, EMPTY_GROUP_CHECK_INTERVAL, MIN_EMPTY_GROUP_RETENTION_MS,
};

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use protocol::ops::group::{GroupMode, GroupStart, JoinGroupResponse};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::GroupConfig;
use crate::error::BrokerError;
use crate::queue::QueueConfig;
use crate::queue::Queues;
use crate::topics::{Topic, Topics};
use offsets::{Offsets, StoredGroup};
use protocol::internal::offsets::GroupSettings;
use state::{Group, Member};

/// Longest group name, bytes.
pub const MAX_GROUP_NAME_BYTES: usize = 200;
/// How often expired sessions are looked for.
pub const SESSION_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// A member's view of its group: what it is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The group's current generation.
    pub generation: u32,
    /// The partitions the member should read, sorted: stream groups, those it owns
    /// that its assignment keeps (revoked ones are left out, gained ones appear once
    /// released to it); queue groups, every partition.
    pub partitions: Vec<u32>,
}

/// The group coordinator.
#[derive(Debug)]
pub struct Groups {
    groups: Mutex<HashMap<String, Group>>,
    config: GroupConfig,
    topics: Arc<Topics>,
    offsets: Arc<Offsets>,
    next_member: AtomicU64,
    /// Distinguishes this run's member ids from a previous run's, so a member from
    /// before a restart can never be mistaken for a new one.
    boot_id: u32,
    queues: Arc<Queues>,
    clock: Arc<dyn Clock>,
    /// Since when (monotonic ms) each group found empty has been empty (`expiry.rs`).
    empty_since: Mutex<HashMap<String, u64>>,
}

/// What a member asks for when joining.
#[derive(Debug, Clone)]
pub struct JoinRequest<'a> {
    /// Group name.
    pub group: &'a str,
    /// Topic.
    pub topic: &'a str,
    /// Existing member id, or empty.
    pub member_id: &'a str,
    /// Session timeout.
    pub session_timeout_ms: u32,
    /// Stream or queue.
    pub mode: GroupMode,
    /// Where to start partitions without a committed offset.
    pub start: GroupStart,
    /// From the connection's handshake.
    pub client_name: &'a str,
    /// Per-group overrides of the topic's queue settings (queue mode).
    pub config: &'a [protocol::ops::topic::ConfigEntry],
}

impl Groups {
    /// A coordinator over the given topics and offset store.
    pub fn new(
        config: GroupConfig,
        topics: Arc<Topics>,
        offsets: Arc<Offsets>,
        queues: Arc<Queues>,
        clock: Arc<dyn Clock>,
    ) -> Groups {
        // Any value that differs between runs will do; the wall clock's milliseconds
        // and the pid make a collision across restarts vanishingly unlikely.
        let nanos = (clock.wall_ms() as u32).wrapping_mul(1_000_003);
        Groups {
            groups: Mutex::new(HashMap::new()),
            config,
            topics,
            offsets,
            next_member: AtomicU64::new(1),
            boot_id: nanos ^ std::process::id().rotate_left(16),
            queues,
            clock,
            empty_since: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Group>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The offset store.
    pub fn offsets(&self) -> &Arc<Offsets> {
        &self.offsets
    }

    /// Adds a member (or refreshes an existing one) and rebalances. A group's mode,
    /// topic and overrides are recorded durably (`__consumer_offsets`) before its
    /// first member is admitted, so a join in the wrong mode is refused the same way
    /// before and after a restart.
    pub async fn join(&self, request: JoinRequest<'_>) -> Result<JoinGroupResponse, BrokerError> {
        self.validate_join(&request)?;
        let topic = self.topics.get(request.topic)?;
        self.check_join(&request)?;
        match request.mode {
            GroupMode::Queue if !request.config.is_empty() => {
                QueueConfig::for_group(&topic.name, &topic.config, request.config)?;
            }
            GroupMode::Queue => {}
            GroupMode::Stream if request.config.is_empty() => {}
            GroupMode::Stream => {
                return Err(BrokerError::InvalidRequest(
                    "per-group config overrides apply to queue groups only".into(),
                ))
            }
        }
        self.record(&request).await?;
        if request.mode == GroupMode::Queue {
            let latest = request.start == GroupStart::Latest;
            self.queues
                .ensure_group(request.group, request.topic, request.config, latest)?;
            if latest {
                // A new group's start is recorded; the join is answered once it is durable.
                self.queues.wait_durable().await?;
            }
        }
        if request.start == GroupStart::Latest && request.mode == GroupMode::Stream {
            self.pin_latest(&request, &topic).await?;
        }
        self.admit(&request, topic.config.partitions)
    }

    /// Records the group in the registry if it is new or the join changes its
    /// overrides (a queue join without overrides keeps the recorded ones), refusing a
    /// join that does not match what is recorded.
    async fn record(&self, request: &JoinRequest<'_>) -> Result<(), BrokerError> {
        self.offsets
            .update_group(request.group, |stored| {
                if let Some(stored) = stored {
                    if let Some(refusal) = mismatch(request, &stored.topic, stored.settings.mode) {
                        return Err(refusal);
                    }
                    if request.config.is_empty() || request.config == stored.settings.config {
                        return Ok(None);
                    }
                }
                Ok(Some(StoredGroup {
                    topic: request.topic.to_string(),
                    settings: GroupSettings {
                        mode: request.mode,
                        config: request.config.to_vec(),
                    },
                }))
            })
            .await
    }

    /// Checks the names and numbers of a join.
    fn validate_join(&self, request: &JoinRequest<'_>) -> Result<(), BrokerError> {
        validate_group_name(request.group)?;
        let (min, max) = (
            self.config.min_session_timeout_ms,
            self.config.max_session_timeout_ms,
        );
        if !(min..=max).contains(&request.session_timeout_ms) {
            return Err(BrokerError::InvalidRequest(format!(
                "session timeout {} ms is outside the allowed {min}..={max} ms",
                request.session_timeout_ms
            )));
        }
        Ok(())
    }

    /// Commits the end of every partition without a commit, so that "latest" means
    /// the end at join time for every partition, whichever member ends up reading it.
    async fn pin_latest(
        &self,
        request: &JoinRequest<'_>,
        topic: &Topic,
    ) -> Result<(), BrokerError> {
        let pins: Vec<(u32, u64)> = topic
            .partitions
            .iter()
            .filter(|p| {
                self.offsets
                    .get(request.group, request.topic, p.id)
                    .is_none()
            })
            .map(|p| (p.id, p.end_offset()))
            .collect();
        self.offsets
            .commit(request.group, request.topic, &pins)
            .await
    }

    /// Adds (or refreshes) the member under the groups' lock and rebalances if it is
    /// new.
    fn admit(
        &self,
        request: &JoinRequest<'_>,
        partitions: u32,
    ) -> Result<JoinGroupResponse, BrokerError> {
        let mut groups = self.lock();
        let group = groups
            .entry(request.group.to_string())
            .or_insert_with(|| Group::new(request.topic, request.mode));
        // Checked again under the lock: a concurrent join may have created the group.
        if let Some(refusal) = mismatch(request, &group.topic, group.mode) {
            return Err(refusal);
        }
        let member_id = self.member_id(group, request)?;
        let now_ms = self.clock.monotonic_ms();
        let session_timeout_ms = u64::from(request.session_timeout_ms);
        match group.member_mut(&member_id) {
            Some(member) => {
                member.last_seen_ms = now_ms;
                member.session_timeout_ms = session_timeout_ms;
            }
            None => {
                let member = Member::new(request.client_name, session_timeout_ms, now_ms);
                group.add(member_id.clone(), member, partitions, now_ms);
            }
        }
        let partitions = group.told(&member_id).unwrap_or_default();
        let generation = group.generation();
        tracing::info!(group = request.group, member = %member_id, generation, ?partitions, "member joined");
        Ok(JoinGroupResponse {
            member_id,
            generation,
            partitions,
        })
    }

    /// The member id a join gets: a new one (if the group has room), or the rejoining
    /// member's own.
    fn member_id(&self, group: &Group, request: &JoinRequest<'_>) -> Result<String, BrokerError> {
        if request.member_id.is_empty() {
            if group.len() >= self.config.max_members_per_group {
                return Err(BrokerError::ResourceLimit {
                    what: "members per group",
                    limit: self.config.max_members_per_group as u64,
                });
            }
            let n = self.next_member.fetch_add(1, Ordering::Relaxed);
            let name = if request.client_name.is_empty() {
                "member"
            } else {
                request.client_name
            };
            return Ok(format!("{name}-{:08x}-{n}", self.boot_id));
        }
        if group.member(request.member_id).is_some() {
            return Ok(request.member_id.to_string());
        }
        Err(BrokerError::UnknownMember {
            group: request.group.into(),
            member: request.member_id.into(),
        })
    }

    /// Refuses a join that cannot succeed, before anything is written for it.
    fn check_join(&self, request: &JoinRequest<'_>) -> Result<(), BrokerError> {
        let groups = self.lock();
        let Some(group) = groups.get(request.group) else {
            return Ok(());
        };
        if let Some(refusal) = mismatch(request, &group.topic, group.mode) {
            return Err(refusal);
        }
        if request.member_id.is_empty() && group.len() >= self.config.max_members_per_group {
            return Err(BrokerError::ResourceLimit {
                what: "members per group",
                limit: self.config.max_members_per_group as u64,
            });
        }
        if !request.member_id.is_empty() && group.member(request.member_id).is_none() {
            return Err(BrokerError::UnknownMember {
                group: request.group.into(),
                member: request.member_id.into(),
            });
        }
        Ok(())
    }

    /// Records a heartbeat from a member that has applied the assignment of
    /// `applied_generation` (it stopped reading, and committed, the partitions that
    /// generation took away from it): releases those partitions to their new owners,
    /// and returns what the member is told now.
    pub fn heartbeat(
        &self,
        group: &str,
        member_id: &str,
        applied_generation: u32,
    ) -> Result<Assignment, BrokerError> {
        let mut groups = self.lock();
        let g = groups
            .get_mut(group)
            .ok_or_else(|| BrokerError::UnknownGroup(group.into()))?;
        let member = g
            .member_mut(member_id)
            .ok_or_else(|| unknown_member(group, member_id))?;
        member.last_seen_ms = self.clock.monotonic_ms();
        let released = g.applied(member_id, applied_generation);
        if !released.is_empty() {
            tracing::debug!(
                group,
                member = member_id,
                ?released,
                "revoked partitions released"
            );
        }
        Ok(assignment(g, member_id))
    }

    /// What the member is told now, without counting as a heartbeat.
    pub fn assignment(&self, group: &str, member_id: &str) -> Result<Assignment, BrokerError> {
        let groups = self.lock();
        let g = groups
            .get(group)
            .ok_or_else(|| BrokerError::UnknownGroup(group.into()))?;
        if g.member(member_id).is_none() {
            return Err(unknown_member(group, member_id));
        }
        Ok(assignment(g, member_id))
    }

    /// The topic a stream group reads (`None` for a queue group or no group).
    pub fn stream_topic(&self, group: &str) -> Option<String> {
        let groups = self.lock();
        let g = groups.get(group)?;
        (g.mode == GroupMode::Stream).then(|| g.topic.clone())
    }

    /// Whether `group` has members now.
    pub fn is_live(&self, group: &str) -> bool {
        self.lock().get(group).is_some_and(|g| g.len() > 0)
    }

    /// Whether `member_id` of `group` owns `partition` now (revoked from it or not:
    /// whoever may commit it).
    pub fn owns(&self, group: &str, member_id: &str, partition: u32) -> bool {
        let groups = self.lock();
        groups
            .get(group)
            .and_then(|g| g.member(member_id))
            .is_some_and(|m| m.owns(partition))
    }

    /// A receiver whose value moves whenever what any member of the group is told
    /// may have changed: on every rebalance, and when a released partition reaches
    /// its new owner.
    pub fn watch(&self, group: &str) -> Result<watch::Receiver<u64>, BrokerError> {
        let groups = self.lock();
        let g = groups
            .get(group)
            .ok_or_else(|| BrokerError::UnknownGroup(group.into()))?;
        Ok(g.watch())
    }

    /// Removes a member, releasing everything it owns at once, and rebalances.
    pub fn leave(&self, group: &str, member_id: &str) -> Result<(), BrokerError> {
        let mut groups = self.lock();
        let g = groups
            .get_mut(group)
            .ok_or_else(|| BrokerError::UnknownGroup(group.into()))?;
        if g.member(member_id).is_none() {
            return Err(unknown_member(group, member_id));
        }
        let partitions = self.partitions_of(&g.topic);
        g.remove(
            &[member_id.to_string()],
            partitions,
            self.clock.monotonic_ms(),
        );
        if g.mode == GroupMode::Queue {
            self.queues.member_gone(group, member_id);
        }
        tracing::info!(
            group,
            member = member_id,
            generation = g.generation(),
            "member left"
        );
        Ok(())
    }

    /// Removes members whose session expired (rebalancing their groups), and forces
    /// the release of revocations held for a whole session timeout. Returns how many
    /// members were removed.
    pub fn expire_sessions(&self) -> usize {
        let now_ms = self.clock.monotonic_ms();
        let mut removed = 0;
        let mut groups = self.lock();
        for (name, group) in groups.iter_mut() {
            let expired = group.expired(now_ms);
            if !expired.is_empty() {
                for id in &expired {
                    tracing::info!(group = %name, member = %id, "session expired");
                    if group.mode == GroupMode::Queue {
                        self.queues.member_gone(name, id);
                    }
                }
                let partitions = self.partitions_of(&group.topic);
                removed += group.remove(&expired, partitions, now_ms);
            }
            for forced in group.force_overdue(now_ms) {
                tracing::warn!(
                    group = %name,
                    member = %forced.member,
                    partitions = ?forced.partitions,
                    "revoked partitions not released within the member's session timeout; moving them anyway"
                );
            }
        }
        removed
    }

    /// `topic` grew from `old` to `new` partitions: every stream group that consumes
    /// it (with members, or with commits) gets offset 0 committed on each new
    /// partition, so that no record produced there is skipped whatever the group's
    /// start policy, and groups with members rebalance onto them. Returns the groups.
    pub async fn partitions_added(
        &self,
        topic: &str,
        old: u32,
        new: u32,
    ) -> Result<Vec<String>, BrokerError> {
        debug_assert!(new > old);
        let mut names: Vec<String> = self
            .offsets
            .groups()
            .into_iter()
            .filter(|(_, t)| t == topic)
            .map(|(g, _)| g)
            .collect();
        names.extend(
            self.lock()
                .iter()
                .filter(|(_, g)| g.topic == topic && g.mode == GroupMode::Stream)
                .map(|(name, _)| name.clone()),
        );
        names.sort();
        names.dedup();
        let starts: Vec<(u32, u64)> = (old..new).map(|p| (p, 0)).collect();
        for group in &names {
            self.offsets.commit(group, topic, &starts).await?;
        }
        let now_ms = self.clock.monotonic_ms();
        for (name, group) in self.lock().iter_mut() {
            if group.topic == topic && group.mode == GroupMode::Stream {
                group.resize(new, now_ms);
                tracing::info!(group = %name, topic, partitions = new, generation = group.generation(), "topic grew; group rebalanced");
            }
        }
        Ok(names)
    }

    /// The topic's partition count (0 if it is gone).
    fn partitions_of(&self, topic: &str) -> u32 {
        self.topics.get(topic).map_or(0, |t| t.config.partitions)
    }

    /// Commits offsets for partitions the member owns (revoked from it or not, in
    /// whatever generation it says). A partition it does not own is refused with
    /// `stale_generation` if the member is behind the group (heartbeat to learn what
    /// it owns), else `invalid_partition`.
    pub async fn commit(
        &self,
        group: &str,
        member_id: &str,
        generation: u32,
        topic: &str,
        offsets: &[(u32, u64)],
    ) -> Result<(), BrokerError> {
        {
            let mut groups = self.lock();
            let g = groups
                .get_mut(group)
                .ok_or_else(|| BrokerError::UnknownGroup(group.into()))?;
            if g.topic != topic {
                return Err(BrokerError::InvalidRequest(format!(
                    "group {group:?} consumes {:?}, not {topic:?}",
                    g.topic
                )));
            }
            if g.mode == GroupMode::Queue {
                return Err(BrokerError::InvalidRequest(format!(
                    "group {group:?} is a queue group: it acks messages instead of committing offsets"
                )));
            }
            let current = g.generation();
            let member = g
                .member_mut(member_id)
                .ok_or_else(|| unknown_member(group, member_id))?;
            if let Some(&(partition, _)) = offsets.iter().find(|(p, _)| !member.owns(*p)) {
                return Err(if state::is_before(generation, current) {
                    BrokerError::StaleGeneration {
                        given: generation,
                        current,
                    }
                } else {
                    BrokerError::NotAssigned {
                        partition,
                        member: member_id.into(),
                        generation: current,
                    }
                });
            }
            member.last_seen_ms = self.clock.monotonic_ms();
        }
        self.offsets.commit(group, topic, offsets).await
    }
}

/// Checks a group name: 1 to [`MAX_GROUP_NAME_BYTES`] bytes, no control characters
/// (a NUL would split the group's keys on the internal topics).
pub fn validate_group_name(group: &str) -> Result<(), BrokerError> {
    if group.is_empty() || group.len() > MAX_GROUP_NAME_BYTES {
        return Err(BrokerError::InvalidRequest(format!(
            "group names have 1 to {MAX_GROUP_NAME_BYTES} bytes"
        )));
    }
    if group.chars().any(char::is_control) {
        return Err(BrokerError::InvalidRequest(format!(
            "group name {group:?} contains a control character"
        )));
    }
    Ok(())
}

/// Why a join cannot join the group of `topic` and `mode`, if it cannot: the one
/// refusal of a wrong topic or mode, for live and recorded groups alike.
fn mismatch(request: &JoinRequest<'_>, topic: &str, mode: GroupMode) -> Option<BrokerError> {
    if topic != request.topic {
        return Some(BrokerError::InvalidRequest(format!(
            "group {:?} consumes topic {topic:?}, not {:?}",
            request.group, request.topic
        )));
    }
    (mode != request.mode).then(|| {
        BrokerError::InvalidRequest(format!(
            "group {:?} is a {} group; join it in that mode",
            request.group,
            mode_name(mode)
        ))
    })
}

/// `stream` or `queue`, as the refusals and logs say it.
pub fn mode_name(mode: GroupMode) -> &'static str {
    match mode {
        GroupMode::Queue => "queue",
        GroupMode::Stream => "stream",
    }
}

/// What a member of `group` is told; it must be a member.
fn assignment(group: &Group, member_id: &str) -> Assignment {
    Assignment {
        generation: group.generation(),
        partitions: group.told(member_id).unwrap_or_default(),
    }
}

fn unknown_member(group: &str, member_id: &str) -> BrokerError {
    BrokerError::UnknownMember {
        group: group.into(),
        member: member_id.into(),
    }
}

/// Runs [`Groups::expire_sessions`] every [`SESSION_CHECK_INTERVAL`] until `shutdown`
/// fires.
pub async fn run_session_reaper(groups: Arc<Groups>, shutdown: crate::shutdown::Shutdown) {
    crate::tasks::every(SESSION_CHECK_INTERVAL, shutdown, || {
        groups.expire_sessions();
        std::future::ready(())
    })
    .await
}

#[cfg(test)]
mod tests;
