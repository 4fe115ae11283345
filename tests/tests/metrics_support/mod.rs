//! What the metrics black-box tests (`metrics.rs`, `prometheus.rs`) share: known
//! traffic on a running brokerd ([`produce_and_commit`]) and reading samples out of
//! the text exposition ([`sample`]).
//!
//! Each test file compiles this module on its own and uses part of it, so the parts
//! the other file uses would be reported as dead code.
#![allow(dead_code)]

use std::time::Duration;

use client::Client;
use protocol::batch::BatchBuilder;
use protocol::ops::group::{DescribeGroupResponse, GroupStart};
use protocol::ops::produce::{AckLevel, PartitionSelector};

/// The topic the traffic goes to.
pub const TOPIC: &str = "orders";
/// The stream group that commits on it.
pub const GROUP: &str = "billing";
/// Records produced to each partition: three batches of two to partition 0, one
/// batch of five to partition 1.
pub const PRODUCED: [u64; 2] = [6, 5];
/// Batches produced to each partition.
pub const BATCHES: [usize; 2] = [3, 1];
/// What the group commits on each partition.
pub const COMMITTED: [u64; 2] = [4, 1];

fn batch(records: usize) -> bytes::Bytes {
    let mut builder = BatchBuilder::new();
    for i in 0..records {
        let value = format!("record {i}");
        builder
            .push(1_700_000_000_000, None, Some(value.as_bytes()), &[])
            .unwrap();
    }
    builder.finish()
}

/// Creates [`TOPIC`] with two partitions, produces [`PRODUCED`] (durably), has
/// [`GROUP`] commit [`COMMITTED`], and returns what `DescribeGroup` says of it (what
/// `brokerctl groups describe` prints).
pub async fn produce_and_commit(client: &Client) -> DescribeGroupResponse {
    client.create_topic(TOPIC, 2, &[]).await.unwrap();
    let timeout = Duration::from_secs(30);
    let sizes: [&[usize]; 2] = [&[2, 2, 2], &[5]];
    for (partition, batches) in (0u32..).zip(sizes) {
        for &records in batches {
            client
                .produce_batch(
                    TOPIC,
                    PartitionSelector::Partition(partition),
                    AckLevel::Durable,
                    timeout,
                    batch(records),
                )
                .await
                .unwrap();
        }
    }
    let joined = client
        .join_group(
            GROUP,
            TOPIC,
            "",
            Duration::from_secs(30),
            GroupStart::Earliest,
        )
        .await
        .unwrap();
    let offsets = [(0, COMMITTED[0]), (1, COMMITTED[1])];
    client
        .commit_offsets(GROUP, &joined.member_id, joined.generation, TOPIC, &offsets)
        .await
        .unwrap();
    client.describe_group(GROUP).await.unwrap()
}

/// The value of the one sample named exactly `series` (name and labels as rendered),
/// if the text exposition has it.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.parse().ok()
    })
}

/// The labels of partition `partition` of [`TOPIC`] as the exposition renders them.
pub fn partition_labels(partition: u32) -> String {
    format!(r#"{{topic="{TOPIC}",partition="{partition}"}}"#)
}

/// The labels of [`GROUP`] on `partition` as the exposition renders them.
pub fn group_labels(partition: u32) -> String {
    format!(r#"{{group="{GROUP}",topic="{TOPIC}",partition="{partition}"}}"#)
}
