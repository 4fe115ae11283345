//! Seeking by time: ListOffsets and a subscription starting at a timestamp, against
//! the time index of records produced with known timestamps (the records' own: the
//! broker's clock plays no part).

use bytes::Bytes;
use protocol::batch::BatchBuilder;
use protocol::ops::fetch::{ListOffsetsRequest, PartitionTime};
use protocol::ops::produce::{AckLevel, PartitionSelector, ProduceRequest};
use protocol::ops::subscribe::{StartPosition, SubscribeRequest, SubscribeTarget};
use protocol::ops::{Request, Response};
use protocol::Message;

use super::create;
use crate::handlers::testing::TestBroker;

/// A batch of one record per `(timestamp_ms, value)`.
fn timed_batch(records: &[(i64, &str)]) -> Bytes {
    let mut builder = BatchBuilder::new();
    for (timestamp_ms, value) in records {
        builder
            .push(*timestamp_ms, None, Some(value.as_bytes()), &[])
            .expect("a small record");
    }
    builder.finish()
}

async fn produce_at(t: &mut TestBroker, partition: u32, records: &[(i64, &str)]) {
    t.ok(Request::Produce(ProduceRequest {
        topic: "events".into(),
        partition: PartitionSelector::Partition(partition),
        ack: AckLevel::Durable,
        timeout_ms: 10_000,
        batch: timed_batch(records),
        producer: None,
    }))
    .await;
}

async fn offsets_for(t: &mut TestBroker, asked: &[(u32, i64)]) -> Vec<(u32, u64)> {
    let request = Request::ListOffsets(ListOffsetsRequest {
        topic: "events".into(),
        partitions: asked
            .iter()
            .map(|&(partition, timestamp_ms)| PartitionTime {
                partition,
                timestamp_ms,
            })
            .collect(),
    });
    match t.ok(request).await {
        Response::ListOffsets(answer) => answer
            .offsets
            .iter()
            .map(|o| (o.partition, o.offset))
            .collect(),
        other => panic!("{other:?}"),
    }
}

/// Offsets 0..7 at times 1000, 2000, 3000 (one batch each), then 4000, 4000, 4001,
/// 5000 (one batch), on partition 0 of two; partition 1 stays empty.
async fn broker_with_timed_records() -> TestBroker {
    let mut t = TestBroker::new();
    t.ok(create("events", 2, &[])).await;
    for (i, ms) in [1000, 2000, 3000].into_iter().enumerate() {
        produce_at(&mut t, 0, &[(ms, &format!("r{i}"))]).await;
    }
    produce_at(
        &mut t,
        0,
        &[(4000, "r3"), (4000, "r4"), (4001, "r5"), (5000, "r6")],
    )
    .await;
    t
}

#[tokio::test]
async fn list_offsets_finds_the_first_record_at_or_after_each_time() {
    let mut t = broker_with_timed_records().await;
    let cases = [
        (i64::MIN, 0),
        (0, 0),
        (1000, 0),
        (1001, 1),
        (2999, 2),
        (3000, 2),
        (4000, 3), // the first of two records at the same time
        (4001, 5), // inside a batch
        (5000, 6),
        (5001, 7), // past the last record: the end, where the next record goes
        (i64::MAX, 7),
    ];
    for (timestamp_ms, offset) in cases {
        assert_eq!(
            offsets_for(&mut t, &[(0, timestamp_ms)]).await,
            [(0, offset)],
            "time {timestamp_ms}"
        );
    }
    assert_eq!(
        offsets_for(&mut t, &[(1, 0), (0, 2500)]).await,
        [(1, 0), (0, 2)],
        "each partition asked, in the order asked; an empty one answers its end"
    );
    // The broker's clock plays no part: a step of its wall clock, or time passing,
    // changes nothing (records are found by their own timestamps).
    t.clock.step_wall(-10 * 3_600_000);
    t.clock.advance(3_600_000);
    assert_eq!(offsets_for(&mut t, &[(0, 2500)]).await, [(0, 2)]);
    let bad = Request::ListOffsets(ListOffsetsRequest {
        topic: "events".into(),
        partitions: vec![PartitionTime {
            partition: 2,
            timestamp_ms: 0,
        }],
    });
    assert_eq!(t.code(bad).await, "invalid_partition");
    let unknown = Request::ListOffsets(ListOffsetsRequest {
        topic: "nope".into(),
        partitions: vec![],
    });
    assert_eq!(t.code(unknown).await, "unknown_topic");
}

#[tokio::test]
async fn after_records_are_deleted_a_seek_lands_no_lower_than_the_start() {
    let mut t = broker_with_timed_records().await;
    t.ok(Request::DeleteRecords(
        protocol::ops::topic::DeleteRecordsRequest {
            topic: "events".into(),
            partition: 0,
            before_offset: 4,
        },
    ))
    .await;
    assert_eq!(offsets_for(&mut t, &[(0, 0)]).await, [(0, 4)]);
    assert_eq!(offsets_for(&mut t, &[(0, 4000)]).await, [(0, 4)]);
}

#[tokio::test]
async fn a_subscription_starting_at_a_time_delivers_from_the_first_record_at_or_after_it() {
    let mut t = broker_with_timed_records().await;
    let subscribe = |timestamp_ms| {
        Request::Subscribe(SubscribeRequest {
            topic: "events".into(),
            target: SubscribeTarget::Partition(0),
            start: StartPosition::Timestamp(timestamp_ms),
            credit_messages: 100,
            credit_bytes: 1 << 20,
        })
    };
    t.ok(subscribe(2500)).await;
    let Some(Message::Push(delivery)) = t.pushes.recv().await else {
        panic!("no delivery")
    };
    assert_eq!(
        (delivery.from_offset, delivery.to_offset),
        (2, 7),
        "from the first record at or after the time to the end"
    );

    // Past the end: nothing now, the next record appended when it comes.
    let Response::Subscribe(_) = t.ok(subscribe(9_999)).await else {
        panic!()
    };
    produce_at(&mut t, 0, &[(100, "late, and stamped long ago")]).await;
    let Some(Message::Push(delivery)) = t.pushes.recv().await else {
        panic!("no delivery")
    };
    assert_eq!(
        (delivery.from_offset, delivery.to_offset),
        (7, 8),
        "the first subscription's next record"
    );
    let Some(Message::Push(delivery)) = t.pushes.recv().await else {
        panic!("no delivery")
    };
    assert_eq!(
        (delivery.from_offset, delivery.to_offset),
        (7, 8),
        "the one that started at the end gets what came after, whatever its timestamp"
    );
}
