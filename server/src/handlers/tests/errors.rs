//! Every way a request can fail that a test can provoke without faults, each answered
//! with the code the protocol document gives it.

use super::*;

/// Every way a request can fail that a test can provoke without faults, each answered
/// with the code the protocol document gives it (and, through [`TestBroker::call`],
/// only with codes the document lists for the operation).
#[tokio::test]
async fn each_failure_gets_the_documented_code() {
    let mut t = TestBroker::new();
    t.ok(create("t", 2, &[])).await;
    t.ok(create("q", 1, &[])).await;
    for (request, expected) in failures() {
        let op = request.op_code().name();
        assert_eq!(t.code(request).await, expected, "{op}");
    }
    // A queue group's own failures: a partition it does not have, a topic it does
    // not consume, an offset never delivered.
    t.ok(join("w", "q", GroupMode::Queue)).await;
    let ack = |topic: &str, partition, offset| {
        Request::Ack(AckRequest {
            group: "w".into(),
            topic: topic.into(),
            partition,
            offsets: vec![offset],
        })
    };
    assert_eq!(t.code(ack("q", 3, 0)).await, "invalid_partition");
    assert_eq!(t.code(ack("t", 0, 0)).await, "invalid_request");
    assert_eq!(t.code(ack("q", 0, 0)).await, "not_in_flight");
    let extend = Request::ExtendDeadline(ExtendDeadlineRequest {
        group: "w".into(),
        topic: "q".into(),
        partition: 0,
        offset: 0,
        extend_ms: 1,
    });
    assert_eq!(t.code(extend).await, "not_in_flight");
    // A stream group refuses a queue join, and a commit for a partition it does not
    // own or a topic it does not consume.
    let (member_id, generation, _) = member(t.ok(join("g", "t", GroupMode::Stream)).await);
    assert_eq!(
        t.code(join("g", "t", GroupMode::Queue)).await,
        "invalid_request"
    );
    let commit = |topic: &str, partition| {
        Request::CommitOffsets(CommitOffsetsRequest {
            group: "g".into(),
            member_id: member_id.clone(),
            generation,
            topic: topic.into(),
            offsets: vec![PartitionOffset {
                partition,
                offset: 0,
            }],
        })
    };
    assert_eq!(t.code(commit("t", 7)).await, "invalid_partition");
    assert_eq!(t.code(commit("q", 0)).await, "invalid_request");
}

/// Requests that fail, each with the code it must get, on a broker with a topic `t` of
/// two partitions and a topic `q` of one (a flat table).
fn failures() -> Vec<(Request, &'static str)> {
    let second_handshake = Request::Handshake(HandshakeRequest {
        versions: vec![1],
        client_name: "again".into(),
        auth: None,
    });
    vec![
        (second_handshake, "handshake_required"),
        (create("t", 1, &[]), "topic_exists"),
        (create("bad name", 1, &[]), "invalid_request"),
        (create("__mine", 1, &[]), "invalid_request"),
        (create("x", 5000, &[]), "invalid_config"),
        (create("x", 0, &[]), "invalid_config"),
        (create("x", 1, &[("colour", "blue")]), "invalid_config"),
        (
            create("x", 1, &[("dead_letter_topic", "a/b")]),
            "invalid_request",
        ),
        (
            create("x", 1, &[("dead_letter_topic", "__x")]),
            "invalid_request",
        ),
        (
            create("x", 1, &[("dead_letter_topic", "x")]),
            "invalid_request",
        ),
        (
            Request::DeleteTopic(DeleteTopicRequest {
                name: "nope".into(),
            }),
            "unknown_topic",
        ),
        (
            Request::DeleteTopic(DeleteTopicRequest {
                name: "__consumer_offsets".into(),
            }),
            "invalid_request",
        ),
        (
            Request::DeleteRecords(DeleteRecordsRequest {
                topic: "t".into(),
                partition: 9,
                before_offset: 1,
            }),
            "invalid_partition",
        ),
        (
            Request::DeleteRecords(DeleteRecordsRequest {
                topic: "__routes".into(),
                partition: 0,
                before_offset: 1,
            }),
            "invalid_request",
        ),
        (
            produce("nope", PartitionSelector::Any, &["x"]),
            "unknown_topic",
        ),
        (
            produce("t", PartitionSelector::Partition(2), &["x"]),
            "invalid_partition",
        ),
        (
            produce("__traces", PartitionSelector::Any, &["x"]),
            "invalid_request",
        ),
        (
            Request::DeleteGroup(protocol::ops::group_admin::DeleteGroupRequest {
                group: "nobody".into(),
            }),
            "unknown_group",
        ),
        (
            Request::PurgeGroup(protocol::ops::group_admin::PurgeGroupRequest {
                group: "nobody".into(),
            }),
            "unknown_group",
        ),
        (
            Request::ResetOffsets(protocol::ops::group_admin::ResetOffsetsRequest {
                group: "new".into(),
                topic: "t".into(),
                partition: Some(9),
                to: protocol::ops::group_admin::ResetTarget::Earliest,
            }),
            "invalid_partition",
        ),
        (
            Request::ResetOffsets(protocol::ops::group_admin::ResetOffsetsRequest {
                group: "new".into(),
                topic: "nope".into(),
                partition: None,
                to: protocol::ops::group_admin::ResetTarget::Latest,
            }),
            "unknown_topic",
        ),
        (fetch("t", 5, 0), "invalid_partition"),
        (fetch("t", 0, 99), "offset_out_of_range"),
        (
            Request::Subscribe(SubscribeRequest {
                topic: "t".into(),
                target: SubscribeTarget::Partition(0),
                start: StartPosition::Offset(50),
                credit_messages: 1,
                credit_bytes: 1,
            }),
            "offset_out_of_range",
        ),
        (
            Request::Subscribe(SubscribeRequest {
                topic: "t".into(),
                target: SubscribeTarget::Group {
                    group: "ghosts".into(),
                    member_id: "m".into(),
                },
                start: StartPosition::Earliest,
                credit_messages: 1,
                credit_bytes: 1,
            }),
            "unknown_group",
        ),
        (join("g", "nope", GroupMode::Stream), "unknown_topic"),
        (
            Request::JoinGroup(JoinGroupRequest {
                member_id: "stranger".into(),
                ..match join("g", "t", GroupMode::Stream) {
                    Request::JoinGroup(j) => j,
                    _ => unreachable!(),
                }
            }),
            "unknown_member",
        ),
        (
            Request::JoinGroup(JoinGroupRequest {
                session_timeout_ms: 1,
                ..match join("g", "t", GroupMode::Stream) {
                    Request::JoinGroup(j) => j,
                    _ => unreachable!(),
                }
            }),
            "invalid_request",
        ),
        (
            Request::JoinGroup(JoinGroupRequest {
                config: vec![ConfigEntry {
                    key: "segment_bytes".into(),
                    value: "1".into(),
                }],
                ..match join("w", "q", GroupMode::Queue) {
                    Request::JoinGroup(j) => j,
                    _ => unreachable!(),
                }
            }),
            "invalid_config",
        ),
        (
            Request::Heartbeat(HeartbeatRequest {
                group: "ghosts".into(),
                member_id: "m".into(),
                generation: 1,
            }),
            "unknown_group",
        ),
        (
            Request::LeaveGroup(LeaveGroupRequest {
                group: "ghosts".into(),
                member_id: "m".into(),
            }),
            "unknown_group",
        ),
        (
            Request::CommitOffsets(CommitOffsetsRequest {
                group: "ghosts".into(),
                member_id: "m".into(),
                generation: 1,
                topic: "t".into(),
                offsets: vec![],
            }),
            "unknown_group",
        ),
        (
            Request::FetchOffsets(FetchOffsetsRequest {
                group: "g".into(),
                topic: "nope".into(),
            }),
            "unknown_topic",
        ),
        (
            Request::DescribeGroup(DescribeGroupRequest {
                group: "ghosts".into(),
            }),
            "unknown_group",
        ),
        (
            Request::Ack(AckRequest {
                group: "ghosts".into(),
                topic: "q".into(),
                partition: 0,
                offsets: vec![0],
            }),
            "unknown_group",
        ),
        (
            Request::TopicStats(TopicStatsRequest {
                topic: "nope".into(),
            }),
            "unknown_topic",
        ),
        (
            Request::RegisterInstance(RegisterRequest {
                service: String::new(),
                instance_id: "i".into(),
                address: "a:1".into(),
                tags: vec![],
                ttl_ms: 5_000,
            }),
            "invalid_request",
        ),
        (
            Request::AddRoute(AddRouteRequest {
                pattern: "a..b".into(),
                topic: "t".into(),
                headers: vec![],
            }),
            "invalid_request",
        ),
        (
            Request::AddRoute(AddRouteRequest {
                pattern: "a".into(),
                topic: "nope".into(),
                headers: vec![],
            }),
            "unknown_topic",
        ),
        (
            Request::AddRoute(AddRouteRequest {
                pattern: "a".into(),
                topic: "__routes".into(),
                headers: vec![],
            }),
            "invalid_request",
        ),
    ]
}
