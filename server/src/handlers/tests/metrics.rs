//! `/metrics` after known actions: the exact series the scrape renders, read back
//! from the text exposition.

use protocol::ops::ack::{AckRequest, NackRequest};
use protocol::ops::group::{DescribeGroupRequest, GroupMode};
use protocol::ops::offsets::{CommitOffsetsRequest, PartitionOffset};
use protocol::ops::produce::PartitionSelector;
use protocol::ops::subscribe::{StartPosition, SubscribeRequest, SubscribeTarget};
use protocol::ops::topic::DeleteTopicRequest;
use protocol::ops::{Request, Response};
use protocol::Message;

use super::{create, fetch, join, member, produce, TestBroker};
use crate::metrics;

/// The value of the one sample named exactly `series` (name and labels as rendered),
/// if the scrape has it.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.parse().ok()
    })
}

fn value(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
}

#[tokio::test]
async fn produced_records_show_as_messages_in_offsets_and_latency() {
    let mut t = TestBroker::new();
    t.ok(create("orders", 2, &[])).await;
    for values in [&["a", "b"][..], &["c"], &["d", "e", "f", "g"]] {
        t.ok(produce("orders", PartitionSelector::Partition(1), values))
            .await;
    }
    t.ok(fetch("orders", 1, 3)).await;
    let text = metrics::render(&t.broker);
    let p1 = r#"{topic="orders",partition="1"}"#;
    let p0 = r#"{topic="orders",partition="0"}"#;
    assert_eq!(
        value(&text, &format!("brokerd_partition_messages_in_total{p1}")),
        7.0
    );
    assert_eq!(
        value(&text, &format!("brokerd_partition_messages_in_total{p0}")),
        0.0
    );
    assert_eq!(
        value(&text, &format!("brokerd_partition_log_end_offset{p1}")),
        7.0
    );
    assert_eq!(
        value(&text, &format!("brokerd_partition_log_start_offset{p1}")),
        0.0
    );
    // The fetch from offset 3 got the last batch (offsets 3..7): four records.
    assert_eq!(
        value(&text, &format!("brokerd_partition_messages_out_total{p1}")),
        4.0
    );
    let size = value(&text, &format!("brokerd_partition_size_bytes{p1}"));
    assert_eq!(
        value(&text, &format!("brokerd_partition_bytes_in_total{p1}")),
        size
    );
    assert!(size > 0.0);
    // Three durable produces answered (the handlers' listener counts no requests: the
    // native connection's `Reply` does).
    let durable = r#"{ack="durable"}"#;
    assert_eq!(
        value(
            &text,
            &format!("brokerd_produce_latency_seconds_count{durable}")
        ),
        3.0
    );
    assert_eq!(
        value(
            &text,
            r#"brokerd_produce_latency_seconds_bucket{le="+Inf",ack="durable"}"#
        ),
        3.0
    );
    // Each durable produce waited for a group commit of the topic's log.
    assert!(value(&text, "brokerd_fsync_duration_seconds_count") >= 1.0);
    assert!(value(&text, "brokerd_group_commit_messages_sum") >= 7.0);
    assert!(text.ends_with("# EOF\n"));
}

#[tokio::test]
async fn the_lag_series_are_describe_group_s_lag() {
    let mut t = TestBroker::new();
    t.ok(create("orders", 2, &[])).await;
    for partition in [0, 1, 1] {
        t.ok(produce(
            "orders",
            PartitionSelector::Partition(partition),
            &["x", "y"],
        ))
        .await;
    }
    let (member_id, generation, _) =
        member(t.ok(join("billing", "orders", GroupMode::Stream)).await);
    t.ok(Request::CommitOffsets(CommitOffsetsRequest {
        group: "billing".into(),
        member_id,
        generation,
        topic: "orders".into(),
        offsets: vec![PartitionOffset {
            partition: 1,
            offset: 1,
        }],
    }))
    .await;
    let Response::DescribeGroup(described) = t
        .ok(Request::DescribeGroup(DescribeGroupRequest {
            group: "billing".into(),
        }))
        .await
    else {
        panic!("not a DescribeGroup answer")
    };
    let text = metrics::render(&t.broker);
    for p in &described.partitions {
        let labels = format!(
            r#"{{group="billing",topic="orders",partition="{}"}}"#,
            p.partition
        );
        let lag = value(&text, &format!("brokerd_group_lag_messages{labels}"));
        assert_eq!(lag, p.lag as f64, "partition {}", p.partition);
        let committed = sample(&text, &format!("brokerd_group_committed_offset{labels}"));
        assert_eq!(committed, p.committed_offset.map(|o| o as f64));
    }
    // Partition 0: nothing committed, so lag from the log start (2); partition 1:
    // committed 1 of 4.
    let lags: Vec<u64> = described.partitions.iter().map(|p| p.lag).collect();
    assert_eq!(lags, [2, 3]);
    assert_eq!(
        value(
            &text,
            r#"brokerd_group_members{group="billing",topic="orders",mode="stream"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn a_deleted_topic_and_its_groups_leave_the_output() {
    let mut t = TestBroker::new();
    t.ok(create("orders", 1, &[])).await;
    t.ok(create("kept", 1, &[])).await;
    t.ok(produce("orders", PartitionSelector::Partition(0), &["x"]))
        .await;
    member(t.ok(join("billing", "orders", GroupMode::Stream)).await);
    let before = metrics::render(&t.broker);
    assert!(before.contains(r#"topic="orders""#));
    t.ok(Request::DeleteTopic(DeleteTopicRequest {
        name: "orders".into(),
    }))
    .await;
    let after = metrics::render(&t.broker);
    assert!(
        !after.contains(r#""orders""#) && !after.contains(r#""billing""#),
        "the deleted topic's and its group's series are gone:\n{after}"
    );
    assert!(after.contains(r#"brokerd_partition_log_end_offset{topic="kept",partition="0"} 0"#));
}

#[tokio::test]
async fn internal_topics_and_broker_wide_series_are_there_from_the_start() {
    let t = TestBroker::new();
    let text = metrics::render(&t.broker);
    for series in [
        r#"brokerd_internal_topic_size_bytes{topic="__consumer_offsets"}"#,
        r#"brokerd_connections_open{listener="native"}"#,
        r#"brokerd_connections_closed_total{reason="idle"}"#,
        r#"brokerd_requests_total{op="Produce"}"#,
        r#"brokerd_trace_spans_dropped_total{topic="__traces"}"#,
        "brokerd_end_to_end_latency_seconds_count",
    ] {
        assert!(sample(&text, series).is_some(), "no {series} in:\n{text}");
    }
}

/// The queue series of `group` on partition 0 of `topic`: in flight, waiting for a
/// retry, and the same two from `DescribeGroup`.
async fn queue_counts(t: &mut TestBroker, group: &str, topic: &str) -> [(f64, f64); 2] {
    let text = metrics::render(&t.broker);
    let labels = format!(r#"{{group="{group}",topic="{topic}",partition="0"}}"#);
    let scraped = (
        value(&text, &format!("brokerd_queue_in_flight_messages{labels}")),
        value(
            &text,
            &format!("brokerd_queue_retry_scheduled_messages{labels}"),
        ),
    );
    let Response::DescribeGroup(described) = t
        .ok(Request::DescribeGroup(DescribeGroupRequest {
            group: group.into(),
        }))
        .await
    else {
        panic!("not a DescribeGroup answer")
    };
    let counts = described.partitions[0].queue.expect("a queue group");
    [
        scraped,
        (counts.in_flight as f64, counts.waiting_retry as f64),
    ]
}

#[tokio::test]
async fn queue_groups_show_in_flight_retries_and_redeliveries() {
    let mut t = TestBroker::new();
    t.ok(create("jobs", 1, &[])).await;
    t.ok(produce("jobs", PartitionSelector::Any, &["j0", "j1", "j2"]))
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
        panic!("no delivery")
    };
    assert_eq!((delivery.from_offset, delivery.to_offset), (0, 3));
    t.ok(Request::Ack(AckRequest {
        group: "workers".into(),
        topic: "jobs".into(),
        partition: 0,
        offsets: vec![0],
    }))
    .await;
    t.ok(Request::Nack(NackRequest {
        group: "workers".into(),
        topic: "jobs".into(),
        partition: 0,
        offset: 1,
        reason: "later".into(),
        redelivery_delay_ms: Some(1_000),
    }))
    .await;
    let [scraped, described] = queue_counts(&mut t, "workers", "jobs").await;
    assert_eq!(scraped, (1.0, 1.0), "offset 2 in flight, offset 1 waiting");
    assert_eq!(scraped, described);
    let text = metrics::render(&t.broker);
    let group = r#"{group="workers",topic="jobs"}"#;
    assert_eq!(
        value(&text, &format!("brokerd_queue_redeliveries_total{group}")),
        0.0
    );
    t.clock.advance(1_000);
    let Some(Message::Push(retry)) = t.pushes.recv().await else {
        panic!("no redelivery")
    };
    assert_eq!((retry.from_offset, retry.attempt), (1, 2));
    let [scraped, described] = queue_counts(&mut t, "workers", "jobs").await;
    assert_eq!(scraped, (2.0, 0.0));
    assert_eq!(scraped, described);
    let text = metrics::render(&t.broker);
    assert_eq!(
        value(&text, &format!("brokerd_queue_redeliveries_total{group}")),
        1.0
    );
    let partition = r#"{topic="jobs",partition="0"}"#;
    assert_eq!(
        value(
            &text,
            &format!("brokerd_partition_messages_out_total{partition}")
        ),
        4.0,
        "three delivered, one of them again"
    );
    assert_eq!(
        value(
            &text,
            r#"brokerd_queue_dead_lettered_messages_total{group="workers",topic="jobs",partition="0"}"#
        ),
        0.0
    );
    assert!(value(&text, "brokerd_end_to_end_latency_seconds_count") >= 2.0);
}
