//! Produce and consume through consumer groups, end to end against the real brokerd.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use client::{Client, ConsumerConfig, ConsumerRecord, ProducerConfig, Record};
use integration_tests::Brokerd;
use tokio::time::{timeout, Instant};

const DEADLINE: Duration = Duration::from_secs(120);

fn consumer_config() -> ConsumerConfig {
    ConsumerConfig::default()
        .auto_commit(None)
        .session_timeout(Duration::from_secs(3))
        .fetch_max_wait(Duration::from_millis(100))
}

/// Sends `count` records numbered from `first`, keyed so they spread over partitions;
/// returns where each landed.
async fn produce(client: &Client, topic: &str, first: u64, count: u64) -> HashMap<u64, (u32, u64)> {
    let producer = client
        .producer(topic, ProducerConfig::default())
        .await
        .unwrap();
    let mut pending = Vec::with_capacity(count as usize);
    for n in first..first + count {
        let record = Record::new(n.to_string()).with_key(format!("key-{}", n % 97));
        pending.push((n, producer.send(record).await.unwrap()));
    }
    producer.flush().await.unwrap();
    let mut placed = HashMap::new();
    for (n, future) in pending {
        let meta = future.await.unwrap();
        placed.insert(n, (meta.partition, meta.offset.unwrap()));
    }
    producer.close().await.unwrap();
    placed
}

fn number(record: &ConsumerRecord) -> u64 {
    std::str::from_utf8(record.value.as_deref().unwrap())
        .unwrap()
        .parse()
        .unwrap()
}

/// Reads until `count` records arrived (or the deadline passes).
async fn take(consumer: &mut client::Consumer, count: usize) -> Vec<ConsumerRecord> {
    let mut out = Vec::with_capacity(count);
    let deadline = Instant::now() + DEADLINE;
    while out.len() < count {
        let record = timeout(deadline - Instant::now(), consumer.next())
            .await
            .expect("records in time")
            .unwrap();
        out.push(record);
    }
    out
}

fn assert_in_order_per_partition(records: &[ConsumerRecord]) {
    let mut last: HashMap<u32, u64> = HashMap::new();
    for r in records {
        if let Some(previous) = last.insert(r.partition, r.offset) {
            assert!(
                r.offset > previous,
                "partition {} went from {previous} to {}",
                r.partition,
                r.offset
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_messages_through_a_group_exactly_once_in_order() {
    const MESSAGES: u64 = 100_000;
    let broker = Brokerd::start();
    let client = Client::connect(broker.addr()).await.unwrap();
    client.create_topic("events", 4, &[]).await.unwrap();
    let placed = produce(&client, "events", 0, MESSAGES).await;
    let partitions: HashSet<u32> = placed.values().map(|(p, _)| *p).collect();
    assert_eq!(partitions.len(), 4, "keys spread over all partitions");
    for (n, (partition, _)) in &placed {
        let key = format!("key-{}", n % 97);
        assert_eq!(
            *partition,
            client::protocol::ops::produce::partition_for_key(key.as_bytes(), 4)
        );
    }

    let mut consumer = client
        .consumer("events", "readers", consumer_config())
        .await
        .unwrap();
    let records = take(&mut consumer, MESSAGES as usize).await;
    consumer.commit().await.unwrap();
    let seen: HashSet<u64> = records.iter().map(number).collect();
    assert_eq!(seen.len(), MESSAGES as usize, "no duplicates");
    assert!(seen.iter().all(|n| *n < MESSAGES));
    for r in &records {
        assert_eq!(
            placed[&number(r)],
            (r.partition, r.offset),
            "each record where the producer was told"
        );
    }
    assert_in_order_per_partition(&records);
    consumer.close().await.unwrap();

    let described = client.describe_group("readers").await.unwrap();
    assert!(
        described.partitions.iter().all(|p| p.lag == 0),
        "{described:?}"
    );
    assert_eq!(
        described
            .partitions
            .iter()
            .map(|p| p.committed_offset.unwrap())
            .sum::<u64>(),
        MESSAGES
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_fan_out_members_share_and_a_leaver_hands_over_without_redelivery() {
    let broker = Brokerd::start();
    let client = Client::connect(broker.addr()).await.unwrap();
    client.create_topic("orders", 4, &[]).await.unwrap();

    // Group "b" has two members, both joined before anything is produced.
    let mut b1 = client
        .consumer("orders", "b", consumer_config())
        .await
        .unwrap();
    let mut b2 = client
        .consumer("orders", "b", consumer_config())
        .await
        .unwrap();
    // Wait until the broker has handed two partitions to each member, and both
    // consumers have applied that (polling `next` applies it; there is no data yet,
    // so nothing is consumed).
    let deadline = Instant::now() + DEADLINE;
    loop {
        assert!(Instant::now() < deadline, "rebalance to 2 + 2 partitions");
        let group = client.describe_group("b").await.unwrap();
        let told = |member_id: String| {
            group
                .members
                .iter()
                .find(|m| m.member_id == member_id)
                .map(|m| m.partitions.clone())
        };
        let settled =
            group.members.len() == 2 && group.members.iter().all(|m| m.partitions.len() == 2);
        if settled
            && told(b1.member_id()) == Some(b1.assignment())
            && told(b2.member_id()) == Some(b2.assignment())
        {
            break;
        }
        let _ = timeout(Duration::from_millis(50), b1.next()).await;
        let _ = timeout(Duration::from_millis(50), b2.next()).await;
    }
    let (b1_parts, b2_parts): (HashSet<u32>, HashSet<u32>) = (
        b1.assignment().into_iter().collect(),
        b2.assignment().into_iter().collect(),
    );
    assert!(b1_parts.is_disjoint(&b2_parts));

    produce(&client, "orders", 0, 2000).await;

    // Group "a", a single member, receives everything.
    let mut a = client
        .consumer("orders", "a", consumer_config())
        .await
        .unwrap();
    let all: HashSet<u64> = take(&mut a, 2000).await.iter().map(number).collect();
    assert_eq!(all.len(), 2000);

    // In group "b" every message goes to exactly one member.
    let b1_count = client
        .describe_topic("orders")
        .await
        .unwrap()
        .partitions
        .iter()
        .filter(|p| b1_parts.contains(&p.partition))
        .map(|p| p.end_offset)
        .sum::<u64>() as usize;
    let from_b1 = take(&mut b1, b1_count).await;
    let from_b2 = take(&mut b2, 2000 - b1_count).await;
    assert!(from_b1.iter().all(|r| b1_parts.contains(&r.partition)));
    assert!(from_b2.iter().all(|r| b2_parts.contains(&r.partition)));
    let b1_set: HashSet<u64> = from_b1.iter().map(number).collect();
    let b2_set: HashSet<u64> = from_b2.iter().map(number).collect();
    assert!(b1_set.is_disjoint(&b2_set));
    assert_eq!(b1_set.len() + b2_set.len(), 2000);
    b1.commit().await.unwrap();
    b2.commit().await.unwrap();

    // b2 leaves; b1 takes over its partitions, starting at b2's committed offsets.
    b2.close().await.unwrap();
    produce(&client, "orders", 2000, 1000).await;
    let rest = take(&mut b1, 1000).await;
    let rest_set: HashSet<u64> = rest.iter().map(number).collect();
    assert_eq!(
        rest_set,
        (2000..3000).collect::<HashSet<u64>>(),
        "exactly the new messages, nothing committed again"
    );
    assert_eq!(b1.assignment().len(), 4);
    b1.commit().await.unwrap();
    b1.close().await.unwrap();
    a.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_stops_heartbeating_is_expired_and_its_partitions_move() {
    let broker = Brokerd::start();
    let client = Client::connect(broker.addr()).await.unwrap();
    client.create_topic("jobs", 2, &[]).await.unwrap();
    // A raw member that joins and then goes silent.
    let joined = client
        .join_group(
            "workers",
            "jobs",
            "",
            Duration::from_secs(1),
            client::protocol::ops::group::GroupStart::Earliest,
        )
        .await
        .unwrap();
    let mut live = client
        .consumer("jobs", "workers", consumer_config())
        .await
        .unwrap();
    produce(&client, "jobs", 0, 100).await;
    // Once the silent member's session (1 s) expires, the live one owns both partitions
    // and receives all 100 messages.
    let records = take(&mut live, 100).await;
    assert_eq!(
        records.iter().map(number).collect::<HashSet<_>>().len(),
        100
    );
    let described = client.describe_group("workers").await.unwrap();
    assert!(
        described
            .members
            .iter()
            .all(|m| m.member_id != joined.member_id),
        "expired"
    );
    live.close().await.unwrap();
}
