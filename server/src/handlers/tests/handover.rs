//! Server-side group subscriptions across a rebalance: a revoked partition stops being
//! pushed to its old member at once, and is pushed to the new one only after the old
//! one released it, from the offset it committed.

use protocol::ops::group::{GroupMode, HeartbeatRequest};
use protocol::ops::offsets::{CommitOffsetsRequest, PartitionOffset};
use protocol::ops::produce::PartitionSelector;
use protocol::ops::subscribe::{Delivery, StartPosition, SubscribeRequest, SubscribeTarget};
use protocol::ops::Request;
use protocol::Message;
use tokio::sync::mpsc;

use super::{create, join, member, produce};
use crate::handlers::testing::TestBroker;

fn subscribe(member_id: &str) -> Request {
    Request::Subscribe(SubscribeRequest {
        topic: "t".into(),
        target: SubscribeTarget::Group {
            group: "g".into(),
            member_id: member_id.into(),
        },
        start: StartPosition::Earliest,
        credit_messages: 1_000,
        credit_bytes: 1 << 20,
    })
}

fn heartbeat(member_id: &str, generation: u32) -> Request {
    Request::Heartbeat(HeartbeatRequest {
        group: "g".into(),
        member_id: member_id.into(),
        generation,
    })
}

/// Lets every task woken so far run: the test runtime has one thread, and a
/// subscription's task needs no I/O of another thread to deliver what is durable.
async fn quiesce() {
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
}

async fn next(pushes: &mut mpsc::Receiver<Message>) -> Delivery {
    match pushes.recv().await {
        Some(Message::Push(delivery)) => delivery,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_partition_moves_between_push_subscribers_only_once_released() {
    let mut t = TestBroker::new();
    t.ok(create("t", 2, &[])).await;
    for p in 0..2 {
        t.ok(produce(
            "t",
            PartitionSelector::Partition(p),
            &["a", "b", "c"],
        ))
        .await;
    }
    let (a, first, partitions) = member(t.ok(join("g", "t", GroupMode::Stream)).await);
    assert_eq!(partitions, [0, 1]);
    t.ok(subscribe(&a)).await;
    let mut read: Vec<(u32, u64, u64)> = Vec::new();
    for _ in 0..2 {
        let d = next(&mut t.pushes).await;
        read.push((d.partition, d.from_offset, d.to_offset));
    }
    read.sort_unstable();
    assert_eq!(read, [(0, 0, 3), (1, 0, 3)]);
    // a has processed two records of partition 1.
    t.ok(Request::CommitOffsets(CommitOffsetsRequest {
        group: "g".into(),
        member_id: a.clone(),
        generation: first,
        topic: "t".into(),
        offsets: vec![PartitionOffset {
            partition: 1,
            offset: 2,
        }],
    }))
    .await;

    // b joins and takes partition 1; a stops receiving it, b does not start yet.
    let (mut cx, mut b_pushes) = t.session("test/2");
    let (b, second, partitions) = member(t.ok_in(&mut cx, join("g", "t", GroupMode::Stream)).await);
    assert!(partitions.is_empty());
    t.ok_in(&mut cx, subscribe(&b)).await;
    quiesce().await;
    t.ok(produce("t", PartitionSelector::Partition(1), &["d"]))
        .await;
    t.ok(heartbeat(&a, first)).await;
    quiesce().await;
    assert!(t.pushes.try_recv().is_err(), "a was told to stop");
    assert!(b_pushes.try_recv().is_err(), "b waits for a to release it");

    // a applied the second generation: b is told partition 1 and its subscription
    // starts where a committed.
    t.ok(heartbeat(&a, second)).await;
    let d = next(&mut b_pushes).await;
    assert_eq!((d.partition, d.from_offset, d.to_offset), (1, 2, 4));
    t.ok(produce("t", PartitionSelector::Partition(0), &["e"]))
        .await;
    let d = next(&mut t.pushes).await;
    assert_eq!((d.partition, d.from_offset, d.to_offset), (0, 3, 4));
    quiesce().await;
    assert!(t.pushes.try_recv().is_err(), "nothing of partition 1 for a");
}
