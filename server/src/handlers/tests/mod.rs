//! The request layer, driven without any socket: every family of operations through
//! [`handle`] ([`errors`]: the error codes each can answer with; [`group_admin`]: the
//! audit lines of group administration; [`handover`]: stream group subscriptions
//! following a partition from one member to another; [`idempotence`]: idempotent
//! producers' duplicates and sequences; [`receive`]: pulling queue messages;
//! [`seek`]: reading from a point in time).

mod errors;
mod group_admin;
mod handover;
mod idempotence;
mod metrics;
mod receive;
mod seek;

use protocol::ops::ack::{AckRequest, ExtendDeadlineRequest, NackRequest};
use protocol::ops::fetch::FetchRequest;
use protocol::ops::group::{
    DescribeGroupRequest, GroupMode, GroupStart, HeartbeatRequest, JoinGroupRequest,
    LeaveGroupRequest,
};
use protocol::ops::handshake::HandshakeRequest;
use protocol::ops::offsets::{CommitOffsetsRequest, FetchOffsetsRequest, PartitionOffset};
use protocol::ops::produce::{AckLevel, PartitionSelector, ProduceRequest};
use protocol::ops::registry::{DescribeServiceRequest, InstanceRequest, RegisterRequest};
use protocol::ops::routes::{AddRouteRequest, DeleteRouteRequest, PublishRequest};
use protocol::ops::stats::TopicStatsRequest;
use protocol::ops::subscribe::{
    CreditRequest, StartPosition, SubscribeRequest, SubscribeTarget, UnsubscribeRequest,
};
use protocol::ops::topic::{
    ConfigEntry, CreateTopicRequest, DeleteRecordsRequest, DeleteTopicRequest,
    DescribeTopicRequest, ListTopicsRequest,
};
use protocol::ops::{Empty, Request, Response};
use protocol::Message;

use super::testing::{batch, TestBroker};

fn create(name: &str, partitions: u32, config: &[(&str, &str)]) -> Request {
    Request::CreateTopic(CreateTopicRequest {
        name: name.into(),
        partitions,
        config: config
            .iter()
            .map(|(k, v)| ConfigEntry {
                key: k.to_string(),
                value: v.to_string(),
            })
            .collect(),
    })
}

fn produce(topic: &str, partition: PartitionSelector, values: &[&str]) -> Request {
    Request::Produce(ProduceRequest {
        topic: topic.into(),
        partition,
        ack: AckLevel::Durable,
        timeout_ms: 10_000,
        producer: None,
        batch: batch(values),
    })
}

fn fetch(topic: &str, partition: u32, offset: u64) -> Request {
    Request::Fetch(FetchRequest {
        topic: topic.into(),
        partition,
        offset,
        max_bytes: 1 << 20,
        max_wait_ms: 0,
    })
}

fn join(group: &str, topic: &str, mode: GroupMode) -> Request {
    Request::JoinGroup(JoinGroupRequest {
        group: group.into(),
        topic: topic.into(),
        member_id: String::new(),
        session_timeout_ms: 10_000,
        mode,
        start: GroupStart::Earliest,
        config: vec![],
    })
}

fn member(response: Response) -> (String, u32, Vec<u32>) {
    match response {
        Response::JoinGroup(j) => (j.member_id, j.generation, j.partitions),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn topics_are_created_described_listed_trimmed_and_deleted() {
    let mut t = TestBroker::new();
    t.ok(create("orders", 2, &[("retention_ms", "60000")]))
        .await;
    let Response::DescribeTopic(described) = t
        .ok(Request::DescribeTopic(DescribeTopicRequest {
            name: "orders".into(),
        }))
        .await
    else {
        panic!()
    };
    assert_eq!(described.partitions.len(), 2);
    assert!(described
        .config
        .iter()
        .any(|e| e.key == "retention_ms" && e.value == "60000"));
    for _ in 0..3 {
        t.ok(produce("orders", PartitionSelector::Partition(1), &["x"]))
            .await;
    }
    let trimmed = t
        .ok(Request::DeleteRecords(DeleteRecordsRequest {
            topic: "orders".into(),
            partition: 1,
            before_offset: 2,
        }))
        .await;
    assert!(matches!(trimmed, Response::DeleteRecords(r) if r.log_start_offset == 2));
    let Response::ListTopics(listed) = t
        .ok(Request::ListTopics(ListTopicsRequest {
            include_internal: false,
        }))
        .await
    else {
        panic!()
    };
    let names: Vec<&str> = listed.topics.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["orders"], "internal topics are hidden");
    t.ok(Request::DeleteTopic(DeleteTopicRequest {
        name: "orders".into(),
    }))
    .await;
    assert_eq!(
        t.code(Request::DescribeTopic(DescribeTopicRequest {
            name: "orders".into()
        }))
        .await,
        "unknown_topic"
    );
}

#[tokio::test]
async fn a_produced_batch_is_fetched_back_byte_for_byte() {
    let mut t = TestBroker::new();
    t.ok(create("events", 1, &[])).await;
    let sent = batch(&["a", "b", "c"]);
    let request = Request::Produce(ProduceRequest {
        topic: "events".into(),
        partition: PartitionSelector::Any,
        ack: AckLevel::Durable,
        timeout_ms: 10_000,
        producer: None,
        batch: sent.clone(),
    });
    let Response::Produce(stored) = t.ok(request).await else {
        panic!()
    };
    assert_eq!((stored.partition, stored.base_offset), (0, Some(0)));
    let Response::Fetch(fetched) = t.ok(fetch("events", 0, 0)).await else {
        panic!()
    };
    assert_eq!(fetched.high_watermark, 3);
    assert_eq!(
        fetched.batches[8..],
        sent[8..],
        "only base_offset is the log's"
    );
}

#[tokio::test]
async fn a_partition_subscription_pushes_under_credit() {
    let mut t = TestBroker::new();
    t.ok(create("feed", 1, &[])).await;
    t.ok(produce("feed", PartitionSelector::Any, &["1", "2", "3"]))
        .await;
    let Response::Subscribe(subscribed) = t
        .ok(Request::Subscribe(SubscribeRequest {
            topic: "feed".into(),
            target: SubscribeTarget::Partition(0),
            start: StartPosition::Earliest,
            credit_messages: 2,
            credit_bytes: 1 << 20,
        }))
        .await
    else {
        panic!()
    };
    let id = subscribed.subscription_id;
    let Some(Message::Push(first)) = t.pushes.recv().await else {
        panic!()
    };
    assert_eq!(
        (first.subscription_id, first.from_offset, first.to_offset),
        (id, 0, 2),
        "cut to the message credit"
    );
    let credit = |messages| {
        Request::Credit(CreditRequest {
            subscription_id: id,
            messages,
            bytes: 0,
        })
    };
    t.ok(credit(5)).await;
    let Some(Message::Push(second)) = t.pushes.recv().await else {
        panic!()
    };
    assert_eq!((second.from_offset, second.to_offset), (2, 3));
    assert_eq!(
        t.code(credit(0)).await,
        "invalid_request",
        "a credit of nothing"
    );
    t.ok(Request::Unsubscribe(UnsubscribeRequest {
        subscription_id: id,
    }))
    .await;
    assert_eq!(t.code(credit(1)).await, "unknown_subscription");
}

#[tokio::test]
async fn a_stream_group_joins_commits_and_reads_its_offsets() {
    let mut t = TestBroker::new();
    t.ok(create("orders", 2, &[])).await;
    let (member_id, generation, partitions) =
        member(t.ok(join("billing", "orders", GroupMode::Stream)).await);
    assert_eq!(partitions, [0, 1]);
    let commit = |generation, offset| {
        Request::CommitOffsets(CommitOffsetsRequest {
            group: "billing".into(),
            member_id: member_id.clone(),
            generation,
            topic: "orders".into(),
            offsets: vec![PartitionOffset {
                partition: 1,
                offset,
            }],
        })
    };
    t.ok(commit(generation, 7)).await;
    // A second member takes partition 1; until the first heartbeats saying it applied
    // that generation, partition 1 is still the first's to commit, in any generation.
    let (_, next, partitions) = member(t.ok(join("billing", "orders", GroupMode::Stream)).await);
    assert!(partitions.is_empty(), "not released yet");
    t.ok(commit(generation, 8)).await;
    let beat = |generation| {
        Request::Heartbeat(HeartbeatRequest {
            group: "billing".into(),
            member_id: member_id.clone(),
            generation,
        })
    };
    let told = t.ok(beat(generation)).await;
    assert!(matches!(told, Response::Heartbeat(h) if h.generation == next && h.partitions == [0]));
    t.ok(commit(next, 8)).await;
    t.ok(beat(next)).await;
    assert_eq!(t.code(commit(generation, 9)).await, "stale_generation");
    assert_eq!(t.code(commit(next, 9)).await, "invalid_partition");
    let Response::FetchOffsets(offsets) = t
        .ok(Request::FetchOffsets(FetchOffsetsRequest {
            group: "billing".into(),
            topic: "orders".into(),
        }))
        .await
    else {
        panic!()
    };
    let committed: Vec<Option<u64>> = offsets.offsets.iter().map(|o| o.offset).collect();
    assert_eq!(committed, [None, Some(8)]);
    let Response::DescribeGroup(described) = t
        .ok(Request::DescribeGroup(DescribeGroupRequest {
            group: "billing".into(),
        }))
        .await
    else {
        panic!()
    };
    assert_eq!(
        described.members[0].client_name, "test/1",
        "from the session"
    );
    t.ok(Request::LeaveGroup(LeaveGroupRequest {
        group: "billing".into(),
        member_id,
    }))
    .await;
}

#[tokio::test]
async fn a_session_learns_its_stream_memberships_from_join_heartbeat_and_commit() {
    let mut t = TestBroker::new();
    t.ok(create("orders", 1, &[])).await;
    t.ok(create("jobs", 1, &[])).await;
    let (member_id, generation, _) =
        member(t.ok(join("billing", "orders", GroupMode::Stream)).await);
    member(t.ok(join("workers", "jobs", GroupMode::Queue)).await);
    assert!(t.cx.members.knows("billing", &member_id));
    assert!(
        t.cx.members.reading("jobs").is_empty(),
        "queue groups do not fetch"
    );

    // A reconnected client goes on with its member id on a new session: its next
    // heartbeat (or commit) teaches the session the membership.
    let beat = Request::Heartbeat(HeartbeatRequest {
        group: "billing".into(),
        member_id: member_id.clone(),
        generation,
    });
    let (mut second, _pushes) = t.session("test/2");
    assert!(second.members.reading("orders").is_empty());
    t.ok_in(&mut second, beat.clone()).await;
    let reading = second.members.reading("orders");
    assert_eq!(reading.len(), 1);
    assert_eq!(&*reading[0].member_id, member_id);
    let (mut third, _pushes) = t.session("test/3");
    t.ok_in(
        &mut third,
        Request::CommitOffsets(CommitOffsetsRequest {
            group: "billing".into(),
            member_id: member_id.clone(),
            generation,
            topic: "orders".into(),
            offsets: vec![PartitionOffset {
                partition: 0,
                offset: 0,
            }],
        }),
    )
    .await;
    assert!(third.members.knows("billing", &member_id));

    // Leaving forgets it; so does the coordinator saying the member is gone.
    t.ok(Request::LeaveGroup(LeaveGroupRequest {
        group: "billing".into(),
        member_id: member_id.clone(),
    }))
    .await;
    assert!(!t.cx.members.knows("billing", &member_id));
    assert!(call_in_session(&t, &mut second, beat).await.is_err());
    assert!(!second.members.knows("billing", &member_id));
}

async fn call_in_session(
    t: &TestBroker,
    cx: &mut super::Context,
    request: Request,
) -> super::Answer {
    super::handle(&t.broker, cx, request).answer().await
}

#[tokio::test]
async fn a_queue_member_gets_deliveries_and_settles_them() {
    let mut t = TestBroker::new();
    t.ok(create("jobs", 1, &[])).await;
    t.ok(produce("jobs", PartitionSelector::Any, &["j1", "j2"]))
        .await;
    let (member_id, _, _) = member(t.ok(join("workers", "jobs", GroupMode::Queue)).await);
    t.ok(Request::Subscribe(SubscribeRequest {
        topic: "jobs".into(),
        target: SubscribeTarget::Group {
            group: "workers".into(),
            member_id,
        },
        start: StartPosition::Earliest,
        credit_messages: 10,
        credit_bytes: 1 << 20,
    }))
    .await;
    let Some(Message::Push(delivery)) = t.pushes.recv().await else {
        panic!()
    };
    assert_eq!(
        (delivery.from_offset, delivery.to_offset, delivery.attempt),
        (0, 2, 1)
    );
    t.ok(Request::Ack(AckRequest {
        group: "workers".into(),
        topic: "jobs".into(),
        partition: 0,
        offsets: vec![0],
    }))
    .await;
    t.ok(Request::ExtendDeadline(ExtendDeadlineRequest {
        group: "workers".into(),
        topic: "jobs".into(),
        partition: 0,
        offset: 1,
        extend_ms: 60_000,
    }))
    .await;
    let nack = |offset| {
        Request::Nack(NackRequest {
            group: "workers".into(),
            topic: "jobs".into(),
            partition: 0,
            offset,
            reason: "later".into(),
            redelivery_delay_ms: Some(1),
        })
    };
    t.ok(nack(1)).await;
    assert_eq!(t.code(nack(1)).await, "not_in_flight", "already nacked");
    t.clock.advance(5);
    let Some(Message::Push(retry)) = t.pushes.recv().await else {
        panic!()
    };
    assert_eq!(
        (retry.from_offset, retry.attempt),
        (1, 2),
        "redelivered as attempt 2"
    );
}

#[tokio::test]
async fn routes_publish_to_every_matching_topic() {
    let mut t = TestBroker::new();
    t.ok(create("eu", 1, &[])).await;
    t.ok(create("all", 1, &[])).await;
    let add = |pattern: &str, topic: &str| {
        Request::AddRoute(AddRouteRequest {
            pattern: pattern.into(),
            topic: topic.into(),
            headers: vec![],
        })
    };
    let Response::AddRoute(eu) = t.ok(add("orders.*.eu", "eu")).await else {
        panic!()
    };
    t.ok(add("orders.#", "all")).await;
    let publish = |key: &str| {
        Request::Publish(PublishRequest {
            routing_key: key.into(),
            headers: vec![],
            ack: AckLevel::Durable,
            timeout_ms: 10_000,
            batch: batch(&["o-1"]),
        })
    };
    let Response::Publish(routed) = t.ok(publish("orders.created.eu")).await else {
        panic!()
    };
    let topics: Vec<&str> = routed.routed.iter().map(|r| r.topic.as_str()).collect();
    assert_eq!(topics, ["all", "eu"]);
    assert_eq!(t.code(publish("payments.done")).await, "unroutable");
    let Response::ListRoutes(listed) = t.ok(Request::ListRoutes(Empty)).await else {
        panic!()
    };
    assert_eq!(listed.routes.len(), 2);
    let delete = Request::DeleteRoute(DeleteRouteRequest {
        route_id: eu.route_id,
    });
    t.ok(delete.clone()).await;
    assert_eq!(t.code(delete).await, "unknown_route");
}

#[tokio::test]
async fn services_register_heartbeat_and_deregister() {
    let mut t = TestBroker::new();
    t.ok(Request::RegisterInstance(RegisterRequest {
        service: "billing".into(),
        instance_id: "b-1".into(),
        address: "10.0.0.7:8080".into(),
        tags: vec![],
        ttl_ms: 5_000,
    }))
    .await;
    let instance = || {
        Request::InstanceHeartbeat(InstanceRequest {
            service: "billing".into(),
            instance_id: "b-1".into(),
        })
    };
    t.ok(instance()).await;
    let Response::DescribeService(described) = t
        .ok(Request::DescribeService(DescribeServiceRequest {
            service: "billing".into(),
            tags: vec![],
        }))
        .await
    else {
        panic!()
    };
    assert_eq!(described.instances[0].address, "10.0.0.7:8080");
    let Response::ListServices(listed) = t.ok(Request::ListServices(Empty)).await else {
        panic!()
    };
    assert_eq!(listed.services[0].instances, 1);
    let deregister = Request::DeregisterInstance(InstanceRequest {
        service: "billing".into(),
        instance_id: "b-1".into(),
    });
    t.ok(deregister.clone()).await;
    assert_eq!(t.code(deregister).await, "unknown_instance");
    assert_eq!(t.code(instance()).await, "unknown_instance");
}

#[tokio::test]
async fn stats_count_what_was_produced() {
    let mut t = TestBroker::new();
    t.ok(create("metrics", 1, &[])).await;
    t.ok(produce("metrics", PartitionSelector::Any, &["a", "b"]))
        .await;
    let Response::TopicStats(stats) = t
        .ok(Request::TopicStats(TopicStatsRequest {
            topic: "metrics".into(),
        }))
        .await
    else {
        panic!()
    };
    assert_eq!(stats.total.messages_total, 2);
    let Response::ServerStats(server) = t.ok(Request::ServerStats(Empty)).await else {
        panic!()
    };
    assert_eq!(server.topics.len(), 1);
}
