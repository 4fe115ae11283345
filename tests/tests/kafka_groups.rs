//! Kafka consumer groups against the real brokerd: confluent-kafka (librdkafka),
//! kafka-python and aiokafka groups of two members rebalancing when one leaves, with each of the client-side
//! assignors, every record consumed exactly once, and committed offsets that the
//! native protocol reads and that survive a kill -9; and, on a raw socket, the
//! coordinator's answers a client acts on (unknown member, a name the native
//! protocol holds, commits without a member, OffsetFetch of everything).

mod kafka_support;

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedPartitions;
use kafka_protocol::messages::heartbeat_request::HeartbeatRequest;
use kafka_protocol::messages::heartbeat_response::HeartbeatResponse;
use kafka_protocol::messages::join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol};
use kafka_protocol::messages::join_group_response::JoinGroupResponse;
use kafka_protocol::messages::list_groups_request::ListGroupsRequest;
use kafka_protocol::messages::list_groups_response::ListGroupsResponse;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_commit_response::OffsetCommitResponse;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequest;
use kafka_protocol::messages::offset_fetch_response::OffsetFetchResponse;
use kafka_protocol::messages::sync_group_request::{SyncGroupRequest, SyncGroupRequestAssignment};
use kafka_protocol::messages::sync_group_response::SyncGroupResponse;
use kafka_protocol::messages::{ApiKey, ConsumerProtocolAssignment, GroupId, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::ResponseError as K;
use kafka_support::wire::call;
use kafka_support::{aiokafka_python, broker, confluent_python, kafka_python, native, run_python};
use protocol::ops::group::GroupStart;
use protocol::ops::group_admin::ResetTarget;
use tokio::net::TcpStream;

/// Records each group test produces before consuming.
const RECORDS: usize = 300;
/// Partitions of each test topic.
const PARTITIONS: u32 = 4;

fn parse(out: &str) -> serde_json::Value {
    let line = out.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The committed offsets the native protocol reads, by partition.
async fn natively_committed(client: &client::Client, group: &str, topic: &str) -> Vec<u64> {
    let mut offsets = client.fetch_offsets(group, topic).await.unwrap();
    offsets.sort_by_key(|o| o.partition);
    offsets.iter().map(|o| o.offset.unwrap_or(0)).collect()
}

/// What every group test checks of a run of two members: each read, together they
/// read every record once (the script fails on a second read), and the committed
/// offsets (the script's view and the native protocol's) are the end offsets.
async fn check_group_run(client: &client::Client, out: &str, topic: &str, group: &str) {
    let report = parse(out);
    assert_eq!(report["consumed"], RECORDS, "{out}");
    for member in ["member-1", "member-2"] {
        assert!(report["by_member"][member].as_u64().unwrap() > 0, "{out}");
    }
    let described = client.describe_topic(topic).await.unwrap();
    let ends: Vec<u64> = described.partitions.iter().map(|p| p.end_offset).collect();
    assert_eq!(ends.iter().sum::<u64>(), RECORDS as u64);
    let committed = natively_committed(client, group, topic).await;
    assert_eq!(committed, ends, "every record committed: {out}");
    for (p, end) in ends.iter().enumerate() {
        assert_eq!(report["committed"][p.to_string()], *end, "{out}");
    }
}

/// A group of two confluent-kafka consumers with `strategy` reads every record once
/// while one member leaves midway; the committed offsets are the end offsets, and
/// the native protocol reads the same numbers.
async fn rebalance_with(strategy: &str, then_restart: bool) {
    let Some(python) = confluent_python() else {
        return;
    };
    let mut broker = broker();
    let client = native(&broker).await;
    let topic = format!("orders-{strategy}");
    let group = format!("billing-{strategy}");
    client.create_topic(&topic, PARTITIONS, &[]).await.unwrap();
    let count = RECORDS.to_string();
    let out = run_python(
        &python,
        &broker,
        "consumer_group.py",
        &["rebalance", &topic, &group, strategy, &count],
    );
    check_group_run(&client, &out, &topic, &group).await;
    // member-2 ends up with every partition: all at once after member-1 left
    // (range, roundrobin), or member-1's added to its own (cooperative-sticky).
    let report = parse(&out);
    let mut taken: Vec<u64> = report["log"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e[0] == "member-2" && e[1] == "assign")
        .flat_map(|e| e[2].as_array().unwrap().iter().map(|p| p.as_u64().unwrap()))
        .collect();
    taken.sort_unstable();
    taken.dedup();
    assert_eq!(
        taken,
        (0..u64::from(PARTITIONS)).collect::<Vec<_>>(),
        "member-2 never took member-1's partitions: {out}"
    );
    let native_view = client.describe_group(&group).await.unwrap();
    assert_eq!(native_view.topic, topic);
    let lag: u64 = native_view.partitions.iter().map(|p| p.lag).sum();
    assert_eq!(lag, 0, "{native_view:?}");
    if !then_restart {
        return;
    }
    drop(client);
    broker.try_restart().unwrap();
    let new = 10usize;
    let out = run_python(
        &python,
        &broker,
        "consumer_group.py",
        &["resume", &topic, &group, strategy, &new.to_string()],
    );
    assert_eq!(parse(&out)["consumed"], new, "{out}");
    let client = native(&broker).await;
    let committed: u64 = natively_committed(&client, &group, &topic)
        .await
        .iter()
        .sum();
    assert_eq!(committed, (RECORDS + new) as u64);
}

#[tokio::test]
async fn a_range_group_rebalances_reads_once_and_resumes_after_a_kill_9() {
    rebalance_with("range", true).await;
}

#[tokio::test]
async fn a_roundrobin_group_rebalances_and_reads_every_record_once() {
    rebalance_with("roundrobin", false).await;
}

#[tokio::test]
async fn a_cooperative_sticky_group_rebalances_and_reads_every_record_once() {
    rebalance_with("cooperative-sticky", false).await;
}

/// Static membership with confluent-kafka: a member restarted under its
/// `group.instance.id` within its session gets its old partitions back and the
/// other member sees no rebalance; every record is read once and committed.
#[tokio::test]
async fn a_restarted_static_member_gets_its_partitions_back_without_a_rebalance() {
    let Some(python) = confluent_python() else {
        return;
    };
    let broker = broker();
    let client = native(&broker).await;
    let (topic, group) = ("static-orders", "static-billing");
    client.create_topic(topic, PARTITIONS, &[]).await.unwrap();
    let count = RECORDS.to_string();
    let out = run_python(
        &python,
        &broker,
        "consumer_group.py",
        &["static", topic, group, "range", &count],
    );
    check_group_run(&client, &out, topic, group).await;
    let held = parse(&out)["held"].as_array().unwrap().len();
    assert!(held > 0 && held < PARTITIONS as usize, "{out}");
}

/// kafka-python, a second client implementation (its own codecs and assignors), in
/// a group of two that rebalances when one leaves: every record once, and the
/// committed offsets are the end offsets natively.
#[tokio::test]
async fn a_kafka_python_group_rebalances_and_reads_every_record_once() {
    let Some(python) = kafka_python() else { return };
    let broker = broker();
    let client = native(&broker).await;
    script_group_run(
        &python,
        &broker,
        &client,
        "kafka_python_group.py",
        "invoices",
    )
    .await;
}

/// Runs a group `script` (`TOPIC GROUP COUNT`) on a new topic of [`PARTITIONS`] and
/// checks its run ([`check_group_run`]); its output.
async fn script_group_run(
    python: &std::path::PathBuf,
    broker: &integration_tests::Brokerd,
    client: &client::Client,
    script: &str,
    topic: &str,
) -> String {
    client.create_topic(topic, PARTITIONS, &[]).await.unwrap();
    let group = format!("{topic}-readers");
    let count = RECORDS.to_string();
    let out = run_python(python, broker, script, &[topic, &group, &count]);
    check_group_run(client, &out, topic, &group).await;
    out
}

/// aiokafka (asyncio, its own protocol code, group coordinator and idempotent
/// producer): keyed records with headers from an idempotent producer, then a
/// round-robin group of two that rebalances when one leaves: every record once with
/// its key, value and header, and the committed offsets are the end offsets natively.
#[tokio::test]
async fn an_aiokafka_group_rebalances_and_reads_every_record_once() {
    let Some(python) = aiokafka_python() else {
        return;
    };
    let broker = broker();
    let client = native(&broker).await;
    let out = script_group_run(&python, &broker, &client, "aiokafka_group.py", "shipments").await;
    // The idempotent producer asked InitProducerId for an id: ids start at 1.
    assert!(client.init_producer().await.unwrap() > 1, "{out}");
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn join_request(group: &str, member: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(text(member))
        .with_protocol_type(text("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(text("range"))
            .with_metadata(Bytes::from_static(b"meta"))])
}

fn commit_request(
    group: &str,
    member: &str,
    generation: i32,
    topic: &str,
    offset: i64,
) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(text(member))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(text(topic)))
            .with_partitions(vec![
                OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(offset),
                OffsetCommitRequestPartition::default()
                    .with_partition_index(9)
                    .with_committed_offset(offset),
            ])])
}

/// The metadata a Kafka client commits beside an offset (Flink, Spark and Kafka
/// Streams keep their own bookkeeping there) is answered back by OffsetFetch, kept
/// across a restart and cleared by a native commit; one over 4 KiB is refused alone.
#[tokio::test]
async fn committed_metadata_comes_back_survives_a_restart_and_is_bounded() {
    let mut broker = broker();
    let client = native(&broker).await;
    client.create_topic("journal", 2, &[]).await.unwrap();
    let with_metadata = |offset: i64, metadata: &str| {
        OffsetCommitRequestPartition::default()
            .with_committed_offset(offset)
            .with_committed_metadata(Some(text(metadata)))
    };
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(text("flink")))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(text(""))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(text("journal")))
            .with_partitions(vec![
                with_metadata(7, "checkpoint=42").with_partition_index(0),
                with_metadata(9, &"x".repeat(4097)).with_partition_index(1),
            ])]);
    let mut socket = TcpStream::connect(broker.kafka_addr()).await.unwrap();
    let mut body = call(&mut socket, ApiKey::OffsetCommit, 8, &commit).await;
    let answer = OffsetCommitResponse::decode(&mut body, 8).unwrap();
    let codes: Vec<i16> = answer.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect();
    assert_eq!(codes, [0, K::OffsetMetadataTooLarge.code()]);

    async fn fetched(socket: &mut TcpStream) -> Vec<(i64, String)> {
        let fetch = OffsetFetchRequest::default()
            .with_group_id(GroupId(text("flink")))
            .with_topics(None);
        let mut body = call(socket, ApiKey::OffsetFetch, 7, &fetch).await;
        let answer = OffsetFetchResponse::decode(&mut body, 7).unwrap();
        assert_eq!(answer.error_code, 0);
        answer.topics[0]
            .partitions
            .iter()
            .map(|p| {
                let metadata = p.metadata.as_deref().unwrap_or("null").to_owned();
                (p.committed_offset, metadata)
            })
            .collect()
    }
    assert_eq!(
        fetched(&mut socket).await,
        [(7, "checkpoint=42".to_string())]
    );
    drop((socket, client));
    broker.try_restart().unwrap();
    let mut socket = TcpStream::connect(broker.kafka_addr()).await.unwrap();
    assert_eq!(
        fetched(&mut socket).await,
        [(7, "checkpoint=42".to_string())]
    );

    // A native commit (here an admin's reset) says nothing of metadata: it clears
    // it, as a Kafka commit without metadata would.
    let client = native(&broker).await;
    client
        .reset_offsets("flink", "journal", Some(0), ResetTarget::Earliest)
        .await
        .unwrap();
    assert_eq!(fetched(&mut socket).await, [(0, String::new())]);
}

#[tokio::test]
async fn the_coordinator_answers_what_clients_act_on() {
    let broker = broker();
    let client = native(&broker).await;
    client.create_topic("ledger", 2, &[]).await.unwrap();
    let mut socket = TcpStream::connect(broker.kafka_addr()).await.unwrap();

    // A heartbeat of a member the coordinator does not know.
    let hb = HeartbeatRequest::default()
        .with_group_id(GroupId(text("nobody")))
        .with_generation_id(1)
        .with_member_id(text("ghost"));
    let mut body = call(&mut socket, ApiKey::Heartbeat, 4, &hb).await;
    let answer = HeartbeatResponse::decode(&mut body, 4).unwrap();
    assert_eq!(answer.error_code, K::UnknownMemberId.code());

    // A commit naming no member, to a group without members, is stored (what
    // tools and assign() consumers do); an unknown partition is refused alone.
    let mut body = call(
        &mut socket,
        ApiKey::OffsetCommit,
        8,
        &commit_request("tools", "", -1, "ledger", 5),
    )
    .await;
    let answer = OffsetCommitResponse::decode(&mut body, 8).unwrap();
    let codes: Vec<i16> = answer.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect();
    assert_eq!(codes, vec![0, K::UnknownTopicOrPartition.code()]);
    let committed = client.fetch_offsets("tools", "ledger").await.unwrap();
    assert!(
        committed
            .iter()
            .any(|o| o.partition == 0 && o.offset == Some(5)),
        "{committed:?}"
    );

    // OffsetFetch with no topics named returns everything the group committed.
    let fetch = OffsetFetchRequest::default()
        .with_group_id(GroupId(text("tools")))
        .with_topics(None);
    let mut body = call(&mut socket, ApiKey::OffsetFetch, 7, &fetch).await;
    let answer = OffsetFetchResponse::decode(&mut body, 7).unwrap();
    assert_eq!(answer.error_code, 0);
    assert_eq!(answer.topics.len(), 1);
    assert_eq!(answer.topics[0].name.0.as_str(), "ledger");
    let p0 = &answer.topics[0].partitions[0];
    assert_eq!((p0.partition_index, p0.committed_offset), (0, 5));

    // A Kafka member joins alone and leads generation 1.
    let mut body = call(
        &mut socket,
        ApiKey::JoinGroup,
        5,
        &join_request("payments", ""),
    )
    .await;
    let joined = JoinGroupResponse::decode(&mut body, 5).unwrap();
    assert_eq!(joined.error_code, 0);
    assert_eq!(joined.generation_id, 1);
    assert_eq!(joined.leader, joined.member_id);
    assert_eq!(joined.members.len(), 1);
    // Its SyncGroup carries the assignment (the consumer protocol's, as a client's
    // assignor writes it); then it commits, and the native DescribeGroup shows it
    // as a member owning what it was assigned.
    let mut assignment = bytes::BytesMut::new();
    bytes::BufMut::put_i16(&mut assignment, 1);
    ConsumerProtocolAssignment::default()
        .with_assigned_partitions(vec![AssignedPartitions::default()
            .with_topic(TopicName(text("ledger")))
            .with_partitions(vec![0, 1])])
        .encode(&mut assignment, 1)
        .unwrap();
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(text("payments")))
        .with_generation_id(1)
        .with_member_id(joined.member_id.clone())
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(joined.member_id.clone())
            .with_assignment(assignment.freeze())]);
    let mut body = call(&mut socket, ApiKey::SyncGroup, 3, &sync).await;
    let synced = SyncGroupResponse::decode(&mut body, 3).unwrap();
    assert_eq!(synced.error_code, 0);
    // Before its first commit the group is in no registry, but the native
    // ListGroups and DescribeGroup show it live, reading its assigned topic.
    let listed = client.list_groups().await.unwrap();
    let payments = listed.iter().find(|g| g.group == "payments");
    let payments = payments.unwrap_or_else(|| panic!("{listed:?}"));
    assert_eq!(
        (
            payments.topic.as_str(),
            payments.members,
            payments.generation
        ),
        ("ledger", 1, 1)
    );
    let native_view = client.describe_group("payments").await.unwrap();
    assert_eq!(
        (native_view.topic.as_str(), native_view.generation),
        ("ledger", 1)
    );
    assert_eq!(native_view.members.len(), 1, "{native_view:?}");
    assert_eq!(native_view.members[0].partitions, vec![0, 1]);
    assert!(native_view
        .partitions
        .iter()
        .all(|p| p.committed_offset.is_none()));
    let commit = commit_request("payments", &joined.member_id, 1, "ledger", 3);
    let mut body = call(&mut socket, ApiKey::OffsetCommit, 8, &commit).await;
    let answer = OffsetCommitResponse::decode(&mut body, 8).unwrap();
    let codes: Vec<i16> = answer.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect();
    assert_eq!(codes, vec![0, K::UnknownTopicOrPartition.code()]);
    let native_view = client.describe_group("payments").await.unwrap();
    assert_eq!(native_view.topic, "ledger");
    assert_eq!(native_view.members.len(), 1, "{native_view:?}");
    assert_eq!(native_view.members[0].member_id, joined.member_id.as_str());
    assert_eq!(native_view.members[0].partitions, vec![0, 1]);
    assert_eq!(native_view.partitions[0].committed_offset, Some(3));
    // A commit at another generation is refused.
    let stale = commit_request("payments", &joined.member_id, 7, "ledger", 1);
    let mut body = call(&mut socket, ApiKey::OffsetCommit, 8, &stale).await;
    let answer = OffsetCommitResponse::decode(&mut body, 8).unwrap();
    assert!(answer.topics[0]
        .partitions
        .iter()
        .all(|p| p.error_code == K::IllegalGeneration.code()));

    // A native member cannot join a group with Kafka members ...
    let refused = client
        .join_group(
            "payments",
            "ledger",
            "",
            Duration::from_secs(10),
            GroupStart::Earliest,
        )
        .await;
    assert!(refused.is_err(), "{refused:?}");
    // ... nor a Kafka member a group with native ones.
    client
        .join_group(
            "native-group",
            "ledger",
            "",
            Duration::from_secs(10),
            GroupStart::Earliest,
        )
        .await
        .unwrap();
    let mut body = call(
        &mut socket,
        ApiKey::JoinGroup,
        5,
        &join_request("native-group", ""),
    )
    .await;
    let answer = JoinGroupResponse::decode(&mut body, 5).unwrap();
    assert_eq!(answer.error_code, K::InconsistentGroupProtocol.code());

    // ListGroups shows both kinds.
    let mut body = call(
        &mut socket,
        ApiKey::ListGroups,
        4,
        &ListGroupsRequest::default(),
    )
    .await;
    let listed = ListGroupsResponse::decode(&mut body, 4).unwrap();
    let names: Vec<(&str, &str)> = listed
        .groups
        .iter()
        .map(|g| (g.group_id.0.as_str(), g.group_state.as_str()))
        .collect();
    assert!(names.contains(&("payments", "Stable")), "{names:?}");
    assert!(names.contains(&("native-group", "Stable")), "{names:?}");
    assert!(names.contains(&("tools", "Empty")), "{names:?}");
}
