//! The Kafka group coordinator: consumer groups under Kafka's classic protocol
//! (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), with the assignment computed by
//! the clients' own assignors (range, roundrobin, cooperative-sticky: the broker
//! passes their metadata and assignments through unread).
//!
//! It is apart from [`crate::group::Groups`], the native coordinator, because the
//! protocols differ (a native group has one topic and a broker-side sticky
//! assignment; a Kafka group names no topic and the leader assigns), but the two
//! share what users see: a Kafka group's committed offsets are stored in
//! [`crate::group::offsets::Offsets`] like a native group's (`brokerctl groups
//! describe` shows them, and a group may move from one protocol to the other between
//! runs), and a name live in one coordinator is refused by the other.
//!
//! This file holds the groups under one lock, the clock, the waits (a JoinGroup or
//! SyncGroup answer can wait for other members) and the expiry sweep; `state.rs`
//! holds one group's pure rules.

pub mod state;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};
use kafka_protocol::protocol::Decodable;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::GroupConfig;
use state::{ClassicGroup, GroupError, Join, JoinAnswer, Member, MemberRef, Phase, Synced};

/// Live Kafka groups (with members) at once; a join that would create one more is
/// refused with GROUP_MAX_SIZE_REACHED.
pub const MAX_KAFKA_GROUPS: usize = 10_000;
/// Protocols (assignors) one member may offer.
pub const MAX_PROTOCOLS_PER_MEMBER: usize = 16;
/// Longest rebalance timeout a member may ask for, ms (Kafka's default
/// `max.poll.interval.ms` is 300 000); longer ones are cut to it.
pub const MAX_REBALANCE_TIMEOUT_MS: u64 = 300_000;
/// How often sessions and rebalance deadlines are checked.
pub const EXPIRY_CHECK_INTERVAL: Duration = Duration::from_millis(100);
/// How long a waiting join or sync sleeps before it looks again without being
/// woken (a backstop: every change wakes it).
const WAIT_SLICE: Duration = Duration::from_secs(1);
/// Bytes of the client id kept in member ids.
const MEMBER_ID_CLIENT_BYTES: usize = 64;

/// Why the coordinator refuses a request, beyond a group's own rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The group's rules refused it.
    #[error(transparent)]
    Group(#[from] GroupError),
    /// The session timeout is outside `[groups]`' bounds.
    #[error("the session timeout is outside the broker's bounds")]
    InvalidSessionTimeout,
    /// [`MAX_KAFKA_GROUPS`] are live.
    #[error("too many live Kafka groups")]
    TooManyGroups,
    /// The name is a native group's, live now (or a queue group's).
    #[error("the group is in use by brokerd's own protocol")]
    NativeGroup,
    /// A member offered more than [`MAX_PROTOCOLS_PER_MEMBER`] protocols.
    #[error("too many protocols")]
    TooManyProtocols,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone)]
pub struct Described {
    /// Its phase.
    pub phase: Phase,
    /// Its generation.
    pub generation: i32,
    /// Its members' protocol type ("consumer"), empty when it has none.
    pub protocol_type: String,
    /// The protocol the last rebalance chose, empty before one.
    pub protocol: String,
    /// The members.
    pub members: Vec<Member>,
}

/// A live group as ListGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its name.
    pub group: String,
    /// Its phase.
    pub phase: Phase,
    /// Its members' protocol type ("consumer"), empty when it has none.
    pub protocol_type: String,
    /// How many members it has.
    pub members: usize,
    /// Its generation.
    pub generation: i32,
}

#[derive(Debug)]
struct Slot {
    group: ClassicGroup,
    /// Bumped whenever answers appear, to wake those waiting for them.
    changed: watch::Sender<u64>,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            group: ClassicGroup::default(),
            changed: watch::channel(0).0,
        }
    }

    fn wake_if_answered(&self) {
        if self.group.has_answers() {
            self.changed.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

/// The Kafka group coordinator.
#[derive(Debug)]
pub struct KafkaGroups {
    groups: Mutex<HashMap<String, Slot>>,
    config: GroupConfig,
    clock: Arc<dyn Clock>,
    next_member: AtomicU64,
    /// Distinguishes this run's member ids from an earlier run's.
    boot_id: u32,
}

impl KafkaGroups {
    /// A coordinator with no groups, under `[groups]`' member and session limits.
    pub fn new(config: GroupConfig, clock: Arc<dyn Clock>) -> KafkaGroups {
        let boot_id = (clock.wall_ms() as u32) ^ std::process::id().rotate_left(16);
        KafkaGroups {
            groups: Mutex::new(HashMap::new()),
            config,
            clock,
            next_member: AtomicU64::new(1),
            boot_id,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> u64 {
        self.clock.monotonic_ms()
    }

    /// Whether `group` has members here.
    pub fn is_live(&self, group: &str) -> bool {
        self.lock().get(group).is_some_and(|s| !s.group.is_empty())
    }

    /// Joins `group` (creating it), then waits for the rebalance to complete.
    /// `native_live` says whether the name is live in the native coordinator.
    pub async fn join(
        &self,
        group: &str,
        mut join: Join,
        native_live: bool,
    ) -> Result<JoinAnswer, Refused> {
        let session = join.session_timeout_ms;
        if session < u64::from(self.config.min_session_timeout_ms)
            || session > u64::from(self.config.max_session_timeout_ms)
        {
            return Err(Refused::InvalidSessionTimeout);
        }
        if join.protocols.len() > MAX_PROTOCOLS_PER_MEMBER {
            return Err(Refused::TooManyProtocols);
        }
        join.rebalance_timeout_ms = join
            .rebalance_timeout_ms
            .clamp(session, MAX_REBALANCE_TIMEOUT_MS.max(session));
        if native_live {
            return Err(Refused::NativeGroup);
        }
        let client = truncate(&join.client_id, MEMBER_ID_CLIENT_BYTES).to_owned();
        let member_id = {
            let mut groups = self.lock();
            if !groups.contains_key(group) && groups.len() >= MAX_KAFKA_GROUPS {
                return Err(Refused::TooManyGroups);
            }
            let slot = groups.entry(group.to_owned()).or_insert_with(Slot::new);
            let new_id = || {
                let n = self.next_member.fetch_add(1, Ordering::Relaxed);
                format!("{client}-{:08x}-{n}", self.boot_id)
            };
            let joined =
                slot.group
                    .join(join, new_id, self.config.max_members_per_group, self.now());
            slot.wake_if_answered();
            let member_id = match joined {
                Ok(id) => id,
                Err(e) => {
                    if slot.group.is_empty() {
                        groups.remove(group);
                    }
                    return Err(e.into());
                }
            };
            tracing::debug!(group, member = %member_id, "Kafka member joined");
            member_id
        };
        self.wait(group, |g| {
            if let Some(answer) = g.take_join_answer(&member_id) {
                return Some(Ok(answer));
            }
            (!g.has(&member_id)).then_some(Err(GroupError::UnknownMember))
        })
        .await
        .map_err(Refused::from)
    }

    /// A SyncGroup; a follower's waits for the leader's.
    pub async fn sync(
        &self,
        group: &str,
        member: MemberRef<'_>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> Result<Bytes, GroupError> {
        let member_id = member.id;
        {
            let mut groups = self.lock();
            let slot = groups.get_mut(group).ok_or(GroupError::UnknownMember)?;
            let synced = slot.group.sync(member, generation, assignments, self.now());
            slot.wake_if_answered();
            match synced? {
                Synced::Ready(assignment) => return Ok(assignment),
                Synced::Wait => {}
            }
        }
        self.wait(group, |g| {
            if let Some(answer) = g.take_sync_answer(member_id) {
                return Some(answer);
            }
            (!g.has(member_id)).then_some(Err(GroupError::UnknownMember))
        })
        .await
    }

    /// Waits until `ready` finds an answer in `group` (or the group is gone).
    async fn wait<T>(
        &self,
        group: &str,
        mut ready: impl FnMut(&mut ClassicGroup) -> Option<Result<T, GroupError>>,
    ) -> Result<T, GroupError> {
        loop {
            let mut changed = {
                let mut groups = self.lock();
                let slot = groups.get_mut(group).ok_or(GroupError::UnknownMember)?;
                if let Some(answer) = ready(&mut slot.group) {
                    return answer;
                }
                slot.changed.subscribe()
            };
            let _ = tokio::time::timeout(WAIT_SLICE, changed.changed()).await;
        }
    }

    /// A heartbeat.
    pub fn heartbeat(
        &self,
        group: &str,
        member: MemberRef<'_>,
        generation: i32,
    ) -> Result<(), GroupError> {
        let mut groups = self.lock();
        let slot = groups.get_mut(group).ok_or(GroupError::UnknownMember)?;
        slot.group.heartbeat(member, generation, self.now())
    }

    /// `member` leaves `group` (a static member may be named by its instance id
    /// alone).
    pub fn leave(&self, group: &str, member: MemberRef<'_>) -> Result<(), GroupError> {
        let mut groups = self.lock();
        let slot = groups.get_mut(group).ok_or(GroupError::UnknownMember)?;
        let left = slot.group.leave(member, self.now())?;
        slot.wake_if_answered();
        tracing::debug!(group, member = %left, "Kafka member left");
        if slot.group.is_empty() {
            groups.remove(group);
        }
        Ok(())
    }

    /// Whether `member_id` at `generation` may commit `group`'s offsets now. A
    /// group this coordinator does not hold takes commits that name no member.
    pub fn may_commit(
        &self,
        group: &str,
        member: MemberRef<'_>,
        generation: i32,
    ) -> Result<(), GroupError> {
        let mut groups = self.lock();
        match groups.get_mut(group) {
            Some(slot) => slot.group.may_commit(member, generation, self.now()),
            None if generation < 0 && member.id.is_empty() => Ok(()),
            None => Err(GroupError::UnknownMember),
        }
    }

    /// The group as DescribeGroups shows it; `None` if it has no members here.
    pub fn describe(&self, group: &str) -> Option<Described> {
        let groups = self.lock();
        let g = &groups.get(group)?.group;
        Some(Described {
            phase: g.phase(),
            generation: g.generation(),
            protocol_type: g.protocol_type().unwrap_or_default().to_owned(),
            protocol: g.protocol().unwrap_or_default().to_owned(),
            members: g.members().map(|(_, m)| m.clone()).collect(),
        })
    }

    /// Every live group, sorted by name.
    pub fn list(&self) -> Vec<Listed> {
        let groups = self.lock();
        let mut out: Vec<Listed> = groups
            .iter()
            .map(|(name, s)| Listed {
                group: name.clone(),
                phase: s.group.phase(),
                protocol_type: s.group.protocol_type().unwrap_or_default().to_owned(),
                members: s.group.len(),
                generation: s.group.generation(),
            })
            .collect();
        out.sort_by(|a, b| a.group.cmp(&b.group));
        out
    }

    /// Expires silent members and completes rebalances past their deadline; drops
    /// groups left empty. Returns how many members expired.
    pub fn expire(&self) -> usize {
        let now = self.now();
        let mut groups = self.lock();
        let mut expired = 0;
        for (name, slot) in groups.iter_mut() {
            let gone = slot.group.expire(now);
            for member in &gone {
                tracing::info!(group = %name, %member, "Kafka member's session expired");
            }
            expired += gone.len();
            slot.wake_if_answered();
        }
        groups.retain(|_, s| !s.group.is_empty());
        expired
    }
}

/// The partitions of `topic` in a consumer's assignment (the consumer protocol's
/// `ConsumerProtocolAssignment`: a version, then the body), for the native
/// DescribeGroup. The broker never relies on it; an assignment it cannot read (a
/// protocol type other than "consumer", a malformed one) names nothing.
pub fn assigned_partitions(assignment: &Bytes, topic: &str) -> Vec<u32> {
    let Some(decoded) = consumer_protocol::<ConsumerProtocolAssignment>(assignment) else {
        return Vec::new();
    };
    let mut partitions: Vec<u32> = decoded
        .assigned_partitions
        .iter()
        .filter(|t| t.topic.0.as_str() == topic)
        .flat_map(|t| t.partitions.iter().filter_map(|p| u32::try_from(*p).ok()))
        .collect();
    partitions.sort_unstable();
    partitions.dedup();
    partitions
}

/// One of the consumer protocol's documents (a subscription or an assignment): a
/// big-endian version, then the body. Later versions only add fields, so one newer
/// than the crate knows is read as the newest it does; `None` if it does not decode.
fn consumer_protocol<T: Decodable>(document: &Bytes) -> Option<T> {
    let mut buf = document.clone();
    if buf.len() < 2 {
        return None;
    }
    let version = bytes::Buf::get_i16(&mut buf).clamp(0, 3);
    T::decode(&mut buf, version).ok()
}

/// The topics a consumer's subscription names (the consumer protocol's
/// `ConsumerProtocolSubscription`: a version, then the body), for the native
/// ListGroups and DescribeGroup. Like [`assigned_partitions`], an unreadable one
/// names nothing.
pub fn subscribed_topics(metadata: &Bytes) -> Vec<String> {
    consumer_protocol::<ConsumerProtocolSubscription>(metadata)
        .map(|s| s.topics.iter().map(|t| t.as_str().to_owned()).collect())
        .unwrap_or_default()
}

/// The topics named in a consumer's assignment, for [`Described::topic`].
fn assigned_topics(assignment: &Bytes) -> Vec<String> {
    consumer_protocol::<ConsumerProtocolAssignment>(assignment)
        .map(|a| {
            a.assigned_partitions
                .iter()
                .map(|t| t.topic.0.as_str().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

impl Described {
    /// The one topic the native protocol shows this group reading (a native group
    /// reads one; a Kafka group may read several): the first, by name, of those its
    /// members were assigned, else of those they subscribe to under the group's
    /// protocol (their preferred one before a rebalance has chosen). `None` if no
    /// member names one the consumer protocol can read.
    pub fn topic(&self) -> Option<String> {
        let assigned = self
            .members
            .iter()
            .flat_map(|m| assigned_topics(&m.assignment));
        if let Some(first) = assigned.min() {
            return Some(first);
        }
        self.members
            .iter()
            .flat_map(|m| {
                let metadata = if self.protocol.is_empty() {
                    m.join
                        .protocols
                        .first()
                        .map(|(_, metadata)| metadata.clone())
                } else {
                    Some(m.metadata(&self.protocol))
                };
                metadata
                    .map(|md| subscribed_topics(&md))
                    .unwrap_or_default()
            })
            .min()
    }
}

/// The longest prefix of `text` of at most `max` bytes, cut at a character.
fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Runs [`KafkaGroups::expire`] every [`EXPIRY_CHECK_INTERVAL`] until shutdown.
pub async fn run_expiry(groups: Arc<KafkaGroups>, mut shutdown: crate::shutdown::Shutdown) {
    let mut tick = tokio::time::interval(EXPIRY_CHECK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => { groups.expire(); }
            _ = shutdown.recv() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn coordinator() -> (Arc<KafkaGroups>, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(1_700_000_000_000));
        let config = GroupConfig::default();
        (Arc::new(KafkaGroups::new(config, clock.clone())), clock)
    }

    fn join(id: &str) -> Join {
        Join {
            member_id: id.into(),
            instance_id: None,
            client_id: "rdkafka".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 20_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"m"))],
        }
    }

    #[tokio::test]
    async fn a_second_join_waits_for_the_first_member_to_rejoin() {
        let (groups, _clock) = coordinator();
        let a = groups.join("g", join(""), false).await.unwrap();
        assert!(a.member_id.starts_with("rdkafka-"));
        groups
            .sync("g", a.member_id.as_str().into(), 1, vec![])
            .await
            .unwrap();
        let g2 = groups.clone();
        let b = tokio::spawn(async move { g2.join("g", join(""), false).await });
        tokio::task::yield_now().await;
        while groups
            .heartbeat("g", a.member_id.as_str().into(), 1)
            .is_ok()
        {
            tokio::task::yield_now().await;
        }
        let again = groups.join("g", join(&a.member_id), false).await.unwrap();
        let b = b.await.unwrap().unwrap();
        assert_eq!((again.generation, b.generation), (2, 2));
        assert_eq!(again.leader, a.member_id);
        let g3 = groups.clone();
        let (bid, gen) = (b.member_id.clone(), b.generation);
        let follower =
            tokio::spawn(async move { g3.sync("g", bid.as_str().into(), gen, vec![]).await });
        tokio::task::yield_now().await;
        let shares = vec![(b.member_id.clone(), Bytes::from_static(b"p1"))];
        groups
            .sync("g", a.member_id.as_str().into(), 2, shares)
            .await
            .unwrap();
        assert_eq!(follower.await.unwrap().unwrap(), Bytes::from_static(b"p1"));
    }

    #[tokio::test]
    async fn the_sweep_expires_silent_members_and_drops_empty_groups() {
        let (groups, clock) = coordinator();
        let a = groups.join("g", join(""), false).await.unwrap();
        clock.advance(9_999);
        assert_eq!(groups.expire(), 0);
        clock.advance(1);
        assert_eq!(groups.expire(), 1);
        assert!(!groups.is_live("g"));
        assert_eq!(
            groups.heartbeat("g", a.member_id.as_str().into(), 1),
            Err(GroupError::UnknownMember)
        );
        assert_eq!(groups.may_commit("g", "".into(), -1), Ok(()));
    }

    #[tokio::test]
    async fn bad_joins_are_refused_and_native_names_are_kept_apart() {
        let (groups, _clock) = coordinator();
        let short = Join {
            session_timeout_ms: 1,
            ..join("")
        };
        assert_eq!(
            groups.join("g", short, false).await.unwrap_err(),
            Refused::InvalidSessionTimeout
        );
        assert_eq!(
            groups.join("g", join(""), true).await.unwrap_err(),
            Refused::NativeGroup
        );
        assert_eq!(
            groups.join("g", join("ghost"), false).await.unwrap_err(),
            Refused::Group(GroupError::UnknownMember)
        );
        assert!(
            groups.list().is_empty(),
            "a refused join leaves no group behind"
        );
    }

    #[test]
    fn a_consumers_assignment_names_its_partitions_of_a_topic() {
        use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
        use kafka_protocol::messages::{ConsumerProtocolAssignment, TopicName};
        use kafka_protocol::protocol::{Encodable, StrBytes};
        let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
            TopicPartition::default()
                .with_topic(TopicName(StrBytes::from_static_str("orders")))
                .with_partitions(vec![3, 1]),
            TopicPartition::default()
                .with_topic(TopicName(StrBytes::from_static_str("other")))
                .with_partitions(vec![0]),
        ]);
        let mut buf = bytes::BytesMut::new();
        bytes::BufMut::put_i16(&mut buf, 1);
        assignment.encode(&mut buf, 1).unwrap();
        let buf = buf.freeze();
        assert_eq!(assigned_partitions(&buf, "orders"), vec![1, 3]);
        assert!(assigned_partitions(&buf, "missing").is_empty());
        assert!(assigned_partitions(&buf.slice(..5), "orders").is_empty());
        assert!(assigned_partitions(&Bytes::new(), "orders").is_empty());
    }

    #[tokio::test]
    async fn the_native_view_names_an_assigned_topic_else_a_subscribed_one() {
        use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
        use kafka_protocol::messages::TopicName;
        use kafka_protocol::protocol::{Encodable, StrBytes};
        let versioned = |encode: &dyn Fn(&mut bytes::BytesMut)| {
            let mut buf = bytes::BytesMut::new();
            bytes::BufMut::put_i16(&mut buf, 1);
            encode(&mut buf);
            buf.freeze()
        };
        let subscription = versioned(&|buf| {
            ConsumerProtocolSubscription::default()
                .with_topics(vec![
                    StrBytes::from_static_str("payments"),
                    StrBytes::from_static_str("orders"),
                ])
                .encode(buf, 1)
                .unwrap()
        });
        let (groups, _clock) = coordinator();
        let unreadable = groups.join("u", join(""), false).await.unwrap();
        assert_eq!(
            groups.describe("u").unwrap().topic(),
            None,
            "{unreadable:?}"
        );

        let subscribed = Join {
            protocols: vec![("range".into(), subscription)],
            ..join("")
        };
        let a = groups.join("g", subscribed, false).await.unwrap();
        assert_eq!(
            groups.describe("g").unwrap().topic().as_deref(),
            Some("orders")
        );
        let assignment = versioned(&|buf| {
            ConsumerProtocolAssignment::default()
                .with_assigned_partitions(vec![TopicPartition::default()
                    .with_topic(TopicName(StrBytes::from_static_str("payments")))
                    .with_partitions(vec![0])])
                .encode(buf, 1)
                .unwrap()
        });
        let shares = vec![(a.member_id.clone(), assignment)];
        groups
            .sync("g", a.member_id.as_str().into(), 1, shares)
            .await
            .unwrap();
        assert_eq!(
            groups.describe("g").unwrap().topic().as_deref(),
            Some("payments")
        );
    }

    #[test]
    fn member_ids_keep_a_bounded_prefix_of_the_client_id() {
        assert_eq!(truncate("abc", 2), "ab");
        assert_eq!(truncate("é", 1), "");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
