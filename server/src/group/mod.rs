//! Consumer groups: membership, partition assignment, session timeouts, and committed
//! offsets.
//!
//! A group belongs to one topic. Members join and heartbeat; every change of
//! membership (join, leave, session expiry) starts a new generation with a new
//! assignment in which each partition belongs to exactly one live member. Stream
//! groups' assignment is sticky ([`assign::sticky`]): a member keeps what it has up to
//! its share, so one member coming or going moves only the partitions it takes or
//! leaves, never partitions between the members that stayed. Members
//! learn their assignment from the JoinGroup answer and from every heartbeat; commits
//! carrying an older generation are refused, so a member that lost a partition cannot
//! overwrite the progress of the one that gained it.

pub mod assign;
mod describe;
pub mod offsets;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use protocol::ops::group::{GroupMode, GroupStart, JoinGroupResponse};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::GroupConfig;
use crate::error::BrokerError;
use crate::queue::Queues;
use crate::topics::{Topic, Topics};
use offsets::Offsets;

/// Longest group name, bytes.
pub const MAX_GROUP_NAME_BYTES: usize = 200;
/// How often expired sessions are looked for.
pub const SESSION_CHECK_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug)]
struct Member {
    client_name: String,
    session_timeout_ms: u64,
    /// Monotonic time of the last join or heartbeat.
    last_seen_ms: u64,
    partitions: Vec<u32>,
}

impl Member {
    fn alive_at(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.last_seen_ms) < self.session_timeout_ms
    }
}

#[derive(Debug)]
struct Group {
    topic: String,
    mode: GroupMode,
    generation: u32,
    members: BTreeMap<String, Member>,
    changed: watch::Sender<u32>,
}

impl Group {
    fn new(topic: &str, mode: GroupMode) -> Group {
        Group {
            topic: topic.to_string(),
            mode,
            generation: 0,
            members: BTreeMap::new(),
            changed: watch::channel(0).0,
        }
    }

    fn rebalance(&mut self, partitions: u32) {
        self.generation = self.generation.wrapping_add(1);
        let assignment = match self.mode {
            // In a queue group every member may receive from every partition.
            GroupMode::Queue => vec![(0..partitions).collect(); self.members.len()],
            GroupMode::Stream => {
                let current: Vec<Vec<u32>> = self
                    .members
                    .values()
                    .map(|m| m.partitions.clone())
                    .collect();
                assign::sticky(&current, partitions)
            }
        };
        for (member, partitions) in self.members.values_mut().zip(assignment) {
            member.partitions = partitions;
        }
        self.changed.send_replace(self.generation);
    }
}

/// A member's view of its group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// Current generation.
    pub generation: u32,
    /// Partitions this member owns in it.
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
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Group>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The offset store.
    pub fn offsets(&self) -> &Arc<Offsets> {
        &self.offsets
    }

    /// Adds a member (or refreshes an existing one) and rebalances.
    pub async fn join(&self, request: JoinRequest<'_>) -> Result<JoinGroupResponse, BrokerError> {
        self.validate_join(&request)?;
        let topic = self.topics.get(request.topic)?;
        self.check_join(&request)?;
        if request.mode == GroupMode::Queue {
            let latest = request.start == GroupStart::Latest;
            self.queues
                .ensure_group(request.group, request.topic, request.config, latest)?;
        } else if !request.config.is_empty() {
            return Err(BrokerError::InvalidRequest(
                "per-group config overrides apply to queue groups only".into(),
            ));
        }
        if request.start == GroupStart::Latest && request.mode == GroupMode::Stream {
            self.pin_latest(&request, &topic).await?;
        }
        self.admit(&request, topic.config.partitions)
    }

    /// Checks the names and numbers of a join.
    fn validate_join(&self, request: &JoinRequest<'_>) -> Result<(), BrokerError> {
        if request.group.is_empty() || request.group.len() > MAX_GROUP_NAME_BYTES {
            return Err(BrokerError::InvalidRequest(format!(
                "group names have 1 to {MAX_GROUP_NAME_BYTES} bytes"
            )));
        }
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
        if group.topic != request.topic {
            return Err(BrokerError::InvalidRequest(format!(
                "group {:?} consumes topic {:?}, not {:?}",
                request.group, group.topic, request.topic
            )));
        }
        let member_id = self.member_id(group, request)?;
        let now_ms = self.clock.monotonic_ms();
        let session_timeout_ms = u64::from(request.session_timeout_ms);
        let is_new = !group.members.contains_key(&member_id);
        let member = group
            .members
            .entry(member_id.clone())
            .or_insert_with(|| Member {
                client_name: request.client_name.to_string(),
                session_timeout_ms,
                last_seen_ms: now_ms,
                partitions: Vec::new(),
            });
        member.last_seen_ms = now_ms;
        member.session_timeout_ms = session_timeout_ms;
        if is_new {
            group.rebalance(partitions);
        }
        let partitions = group
            .members
            .get(&member_id)
            .map(|m| m.partitions.clone())
            .unwrap_or_default();
        tracing::info!(group = request.group, member = %member_id, generation = group.generation, ?partitions, "member joined");
        Ok(JoinGroupResponse {
            member_id,
            generation: group.generation,
            partitions,
        })
    }

    /// The member id a join gets: a new one (if the group has room), or the rejoining
    /// member's own.
    fn member_id(&self, group: &Group, request: &JoinRequest<'_>) -> Result<String, BrokerError> {
        if request.member_id.is_empty() {
            if group.members.len() >= self.config.max_members_per_group {
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
        if group.members.contains_key(request.member_id) {
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
        if group.topic != request.topic {
            return Err(BrokerError::InvalidRequest(format!(
                "group {:?} consumes topic {:?}, not {:?}",
                request.group, group.topic, request.topic
            )));
        }
        if group.mode != request.mode {
            return Err(BrokerError::InvalidRequest(format!(
                "group {:?} is a {} group; join it in that mode",
                request.group,
                if group.mode == GroupMode::Queue {
                    "queue"
                } else {
                    "stream"
                }
            )));
        }
        if request.member_id.is_empty() && group.members.len() >= self.config.max_members_per_group
        {
            return Err(BrokerError::ResourceLimit {
                what: "members per group",
                limit: self.config.max_members_per_group as u64,
            });
        }
        if !request.member_id.is_empty() && !group.members.contains_key(request.member_id) {
            return Err(BrokerError::UnknownMember {
                group: request.group.into(),
                member: request.member_id.into(),
            });
        }
        Ok(())
    }

    /// Records a heartbeat; returns the member's current assignment.
    pub fn heartbeat(&self, group: &str, member_id: &str) -> Result<Assignment, BrokerError> {
        let mut groups = self.lock();
        let g = groups
            .get_mut(group)
            .ok_or_else(|| BrokerError::UnknownGroup(group.into()))?;
        let member = g
            .members
            .get_mut(member_id)
            .ok_or_else(|| BrokerError::UnknownMember {
                group: group.into(),
                member: member_id.into(),
            })?;
        member.last_seen_ms = self.clock.monotonic_ms();
        Ok(Assignment {
            generation: g.generation,
            partitions: member.partitions.clone(),
        })
    }

    /// The member's current assignment, without counting as a heartbeat.
    pub fn assignment(&self, group: &str, member_id: &str) -> Result<Assignment, BrokerError> {
        let groups = self.lock();
        let g = groups
            .get(group)
            .ok_or_else(|| BrokerError::UnknownGroup(group.into()))?;
        let member = g
            .members
            .get(member_id)
            .ok_or_else(|| BrokerError::UnknownMember {
                group: group.into(),
                member: member_id.into(),
            })?;
        Ok(Assignment {
            generation: g.generation,
            partitions: member.partitions.clone(),
        })
    }

    /// A receiver that changes with the group's generation.
    pub fn watch(&self, group: &str) -> Result<watch::Receiver<u32>, BrokerError> {
        let groups = self.lock();
        let g = groups
            .get(group)
            .ok_or_else(|| BrokerError::UnknownGroup(group.into()))?;
        Ok(g.changed.subscribe())
    }

    /// Removes a member and rebalances.
    pub fn leave(&self, group: &str, member_id: &str) -> Result<(), BrokerError> {
        let mut groups = self.lock();
        let g = groups
            .get_mut(group)
            .ok_or_else(|| BrokerError::UnknownGroup(group.into()))?;
        if g.members.remove(member_id).is_none() {
            return Err(BrokerError::UnknownMember {
                group: group.into(),
                member: member_id.into(),
            });
        }
        if g.mode == GroupMode::Queue {
            self.queues.member_gone(group, member_id);
        }
        let partitions = self.topics.get(&g.topic).map_or(0, |t| t.config.partitions);
        g.rebalance(partitions);
        tracing::info!(
            group,
            member = member_id,
            generation = g.generation,
            "member left"
        );
        Ok(())
    }

    /// Removes members whose session expired and rebalances their groups. Returns how
    /// many were removed.
    pub fn expire_sessions(&self) -> usize {
        let now_ms = self.clock.monotonic_ms();
        let mut removed = 0;
        let mut groups = self.lock();
        for (name, group) in groups.iter_mut() {
            let before = group.members.len();
            let queues = &self.queues;
            let queue_mode = group.mode == GroupMode::Queue;
            group.members.retain(|id, m| {
                let alive = m.alive_at(now_ms);
                if !alive {
                    tracing::info!(group = %name, member = %id, "session expired");
                    if queue_mode {
                        queues.member_gone(name, id);
                    }
                }
                alive
            });
            if group.members.len() != before {
                removed += before - group.members.len();
                let partitions = self
                    .topics
                    .get(&group.topic)
                    .map_or(0, |t| t.config.partitions);
                group.rebalance(partitions);
            }
        }
        removed
    }

    /// Commits offsets for a member of the current generation that owns the partitions.
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
            let current = g.generation;
            let member =
                g.members
                    .get_mut(member_id)
                    .ok_or_else(|| BrokerError::UnknownMember {
                        group: group.into(),
                        member: member_id.into(),
                    })?;
            if generation != current {
                return Err(BrokerError::StaleGeneration {
                    given: generation,
                    current,
                });
            }
            if let Some((p, _)) = offsets.iter().find(|(p, _)| !member.partitions.contains(p)) {
                return Err(BrokerError::NotAssigned {
                    partition: *p,
                    member: member_id.into(),
                    generation: current,
                });
            }
            member.last_seen_ms = self.clock.monotonic_ms();
        }
        self.offsets.commit(group, topic, offsets).await
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
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::tasks::Tasks;
    use crate::topics::TopicConfig;
    use crate::traces::Traces;

    fn join<'a>(group: &'a str, member_id: &'a str, session_timeout_ms: u32) -> JoinRequest<'a> {
        JoinRequest {
            group,
            topic: "t",
            member_id,
            session_timeout_ms,
            mode: GroupMode::Stream,
            start: GroupStart::Earliest,
            client_name: "test",
            config: &[],
        }
    }

    #[tokio::test]
    async fn a_member_that_stops_heartbeating_expires_after_its_session_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let topics = Arc::new(Topics::open(dir.path()).unwrap());
        let config = TopicConfig {
            partitions: 2,
            ..TopicConfig::internal_default()
        };
        topics.create("t", config, false).unwrap();
        let tasks = Arc::new(Tasks::new());
        tasks.stop(Duration::ZERO).await;
        let clock = Arc::new(ManualClock::new(1_000_000));
        let offsets = Arc::new(Offsets::open(&topics, clock.clone()).unwrap());
        let traces = Traces::open(&topics, &tasks, 0.0, clock.clone()).unwrap();
        let queues = Arc::new(Queues::open(topics.clone(), tasks, traces, clock.clone()).unwrap());
        let groups = Groups::new(
            GroupConfig::default(),
            topics,
            offsets,
            queues,
            clock.clone(),
        );

        let quick = groups.join(join("g", "", 1_000)).await.unwrap().member_id;
        let slow = groups.join(join("g", "", 3_000)).await.unwrap().member_id;
        assert_eq!(groups.assignment("g", &slow).unwrap().partitions, [1]);
        clock.advance(900);
        groups.heartbeat("g", &quick).unwrap();
        assert_eq!(groups.expire_sessions(), 0);
        clock.advance(999);
        assert_eq!(groups.expire_sessions(), 0, "999 ms since its heartbeat");
        clock.advance(1);
        assert_eq!(groups.expire_sessions(), 1, "1000 ms without a heartbeat");
        assert!(matches!(
            groups.heartbeat("g", &quick),
            Err(BrokerError::UnknownMember { .. })
        ));
        let left = groups.heartbeat("g", &slow).unwrap();
        assert_eq!(
            left.partitions,
            [0, 1],
            "the survivor takes every partition"
        );
        assert_eq!(left.generation, 3);
        clock.step_wall(-7_200_000);
        clock.advance(2_999);
        assert_eq!(
            groups.expire_sessions(),
            0,
            "a wall-clock step changes nothing"
        );
        clock.advance(1);
        assert_eq!(groups.expire_sessions(), 1);
    }
}
