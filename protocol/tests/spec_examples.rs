//! Checks the worked examples in `docs/protocol.md` against this code.
//!
//! Each example in the spec is a fenced ```` ```hex ```` block preceded by a line
//! `Example: <name>`. For every block this test decodes the bytes as one whole frame,
//! re-encodes the decoded message and requires the same bytes back, byte for byte; it
//! also requires the message to equal the canonical example of that name below, and
//! every operation code to have an example.
//!
//! The hex is generated, not hand-written. To print every block after changing an
//! example or the encoding:
//!
//! ```text
//! cargo test -p protocol --test spec_examples -- --ignored --nocapture print_examples
//! ```

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use protocol::batch::{set_base_offset, BatchBuilder};
use protocol::ops::ack::{AckRequest, ExtendDeadlineRequest, NackRequest};
use protocol::ops::fetch::{
    FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse, PartitionTime,
};
use protocol::ops::group::*;
use protocol::ops::group_admin::*;
use protocol::ops::handshake::{Credentials, HandshakeRequest, HandshakeResponse};
use protocol::ops::offsets::*;
use protocol::ops::produce::{
    AckLevel, InitProducerResponse, PartitionSelector, ProduceRequest, ProduceResponse,
    ProducerSequence,
};
use protocol::ops::registry::*;
use protocol::ops::routes::*;
use protocol::ops::security::*;
use protocol::ops::stats::*;
use protocol::ops::subscribe::*;
use protocol::ops::topic::*;
use protocol::ops::Empty;
use protocol::{ErrorCode, ErrorResponse, FrameDecoder, Message, OpCode, Request, Response};

const SPEC: &str = include_str!("../../docs/protocol.md");
const HEX_LINE_BYTES: usize = 16;

/// A one-record batch as a producer sends it (base offset 0).
fn produced_batch() -> Bytes {
    let mut builder = BatchBuilder::new();
    builder
        .push(1_700_000_000_000, Some(b"k"), Some(b"hello"), &[])
        .expect("tiny record");
    builder.finish()
}

/// The same batch as the log stores it, at offset 42.
fn stored_batch() -> Bytes {
    let mut stored = BytesMut::from(&produced_batch()[..]);
    set_base_offset(&mut stored, 42);
    stored.freeze()
}

fn req(correlation_id: u32, request: Request) -> Message {
    Message::Request {
        correlation_id,
        request,
    }
}

fn resp(correlation_id: u32, response: Response) -> Message {
    Message::Response {
        correlation_id,
        response,
    }
}

/// Every example in the spec, by name, in the order the spec shows them.
fn examples() -> Vec<(&'static str, Message)> {
    use Request as Q;
    use Response as R;
    vec![
        (
            "Handshake request",
            req(
                1,
                Q::Handshake(HandshakeRequest {
                    versions: vec![1],
                    client_name: "cli/0.1".into(),
                    auth: Some(Credentials {
                        mechanism: "TOKEN".into(),
                        credentials: Bytes::from_static(b"s3cr3t"),
                    }),
                }),
            ),
        ),
        (
            "Handshake response",
            resp(
                1,
                R::Handshake(HandshakeResponse {
                    version: 1,
                    server_name: "brokerd/0.1".into(),
                    max_frame_bytes: protocol::MAX_FRAME_BYTES as u32,
                }),
            ),
        ),
        (
            "Handshake error response",
            Message::Error {
                correlation_id: 1,
                op: OpCode::Handshake.as_u16(),
                error: ErrorResponse {
                    code: ErrorCode::UnsupportedVersion,
                    message: "server speaks [1]".into(),
                },
            },
        ),
        (
            "CreateTopic request",
            req(
                2,
                Q::CreateTopic(CreateTopicRequest {
                    name: "orders".into(),
                    partitions: 3,
                    config: vec![ConfigEntry {
                        key: "retention_ms".into(),
                        value: "86400000".into(),
                    }],
                }),
            ),
        ),
        ("CreateTopic response", resp(2, R::CreateTopic(Empty))),
        (
            "CreateTopic error response",
            Message::Error {
                correlation_id: 2,
                op: OpCode::CreateTopic.as_u16(),
                error: ErrorResponse {
                    code: ErrorCode::TopicExists,
                    message: "topic orders exists".into(),
                },
            },
        ),
        (
            "DeleteTopic request",
            req(
                3,
                Q::DeleteTopic(DeleteTopicRequest {
                    name: "orders".into(),
                }),
            ),
        ),
        ("DeleteTopic response", resp(3, R::DeleteTopic(Empty))),
        (
            "ListTopics request",
            req(
                4,
                Q::ListTopics(ListTopicsRequest {
                    include_internal: false,
                }),
            ),
        ),
        (
            "ListTopics response",
            resp(
                4,
                R::ListTopics(ListTopicsResponse {
                    topics: vec![TopicSummary {
                        name: "orders".into(),
                        partitions: 3,
                        messages: 1000,
                        size_bytes: 65536,
                        internal: false,
                    }],
                }),
            ),
        ),
        (
            "DescribeTopic request",
            req(
                5,
                Q::DescribeTopic(DescribeTopicRequest {
                    name: "orders".into(),
                }),
            ),
        ),
        (
            "DescribeTopic response",
            resp(
                5,
                R::DescribeTopic(DescribeTopicResponse {
                    name: "orders".into(),
                    internal: false,
                    config: vec![ConfigEntry {
                        key: "retention_ms".into(),
                        value: "86400000".into(),
                    }],
                    partitions: vec![PartitionInfo {
                        partition: 0,
                        start_offset: 0,
                        end_offset: 43,
                        size_bytes: 4096,
                    }],
                }),
            ),
        ),
        (
            "DeleteRecords request",
            req(
                14,
                Q::DeleteRecords(DeleteRecordsRequest {
                    topic: "orders.dlq".into(),
                    partition: 0,
                    before_offset: 7,
                }),
            ),
        ),
        (
            "DeleteRecords response",
            resp(
                14,
                R::DeleteRecords(DeleteRecordsResponse {
                    log_start_offset: 7,
                }),
            ),
        ),
        (
            "AlterTopic request",
            req(
                40,
                Q::AlterTopic(AlterTopicRequest {
                    name: "orders".into(),
                    config: vec![ConfigEntry {
                        key: "retention_ms".into(),
                        value: "3600000".into(),
                    }],
                }),
            ),
        ),
        ("AlterTopic response", resp(40, R::AlterTopic(Empty))),
        (
            "CreatePartitions request",
            req(
                41,
                Q::CreatePartitions(CreatePartitionsRequest {
                    name: "orders".into(),
                    count: 6,
                }),
            ),
        ),
        (
            "CreatePartitions response",
            resp(41, R::CreatePartitions(Empty)),
        ),
        (
            "Produce request",
            req(
                6,
                Q::Produce(ProduceRequest {
                    topic: "orders".into(),
                    partition: PartitionSelector::Key(Bytes::from_static(b"k")),
                    ack: AckLevel::Durable,
                    timeout_ms: 5000,
                    producer: None,
                    batch: produced_batch(),
                }),
            ),
        ),
        (
            "Produce response",
            resp(
                6,
                R::Produce(ProduceResponse {
                    partition: 1,
                    base_offset: Some(42),
                    duplicate: false,
                }),
            ),
        ),
        (
            "Produce request (version 2)",
            req(
                6,
                Q::Produce(ProduceRequest {
                    topic: "orders".into(),
                    partition: PartitionSelector::Partition(1),
                    ack: AckLevel::Durable,
                    timeout_ms: 5000,
                    producer: Some(ProducerSequence {
                        producer_id: 1025,
                        sequence: 7,
                    }),
                    batch: produced_batch(),
                }),
            ),
        ),
        (
            "Produce response (version 2)",
            resp(
                6,
                R::Produce(ProduceResponse {
                    partition: 1,
                    base_offset: Some(42),
                    duplicate: true,
                }),
            ),
        ),
        ("InitProducer request", req(23, Q::InitProducer(Empty))),
        (
            "InitProducer response",
            resp(
                23,
                R::InitProducer(InitProducerResponse { producer_id: 1025 }),
            ),
        ),
        (
            "Fetch request",
            req(
                7,
                Q::Fetch(FetchRequest {
                    topic: "orders".into(),
                    partition: 1,
                    offset: 42,
                    max_bytes: 1 << 20,
                    max_wait_ms: 500,
                }),
            ),
        ),
        (
            "Fetch response",
            resp(
                7,
                R::Fetch(FetchResponse {
                    high_watermark: 43,
                    log_start_offset: 0,
                    batches: stored_batch(),
                }),
            ),
        ),
        (
            "ListOffsets request",
            req(
                15,
                Q::ListOffsets(ListOffsetsRequest {
                    topic: "orders".into(),
                    partitions: vec![PartitionTime {
                        partition: 1,
                        timestamp_ms: 1_796_119_200_000,
                    }],
                }),
            ),
        ),
        (
            "ListOffsets response",
            resp(
                15,
                R::ListOffsets(ListOffsetsResponse {
                    offsets: vec![PartitionOffset {
                        partition: 1,
                        offset: 42,
                    }],
                }),
            ),
        ),
        (
            "Subscribe request",
            req(
                8,
                Q::Subscribe(SubscribeRequest {
                    topic: "orders".into(),
                    target: SubscribeTarget::Partition(1),
                    start: StartPosition::Offset(42),
                    credit_messages: 100,
                    credit_bytes: 1 << 20,
                }),
            ),
        ),
        (
            "Subscribe by time request (version 2)",
            req(
                8,
                Q::Subscribe(SubscribeRequest {
                    topic: "orders".into(),
                    target: SubscribeTarget::Partition(1),
                    start: StartPosition::Timestamp(1_796_119_200_000),
                    credit_messages: 100,
                    credit_bytes: 1 << 20,
                }),
            ),
        ),
        (
            "Subscribe response",
            resp(8, R::Subscribe(SubscribeResponse { subscription_id: 5 })),
        ),
        (
            "Credit request",
            req(
                9,
                Q::Credit(CreditRequest {
                    subscription_id: 5,
                    messages: 50,
                    bytes: 65536,
                }),
            ),
        ),
        ("Credit response", resp(9, R::Credit(Empty))),
        (
            "Unsubscribe request",
            req(
                10,
                Q::Unsubscribe(UnsubscribeRequest { subscription_id: 5 }),
            ),
        ),
        ("Unsubscribe response", resp(10, R::Unsubscribe(Empty))),
        (
            "Delivery push",
            Message::Push(Delivery {
                subscription_id: 5,
                partition: 1,
                from_offset: 42,
                to_offset: 43,
                attempt: 1,
                batches: stored_batch(),
            }),
        ),
        (
            "JoinGroup request",
            req(
                11,
                Q::JoinGroup(JoinGroupRequest {
                    group: "billing".into(),
                    topic: "orders".into(),
                    member_id: String::new(),
                    session_timeout_ms: 10_000,
                    mode: GroupMode::Queue,
                    start: GroupStart::Earliest,
                    config: vec![ConfigEntry {
                        key: "max_delivery_attempts".into(),
                        value: "3".into(),
                    }],
                }),
            ),
        ),
        (
            "JoinGroup response",
            resp(
                11,
                R::JoinGroup(JoinGroupResponse {
                    member_id: "m-1".into(),
                    generation: 4,
                    partitions: vec![0, 2],
                }),
            ),
        ),
        (
            "Heartbeat request",
            req(
                12,
                Q::Heartbeat(HeartbeatRequest {
                    group: "billing".into(),
                    member_id: "m-1".into(),
                    generation: 4,
                }),
            ),
        ),
        (
            "Heartbeat response",
            resp(
                12,
                R::Heartbeat(HeartbeatResponse {
                    generation: 5,
                    partitions: vec![0],
                }),
            ),
        ),
        (
            "LeaveGroup request",
            req(
                13,
                Q::LeaveGroup(LeaveGroupRequest {
                    group: "billing".into(),
                    member_id: "m-1".into(),
                }),
            ),
        ),
        ("LeaveGroup response", resp(13, R::LeaveGroup(Empty))),
        (
            "CommitOffsets request",
            req(
                14,
                Q::CommitOffsets(CommitOffsetsRequest {
                    group: "billing".into(),
                    member_id: "m-1".into(),
                    generation: 5,
                    topic: "orders".into(),
                    offsets: vec![PartitionOffset {
                        partition: 0,
                        offset: 43,
                    }],
                }),
            ),
        ),
        ("CommitOffsets response", resp(14, R::CommitOffsets(Empty))),
        (
            "CommitOffsets error response",
            Message::Error {
                correlation_id: 14,
                op: OpCode::CommitOffsets.as_u16(),
                error: ErrorResponse {
                    code: ErrorCode::StaleGeneration,
                    message: "generation 5 < 6; heartbeat".into(),
                },
            },
        ),
        (
            "FetchOffsets request",
            req(
                15,
                Q::FetchOffsets(FetchOffsetsRequest {
                    group: "billing".into(),
                    topic: "orders".into(),
                }),
            ),
        ),
        (
            "FetchOffsets response",
            resp(
                15,
                R::FetchOffsets(FetchOffsetsResponse {
                    offsets: vec![
                        CommittedOffset {
                            partition: 0,
                            offset: Some(43),
                        },
                        CommittedOffset {
                            partition: 1,
                            offset: None,
                        },
                    ],
                }),
            ),
        ),
        ("ListGroups request", req(16, Q::ListGroups(Empty))),
        (
            "ListGroups response",
            resp(
                16,
                R::ListGroups(ListGroupsResponse {
                    groups: vec![GroupSummary {
                        group: "billing".into(),
                        topic: "orders".into(),
                        mode: GroupMode::Stream,
                        members: 2,
                        generation: 5,
                    }],
                }),
            ),
        ),
        (
            "DescribeGroup request",
            req(
                17,
                Q::DescribeGroup(DescribeGroupRequest {
                    group: "jobs".into(),
                }),
            ),
        ),
        (
            "DescribeGroup response",
            resp(
                17,
                R::DescribeGroup(DescribeGroupResponse {
                    group: "jobs".into(),
                    topic: "tasks".into(),
                    mode: GroupMode::Queue,
                    generation: 1,
                    members: vec![MemberInfo {
                        member_id: "m-1".into(),
                        client_name: "w".into(),
                        session_timeout_ms: 10_000,
                        partitions: vec![0],
                    }],
                    partitions: vec![GroupPartitionInfo {
                        partition: 0,
                        committed_offset: Some(10),
                        end_offset: 15,
                        lag: 5,
                        queue: Some(QueueCounts {
                            in_flight: 3,
                            waiting_retry: 1,
                            dead_lettered: 0,
                        }),
                    }],
                }),
            ),
        ),
        (
            "DeleteGroup request",
            req(
                40,
                Q::DeleteGroup(DeleteGroupRequest {
                    group: "billing".into(),
                }),
            ),
        ),
        ("DeleteGroup response", resp(40, R::DeleteGroup(Empty))),
        (
            "ResetOffsets request",
            req(
                41,
                Q::ResetOffsets(ResetOffsetsRequest {
                    group: "billing".into(),
                    topic: String::new(),
                    partition: Some(1),
                    to: ResetTarget::Timestamp(1_796_119_200_000),
                }),
            ),
        ),
        (
            "ResetOffsets response",
            resp(
                41,
                R::ResetOffsets(ResetOffsetsResponse {
                    topic: "orders".into(),
                    offsets: vec![ResetOffset {
                        partition: 1,
                        offset: 42,
                    }],
                }),
            ),
        ),
        (
            "PurgeGroup request",
            req(
                42,
                Q::PurgeGroup(PurgeGroupRequest {
                    group: "jobs".into(),
                }),
            ),
        ),
        (
            "PurgeGroup response",
            resp(42, R::PurgeGroup(PurgeGroupResponse { dropped: 7 })),
        ),
        (
            "Ack request",
            req(
                18,
                Q::Ack(AckRequest {
                    group: "jobs".into(),
                    topic: "tasks".into(),
                    partition: 0,
                    offsets: vec![10, 11],
                }),
            ),
        ),
        ("Ack response", resp(18, R::Ack(Empty))),
        (
            "Nack request",
            req(
                19,
                Q::Nack(NackRequest {
                    group: "jobs".into(),
                    topic: "tasks".into(),
                    partition: 0,
                    offset: 12,
                    reason: "db down".into(),
                    redelivery_delay_ms: Some(1000),
                }),
            ),
        ),
        ("Nack response", resp(19, R::Nack(Empty))),
        (
            "ExtendDeadline request",
            req(
                20,
                Q::ExtendDeadline(ExtendDeadlineRequest {
                    group: "jobs".into(),
                    topic: "tasks".into(),
                    partition: 0,
                    offset: 13,
                    extend_ms: 30_000,
                }),
            ),
        ),
        (
            "ExtendDeadline response",
            resp(20, R::ExtendDeadline(Empty)),
        ),
        ("ServerStats request", req(21, Q::ServerStats(Empty))),
        (
            "ServerStats response",
            resp(
                21,
                R::ServerStats(ServerStatsResponse {
                    uptime_ms: 60_000,
                    connections: 2,
                    topics: vec![TopicCounters {
                        topic: "orders".into(),
                        counters: Counters {
                            messages_total: 1000,
                            bytes_total: 65536,
                            messages_per_sec: 16,
                            bytes_per_sec: 1092,
                        },
                    }],
                }),
            ),
        ),
        (
            "TopicStats request",
            req(
                22,
                Q::TopicStats(TopicStatsRequest {
                    topic: "orders".into(),
                }),
            ),
        ),
        (
            "TopicStats response",
            resp(
                22,
                R::TopicStats(TopicStatsResponse {
                    topic: "orders".into(),
                    total: Counters {
                        messages_total: 1000,
                        bytes_total: 65536,
                        messages_per_sec: 16,
                        bytes_per_sec: 1092,
                    },
                    partitions: vec![PartitionCounters {
                        partition: 0,
                        counters: Counters {
                            messages_total: 1000,
                            bytes_total: 65536,
                            messages_per_sec: 16,
                            bytes_per_sec: 1092,
                        },
                    }],
                }),
            ),
        ),
        (
            "RegisterInstance request",
            req(
                23,
                Q::RegisterInstance(RegisterRequest {
                    service: "billing".into(),
                    instance_id: "b-1".into(),
                    address: "10.0.0.7:8080".into(),
                    tags: vec![ConfigEntry {
                        key: "zone".into(),
                        value: "a".into(),
                    }],
                    ttl_ms: 10_000,
                }),
            ),
        ),
        (
            "RegisterInstance response",
            resp(23, R::RegisterInstance(Empty)),
        ),
        (
            "InstanceHeartbeat request",
            req(
                24,
                Q::InstanceHeartbeat(InstanceRequest {
                    service: "billing".into(),
                    instance_id: "b-1".into(),
                }),
            ),
        ),
        (
            "InstanceHeartbeat response",
            resp(24, R::InstanceHeartbeat(Empty)),
        ),
        (
            "DeregisterInstance request",
            req(
                25,
                Q::DeregisterInstance(InstanceRequest {
                    service: "billing".into(),
                    instance_id: "b-1".into(),
                }),
            ),
        ),
        (
            "DeregisterInstance response",
            resp(25, R::DeregisterInstance(Empty)),
        ),
        ("ListServices request", req(26, Q::ListServices(Empty))),
        (
            "ListServices response",
            resp(
                26,
                R::ListServices(ListServicesResponse {
                    services: vec![ServiceSummary {
                        service: "billing".into(),
                        instances: 2,
                    }],
                }),
            ),
        ),
        (
            "DescribeService request",
            req(
                27,
                Q::DescribeService(DescribeServiceRequest {
                    service: "billing".into(),
                    tags: vec![],
                }),
            ),
        ),
        (
            "DescribeService response",
            resp(
                27,
                R::DescribeService(DescribeServiceResponse {
                    instances: vec![InstanceInfo {
                        instance_id: "b-1".into(),
                        address: "10.0.0.7:8080".into(),
                        tags: vec![],
                        ttl_ms: 10_000,
                        since_heartbeat_ms: 1200,
                    }],
                }),
            ),
        ),
        (
            "AddRoute request",
            req(
                28,
                Q::AddRoute(AddRouteRequest {
                    pattern: "orders.*.eu".into(),
                    topic: "eu-orders".into(),
                    headers: vec![ConfigEntry {
                        key: "priority".into(),
                        value: "high".into(),
                    }],
                }),
            ),
        ),
        (
            "AddRoute response",
            resp(28, R::AddRoute(AddRouteResponse { route_id: 1 })),
        ),
        (
            "DeleteRoute request",
            req(29, Q::DeleteRoute(DeleteRouteRequest { route_id: 1 })),
        ),
        ("DeleteRoute response", resp(29, R::DeleteRoute(Empty))),
        ("ListRoutes request", req(30, Q::ListRoutes(Empty))),
        (
            "ListRoutes response",
            resp(
                30,
                R::ListRoutes(ListRoutesResponse {
                    routes: vec![RouteInfo {
                        route_id: 1,
                        pattern: "orders.#".into(),
                        topic: "all-orders".into(),
                        headers: vec![],
                    }],
                }),
            ),
        ),
        (
            "Publish request",
            req(
                31,
                Q::Publish(PublishRequest {
                    routing_key: "orders.created.eu".into(),
                    headers: vec![],
                    ack: AckLevel::Durable,
                    timeout_ms: 5000,
                    batch: produced_batch(),
                }),
            ),
        ),
        (
            "Publish response",
            resp(
                31,
                R::Publish(PublishResponse {
                    routed: vec![Routed {
                        topic: "all-orders".into(),
                        partition: 0,
                        base_offset: Some(7),
                    }],
                }),
            ),
        ),
        (
            "Authenticate request",
            req(
                2,
                Q::Authenticate(AuthenticateRequest {
                    mechanism: "SCRAM-SHA-256".into(),
                    payload: Bytes::from_static(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"),
                }),
            ),
        ),
        (
            "Authenticate response",
            resp(
                2,
                R::Authenticate(AuthenticateResponse {
                    payload: Bytes::from_static(
                        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                          s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                    ),
                    complete: false,
                    principal: String::new(),
                }),
            ),
        ),
        ("WhoAmI request", req(3, Q::WhoAmI(Empty))),
        (
            "WhoAmI response",
            resp(
                3,
                R::WhoAmI(WhoAmIResponse {
                    principal: "alice".into(),
                    authenticated_by: "SCRAM-SHA-256".into(),
                }),
            ),
        ),
        (
            "CreateAcls request",
            req(
                40,
                Q::CreateAcls(CreateAclsRequest {
                    bindings: vec![AclBinding {
                        principal: "alice".into(),
                        resource: ResourceType::Topic,
                        pattern: PatternType::Prefix,
                        name: "orders.".into(),
                        operation: Operation::Write,
                        permission: Permission::Allow,
                    }],
                }),
            ),
        ),
        ("CreateAcls response", resp(40, R::CreateAcls(Empty))),
        (
            "DeleteAcls request",
            req(
                41,
                Q::DeleteAcls(AclFilterRequest {
                    filter: AclFilter {
                        principal: Some("alice".into()),
                        ..AclFilter::default()
                    },
                }),
            ),
        ),
        (
            "DeleteAcls response",
            resp(
                41,
                R::DeleteAcls(AclsResponse {
                    bindings: vec![AclBinding {
                        principal: "alice".into(),
                        resource: ResourceType::Topic,
                        pattern: PatternType::Prefix,
                        name: "orders.".into(),
                        operation: Operation::Write,
                        permission: Permission::Allow,
                    }],
                }),
            ),
        ),
        (
            "ListAcls request",
            req(
                42,
                Q::ListAcls(AclFilterRequest {
                    filter: AclFilter {
                        resource: Some(ResourceType::Group),
                        ..AclFilter::default()
                    },
                }),
            ),
        ),
        (
            "ListAcls response",
            resp(
                42,
                R::ListAcls(AclsResponse {
                    bindings: vec![AclBinding {
                        principal: "*".into(),
                        resource: ResourceType::Group,
                        pattern: PatternType::Literal,
                        name: "billing".into(),
                        operation: Operation::Read,
                        permission: Permission::Deny,
                    }],
                }),
            ),
        ),
        (
            "CreateUser request",
            req(
                43,
                Q::CreateUser(PutUserRequest {
                    credential: example_credential(),
                }),
            ),
        ),
        ("CreateUser response", resp(43, R::CreateUser(Empty))),
        (
            "AlterUser request",
            req(
                44,
                Q::AlterUser(PutUserRequest {
                    credential: example_credential(),
                }),
            ),
        ),
        ("AlterUser response", resp(44, R::AlterUser(Empty))),
        (
            "DeleteUser request",
            req(
                45,
                Q::DeleteUser(DeleteUserRequest {
                    name: "user".into(),
                }),
            ),
        ),
        ("DeleteUser response", resp(45, R::DeleteUser(Empty))),
        ("ListUsers request", req(46, Q::ListUsers(Empty))),
        (
            "ListUsers response",
            resp(
                46,
                R::ListUsers(ListUsersResponse {
                    users: vec![UserInfo {
                        name: "user".into(),
                        mechanism: "SCRAM-SHA-256".into(),
                        iterations: 4096,
                    }],
                }),
            ),
        ),
    ]
}

/// A user as CreateUser carries it. The bytes are illustrative, shorter than a real
/// verifier's (16-byte salt, 32-byte keys) to keep the example small.
fn example_credential() -> UserCredential {
    UserCredential {
        name: "user".into(),
        iterations: 4096,
        salt: Bytes::from_static(&[0x5b, 0x6d, 0x99, 0x68]),
        stored_key: Bytes::from_static(&[0x11, 0x22, 0x33, 0x44]),
        server_key: Bytes::from_static(&[0x55, 0x66, 0x77, 0x88]),
    }
}

/// An example's bytes in protocol `version`.
fn encode_in(msg: &Message, version: u16) -> Vec<u8> {
    let mut buf = BytesMut::new();
    msg.encode(version, &mut buf).expect("examples fit");
    buf.to_vec()
}

/// The version an example is shown in: the one named in it (`... (version 2)`), for
/// a later layout of an older operation, else the version that introduced its
/// operation (examples of version 1 keep their `01 00` headers however far the
/// protocol moves on).
fn example_version(name: &str, msg: &Message) -> u16 {
    if name.contains("(version 2)") {
        return 2;
    }
    encode_version(msg)
}

fn encode_version(msg: &Message) -> u16 {
    let op = match msg {
        Message::Request { request, .. } => request.op_code(),
        Message::Response { response, .. } => response.op_code(),
        Message::Error { op, .. } => OpCode::from_u16(*op).expect("examples use known ops"),
        Message::Push(_) => OpCode::Delivery,
    };
    op.since()
}

fn hex_line(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The fenced block for one example: length, header and body on their own lines.
fn hex_block(name: &str, bytes: &[u8]) -> String {
    let mut out = format!("Example: {name}\n\n```hex\n");
    out += &format!("{:<47} # length\n", hex_line(&bytes[..4]));
    out += &format!(
        "{:<47} # version, op, flags, correlation_id\n",
        hex_line(&bytes[4..14])
    );
    for chunk in bytes[14..].chunks(HEX_LINE_BYTES) {
        out += &hex_line(chunk);
        out += "\n";
    }
    out += "```\n";
    out
}

/// `(name, bytes)` for every ```hex block in the spec, with `#` comments stripped.
fn spec_blocks() -> Vec<(String, Vec<u8>)> {
    let mut blocks = Vec::new();
    let mut last_text = "";
    let mut lines = SPEC.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "```hex" {
            let name = last_text.strip_prefix("Example: ").unwrap_or_else(|| {
                panic!("```hex block not preceded by `Example: <name>` (after {last_text:?})")
            });
            let mut bytes = Vec::new();
            for line in lines.by_ref() {
                if line.trim() == "```" {
                    break;
                }
                let data = line.split('#').next().unwrap_or("");
                for pair in data.split_whitespace() {
                    bytes.push(
                        u8::from_str_radix(pair, 16)
                            .unwrap_or_else(|_| panic!("{name}: {pair:?} is not a hex byte")),
                    );
                }
            }
            blocks.push((name.to_string(), bytes));
        } else if !line.trim().is_empty() {
            last_text = line.trim();
        }
    }
    blocks
}

#[test]
fn spec_examples_decode_and_reencode_byte_for_byte() {
    let canonical: BTreeMap<_, _> = examples().into_iter().collect();
    let blocks = spec_blocks();
    assert!(!blocks.is_empty(), "no examples found in docs/protocol.md");
    for (name, bytes) in &blocks {
        let mut buf = BytesMut::from(&bytes[..]);
        let msg = FrameDecoder::new()
            .decode_message(&mut buf)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .unwrap_or_else(|| panic!("{name}: incomplete frame"));
        assert!(
            buf.is_empty(),
            "{name}: {} bytes after the frame",
            buf.len()
        );
        let version = u16::from_le_bytes([bytes[4], bytes[5]]);
        assert_eq!(
            version,
            example_version(name, &msg),
            "{name}: shown in the wrong version"
        );
        assert_eq!(
            &encode_in(&msg, version),
            bytes,
            "{name}: re-encoding differs"
        );
        let expected = canonical
            .get(name.as_str())
            .unwrap_or_else(|| panic!("{name}: no canonical example of that name"));
        assert_eq!(
            &msg, expected,
            "{name}: spec is out of date; regenerate (see module doc)"
        );
    }
    for name in canonical.keys() {
        assert!(
            blocks.iter().any(|(n, _)| n == name),
            "{name} is missing from docs/protocol.md"
        );
    }
}

#[test]
fn every_operation_has_an_example() {
    let blocks = spec_blocks();
    for &op in OpCode::ALL {
        let with_op = |flags: u16| {
            blocks.iter().any(|(_, b)| {
                b.len() >= 14
                    && u16::from_le_bytes([b[6], b[7]]) == op.as_u16()
                    && u16::from_le_bytes([b[8], b[9]]) == flags
            })
        };
        if op == OpCode::Delivery {
            assert!(with_op(2), "no Delivery push example");
        } else {
            assert!(with_op(0), "no request example for {}", op.name());
            assert!(with_op(1), "no response example for {}", op.name());
        }
    }
}

#[test]
#[ignore = "prints the spec's hex blocks; run by hand after changing an example"]
fn print_examples() {
    for (name, msg) in examples() {
        let version = example_version(name, &msg);
        println!("{}", hex_block(name, &encode_in(&msg, version)));
    }
}
