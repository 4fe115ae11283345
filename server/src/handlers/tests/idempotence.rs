//! Idempotent produce through the dispatch table: ids, duplicates answered with the
//! original offset, sequences out of order refused.

use protocol::ops::produce::{AckLevel, PartitionSelector, ProduceRequest, ProducerSequence};
use protocol::ops::{Empty, Request, Response};

use super::{create, fetch};
use crate::handlers::testing::{batch, TestBroker};

fn tagged(producer_id: u64, sequence: u64, value: &str) -> Request {
    Request::Produce(ProduceRequest {
        topic: "orders".into(),
        partition: PartitionSelector::Partition(0),
        ack: AckLevel::Durable,
        timeout_ms: 10_000,
        producer: Some(ProducerSequence {
            producer_id,
            sequence,
        }),
        batch: batch(&[value, value]),
    })
}

async fn produce(t: &mut TestBroker, request: Request) -> (Option<u64>, bool) {
    match t.ok(request).await {
        Response::Produce(p) => (p.base_offset, p.duplicate),
        other => panic!("{other:?}"),
    }
}

async fn producer_id(t: &mut TestBroker) -> u64 {
    match t.ok(Request::InitProducer(Empty)).await {
        Response::InitProducer(p) => p.producer_id,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_retried_batch_is_answered_with_its_original_offset_and_not_stored_again() {
    let mut t = TestBroker::new();
    t.ok(create("orders", 1, &[])).await;
    let (a, b) = (producer_id(&mut t).await, producer_id(&mut t).await);
    assert_ne!(a, b, "every producer gets its own id");
    assert_eq!(produce(&mut t, tagged(a, 0, "x")).await, (Some(0), false));
    assert_eq!(produce(&mut t, tagged(b, 0, "y")).await, (Some(2), false));
    assert_eq!(produce(&mut t, tagged(a, 1, "z")).await, (Some(4), false));
    // The retries: the offsets of the first attempts, flagged as duplicates.
    assert_eq!(produce(&mut t, tagged(a, 0, "x")).await, (Some(0), true));
    assert_eq!(produce(&mut t, tagged(a, 1, "z")).await, (Some(4), true));
    let Response::Fetch(fetched) = t.ok(fetch("orders", 0, 0)).await else {
        panic!()
    };
    assert_eq!(fetched.high_watermark, 6, "nothing was stored twice");
}

#[tokio::test]
async fn sequences_out_of_order_are_refused_and_nothing_is_stored() {
    let mut t = TestBroker::new();
    t.ok(create("orders", 1, &[])).await;
    let a = producer_id(&mut t).await;
    for sequence in 0..7 {
        produce(&mut t, tagged(a, sequence, "v")).await;
    }
    assert_eq!(t.code(tagged(a, 9, "gap")).await, "out_of_order_sequence");
    assert_eq!(t.code(tagged(a, 1, "old")).await, "out_of_order_sequence");
    assert_eq!(
        produce(&mut t, tagged(a, 7, "next")).await,
        (Some(14), false)
    );
    let Response::Fetch(fetched) = t.ok(fetch("orders", 0, 0)).await else {
        panic!()
    };
    assert_eq!(fetched.high_watermark, 16);
}
