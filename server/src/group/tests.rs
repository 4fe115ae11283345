//! The coordinator on a manual clock: sessions, the two-phase handover, and which
//! commits it accepts while a partition changes hands.

use super::*;
use crate::clock::ManualClock;
use crate::tasks::Tasks;
use crate::topics::TopicConfig;
use crate::traces::Traces;

/// A coordinator over a topic `t` of `partitions` partitions, and its clock.
struct Fixture {
    groups: Groups,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn new(partitions: u32) -> Fixture {
        Self::with_config(partitions, GroupConfig::default()).await
    }

    async fn with_config(partitions: u32, group_config: GroupConfig) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let topics = Arc::new(Topics::open(dir.path()).unwrap());
        let config = TopicConfig {
            partitions,
            ..TopicConfig::internal_default()
        };
        topics.create("t", config, false).unwrap();
        let tasks = Arc::new(Tasks::new());
        tasks.stop(Duration::ZERO).await;
        let clock = Arc::new(ManualClock::new(1_000_000));
        let offsets = Arc::new(Offsets::open(&topics, clock.clone()).unwrap());
        let traces = Traces::open(&topics, &tasks, 0.0, clock.clone()).unwrap();
        let queues = Arc::new(
            Queues::open(
                topics.clone(),
                tasks,
                traces,
                clock.clone(),
                Default::default(),
                |_, _| Vec::new(),
            )
            .unwrap(),
        );
        let groups = Groups::new(group_config, topics, offsets, queues, clock.clone());
        Fixture {
            groups,
            clock,
            _dir: dir,
        }
    }

    /// Joins group `g` as a new member; returns its id and the answer's generation
    /// and partitions.
    async fn join(&self, session_timeout_ms: u32) -> (String, u32, Vec<u32>) {
        let joined = self
            .groups
            .join(join("g", "", session_timeout_ms))
            .await
            .unwrap();
        (joined.member_id, joined.generation, joined.partitions)
    }

    fn told(&self, member: &str) -> Vec<u32> {
        self.groups.assignment("g", member).unwrap().partitions
    }

    fn beat(&self, member: &str, applied_generation: u32) -> Assignment {
        self.groups
            .heartbeat("g", member, applied_generation)
            .unwrap()
    }

    async fn commit(
        &self,
        member: &str,
        generation: u32,
        partition: u32,
        offset: u64,
    ) -> Result<(), BrokerError> {
        self.groups
            .commit("g", member, generation, "t", &[(partition, offset)])
            .await
    }
}

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
    let f = Fixture::new(2).await;
    let (quick, _, _) = f.join(1_000).await;
    let (slow, generation, partitions) = f.join(3_000).await;
    assert!(partitions.is_empty(), "partition 1 is still quick's");
    f.clock.advance(900);
    f.beat(&quick, generation);
    assert_eq!(f.told(&slow), [1], "released by quick's heartbeat");
    assert_eq!(f.groups.expire_sessions(), 0);
    f.clock.advance(999);
    assert_eq!(f.groups.expire_sessions(), 0, "999 ms since its heartbeat");
    f.clock.advance(1);
    assert_eq!(f.groups.expire_sessions(), 1, "1000 ms without a heartbeat");
    assert!(matches!(
        f.groups.heartbeat("g", &quick, generation),
        Err(BrokerError::UnknownMember { .. })
    ));
    let left = f.beat(&slow, generation);
    assert_eq!(
        left.partitions,
        [0, 1],
        "the survivor takes every partition at once"
    );
    assert_eq!(left.generation, 3);
    f.clock.step_wall(-7_200_000);
    f.clock.advance(2_999);
    assert_eq!(
        f.groups.expire_sessions(),
        0,
        "a wall-clock step changes nothing"
    );
    f.clock.advance(1);
    assert_eq!(f.groups.expire_sessions(), 1);
}

#[tokio::test]
async fn a_revoked_partition_waits_for_the_heartbeat_that_applied_its_generation() {
    let f = Fixture::new(4).await;
    let (a, first, partitions) = f.join(10_000).await;
    assert_eq!(partitions, [0, 1, 2, 3]);
    let changes = f.groups.watch("g").unwrap();
    let (b, second, partitions) = f.join(10_000).await;
    assert!(partitions.is_empty(), "b waits for a");
    assert_eq!(f.told(&a), [0, 1], "a is told to stop reading 2 and 3");
    assert!(changes.has_changed().unwrap());

    // Heartbeats that have not applied the second generation release nothing, however
    // many there are, until the session timeout forces it.
    f.clock.advance(5_000);
    assert_eq!(f.beat(&a, first).partitions, [0, 1]);
    assert!(f.beat(&b, second).partitions.is_empty());
    assert_eq!(f.groups.expire_sessions(), 0);
    assert!(f.told(&b).is_empty());

    let mut changes = f.groups.watch("g").unwrap();
    changes.borrow_and_update();
    assert_eq!(f.beat(&a, second).partitions, [0, 1]);
    assert!(
        changes.has_changed().unwrap(),
        "b's subscription must learn of it"
    );
    assert_eq!(f.told(&b), [2, 3], "released: no new generation");
    assert_eq!(f.beat(&b, second).generation, second);
}

#[tokio::test]
async fn a_revocation_not_released_within_the_session_timeout_is_forced() {
    let f = Fixture::new(2).await;
    let (a, first, _) = f.join(1_000).await;
    let (b, _, _) = f.join(1_000).await;
    // a keeps heartbeating (so it stays a member) but never applies the change.
    for _ in 0..3 {
        f.clock.advance(300);
        f.beat(&a, first);
        f.beat(&b, first);
        assert_eq!(f.groups.expire_sessions(), 0);
        assert!(f.told(&b).is_empty());
    }
    f.clock.advance(100);
    assert_eq!(
        f.groups.expire_sessions(),
        0,
        "nobody expired; the revocation is forced"
    );
    assert_eq!(f.told(&b), [1]);
    assert_eq!(f.told(&a), [0], "a is still a member");
}

#[tokio::test]
async fn commits_follow_ownership_not_generations() {
    let f = Fixture::new(2).await;
    let (a, first, _) = f.join(10_000).await;
    let (b, second, _) = f.join(10_000).await;
    // Partition 1 is revoked from a and not yet released: a may commit it, in the
    // generation it had or the one that revoked it; b may not yet.
    f.commit(&a, first, 1, 5).await.unwrap();
    f.commit(&a, second, 1, 6).await.unwrap();
    assert!(matches!(
        f.commit(&b, second, 1, 1).await,
        Err(BrokerError::NotAssigned { partition: 1, .. })
    ));
    f.beat(&a, second);
    // Released: now it is b's, and a's commits are refused.
    assert!(matches!(
        f.commit(&a, first, 1, 7).await,
        Err(BrokerError::StaleGeneration { given, current }) if given == first && current == second
    ));
    assert!(matches!(
        f.commit(&a, second, 1, 7).await,
        Err(BrokerError::NotAssigned { partition: 1, .. })
    ));
    f.commit(&b, second, 1, 7).await.unwrap();
    f.commit(&a, first, 0, 3).await.unwrap();
    assert_eq!(f.groups.offsets().get("g", "t", 1), Some(7));
    // A removed member is fenced whatever it commits.
    f.groups.leave("g", &a).unwrap();
    assert!(matches!(
        f.commit(&a, second, 0, 4).await,
        Err(BrokerError::UnknownMember { .. })
    ));
    assert_eq!(f.groups.offsets().get("g", "t", 0), Some(3));
}

#[tokio::test]
async fn leaving_or_expiring_releases_everything_at_once() {
    let f = Fixture::new(4).await;
    let (a, _, _) = f.join(1_000).await;
    let (b, _, _) = f.join(10_000).await;
    assert!(
        f.told(&b).is_empty(),
        "2 and 3 are a's until it releases them"
    );
    f.groups.leave("g", &a).unwrap();
    assert_eq!(f.told(&b), [0, 1, 2, 3], "the leaver released them");

    let (c, _, _) = f.join(1_000).await;
    assert!(f.told(&c).is_empty(), "b holds c's share");
    f.clock.advance(1_000);
    f.beat(&b, 0);
    assert_eq!(f.groups.expire_sessions(), 1, "c never heartbeated");
    assert_eq!(f.told(&b), [0, 1, 2, 3]);
}

#[tokio::test]
async fn a_member_joining_or_leaving_moves_only_the_partitions_it_takes_or_leaves() {
    let f = Fixture::new(6).await;
    let mut members = Vec::new();
    for _ in 0..3 {
        members.push(f.join(10_000).await.0);
        let generation = f.groups.assignment("g", &members[0]).unwrap().generation;
        for m in &members {
            f.beat(m, generation);
        }
    }
    let before: Vec<Vec<u32>> = members.iter().map(|m| f.told(m)).collect();
    assert!(before.iter().all(|p| p.len() == 2), "{before:?}");
    f.groups.leave("g", &members[1]).unwrap();
    let after: Vec<Vec<u32>> = [&members[0], &members[2]]
        .iter()
        .map(|m| f.told(m))
        .collect();
    for (had, has) in [&before[0], &before[2]].iter().zip(&after) {
        assert!(had.iter().all(|p| has.contains(p)), "{had:?} -> {has:?}");
        assert_eq!(has.len(), 3);
    }
}

#[tokio::test]
async fn groups_written_before_the_registry_are_recorded_by_their_state() {
    let f = Fixture::new(1).await;
    // State as an older broker wrote it: commits, or queue state, and no record.
    f.groups
        .offsets
        .commit("old-stream", "t", &[(0, 4)])
        .await
        .unwrap();
    f.groups
        .queues
        .ensure_group("old-queue", "t", &[], false)
        .unwrap();
    f.groups
        .offsets
        .commit("both", "t", &[(0, 1)])
        .await
        .unwrap();
    f.groups
        .queues
        .ensure_group("both", "t", &[], false)
        .unwrap();
    assert!(f.groups.offsets.stored_groups().is_empty());

    f.groups.adopt_unrecorded().unwrap();
    let modes: Vec<(String, GroupMode)> = f
        .groups
        .offsets
        .stored_groups()
        .into_iter()
        .map(|(name, stored)| (name, stored.settings.mode))
        .collect();
    assert_eq!(
        modes,
        [
            ("both".to_string(), GroupMode::Queue),
            ("old-queue".to_string(), GroupMode::Queue),
            ("old-stream".to_string(), GroupMode::Stream),
        ],
        "queue state makes a queue group; commits alone a stream group"
    );
    let as_queue = JoinRequest {
        mode: GroupMode::Queue,
        ..join("old-stream", "", 1_000)
    };
    let refused = f.groups.join(as_queue).await.unwrap_err();
    assert_eq!(
        refused.to_string(),
        BrokerError::InvalidRequest(
            "group \"old-stream\" is a stream group; join it in that mode".into()
        )
        .to_string()
    );
    f.groups.join(join("old-stream", "", 1_000)).await.unwrap();
}

#[tokio::test]
async fn a_group_without_members_for_the_retention_is_deleted() {
    use protocol::ops::group_admin::ResetTarget;
    let config = GroupConfig {
        empty_group_retention_ms: 10_000,
        ..GroupConfig::default()
    };
    let f = Fixture::with_config(1, config).await;
    let none = |_: &str| false;
    // Stream groups with committed offsets and no members (a reset creates them),
    // and `g`, which has a member.
    for group in ["idle", "kafka"] {
        f.groups
            .reset_offsets(group, "t", None, ResetTarget::Earliest)
            .await
            .unwrap();
    }
    let (member, generation, _) = f.join(60_000).await;
    let kafka_live = |group: &str| group == "kafka";
    assert!(
        f.groups.delete_expired(&kafka_live).await.is_empty(),
        "first seen empty"
    );
    f.clock.advance(9_999);
    f.beat(&member, generation);
    assert!(
        f.groups.delete_expired(&kafka_live).await.is_empty(),
        "not yet"
    );
    f.clock.advance(1);
    f.beat(&member, generation);
    assert_eq!(f.groups.delete_expired(&kafka_live).await, ["idle"]);
    let listed: Vec<String> = f.groups.list().into_iter().map(|g| g.group).collect();
    assert_eq!(
        listed,
        ["g", "kafka"],
        "the group with members here and the one live in Kafka stay"
    );
    assert!(f.groups.describe("idle").is_err());

    // Once the Kafka members leave, that group's time starts then.
    assert!(f.groups.delete_expired(&none).await.is_empty());
    f.clock.advance(10_000);
    f.beat(&member, generation);
    assert_eq!(f.groups.delete_expired(&none).await, ["kafka"]);

    // A group that gains a member in between starts over when it is empty again.
    f.groups.leave("g", &member).unwrap();
    assert!(f.groups.delete_expired(&none).await.is_empty());
    f.clock.advance(6_000);
    let (again, generation, _) = f.join(60_000).await;
    assert!(f.groups.delete_expired(&none).await.is_empty());
    f.groups.leave("g", &again).unwrap();
    let _ = generation;
    // Emptiness is timed from the first sweep that finds it (sweeps come four times
    // per retention).
    assert!(f.groups.delete_expired(&none).await.is_empty());
    f.clock.advance(6_000);
    assert!(
        f.groups.delete_expired(&none).await.is_empty(),
        "6 s since empty again"
    );
    f.clock.advance(4_000);
    assert_eq!(f.groups.delete_expired(&none).await, ["g"]);
    assert!(f.groups.list().is_empty());
}

#[test]
fn sweeps_come_four_times_per_retention_within_bounds() {
    assert_eq!(sweep_interval(10_000), Duration::from_millis(2_500));
    assert_eq!(sweep_interval(1_000), Duration::from_secs(1));
    assert_eq!(sweep_interval(604_800_000), EMPTY_GROUP_CHECK_INTERVAL);
}
