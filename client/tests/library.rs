//! The client library against a real brokerd.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Duration;

use client::protocol::ops::produce::partition_for_key;
use client::protocol::ops::subscribe::{StartPosition, SubscribeTarget};
use client::{
    AckLevel, Client, ClientConfig, ClientError, ConsumerConfig, ErrorCode, ProducerConfig, Record,
};
use integration_tests::Brokerd;

const WAIT: Duration = Duration::from_secs(30);

fn config() -> ClientConfig {
    ClientConfig::default()
        .client_name("client-tests")
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .reconnect_max_attempts(50)
}

async fn connect(broker: &Brokerd) -> Client {
    Client::connect_with(broker.addr(), config())
        .await
        .expect("connect")
}

/// Polls `check` until it returns `Some` or `timeout` passes.
async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn admin_round_trip() {
    let broker = Brokerd::start();
    let client = connect(&broker).await;

    client
        .create_topic("orders", 3, &[("retention_ms", "60000")])
        .await
        .unwrap();
    let err = client.create_topic("orders", 3, &[]).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::TopicExists), "{err}");
    let err = client
        .create_topic("bad", 1, &[("no_such_key", "1")])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidConfig), "{err}");

    let topics = client.list_topics(false).await.unwrap();
    let orders = topics.iter().find(|t| t.name == "orders").expect("listed");
    assert_eq!(orders.partitions, 3);
    assert_eq!(orders.messages, 0);

    let described = client.describe_topic("orders").await.unwrap();
    assert_eq!(described.partitions.len(), 3);
    assert!(described
        .config
        .iter()
        .any(|e| e.key == "retention_ms" && e.value == "60000"));
    assert!(described.partitions.iter().all(|p| p.end_offset == 0));

    let stats = client.server_stats().await.unwrap();
    assert!(stats.connections >= 1);
    assert!(client.list_groups().await.unwrap().is_empty());

    client.delete_topic("orders").await.unwrap();
    let err = client.describe_topic("orders").await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::UnknownTopic), "{err}");
}

#[tokio::test]
async fn keyed_producer_then_group_consumer_reads_everything_once_in_order() {
    const RECORDS: usize = 10_000;
    const PARTITIONS: u32 = 4;
    let broker = Brokerd::start();
    let client = connect(&broker).await;
    client
        .create_topic("events", PARTITIONS, &[])
        .await
        .unwrap();

    let producer = client
        .producer(
            "events",
            ProducerConfig::default().batch_max_bytes(16 * 1024),
        )
        .await
        .unwrap();
    let mut acks = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let key = format!("key-{}", i % 97);
        let record = Record::new(format!("value-{i}")).with_key(key.clone());
        acks.push((key, i, producer.send(record).await.unwrap()));
    }
    let mut stored: HashMap<(u32, u64), String> = HashMap::new();
    let mut last_per_key: HashMap<String, u64> = HashMap::new();
    for (key, i, ack) in acks {
        let meta = ack.await.expect("acknowledged");
        let offset = meta.offset.expect("durable acks carry offsets");
        assert_eq!(
            meta.partition,
            partition_for_key(key.as_bytes(), PARTITIONS)
        );
        // One key, one partition, in send order.
        if let Some(previous) = last_per_key.insert(key, offset) {
            assert!(offset > previous);
        }
        let fresh = stored.insert((meta.partition, offset), format!("value-{i}"));
        assert!(fresh.is_none(), "offset {offset} given twice");
    }
    producer.close().await.unwrap();
    let described = client.describe_topic("events").await.unwrap();
    let total: u64 = described.partitions.iter().map(|p| p.end_offset).sum();
    assert_eq!(total, RECORDS as u64);

    let config = ConsumerConfig::default()
        .auto_commit(None)
        .session_timeout(Duration::from_secs(5));
    let mut consumer = client.consumer("events", "readers", config).await.unwrap();
    assert_eq!(consumer.assignment(), [0, 1, 2, 3]);
    let mut next_expected: BTreeMap<u32, u64> = BTreeMap::new();
    for _ in 0..RECORDS {
        let record = tokio::time::timeout(WAIT, consumer.next())
            .await
            .expect("a record in time")
            .unwrap();
        let expected = next_expected.entry(record.partition).or_insert(0);
        assert_eq!(record.offset, *expected, "in order, no gaps, no repeats");
        *expected += 1;
        let value = stored.remove(&(record.partition, record.offset)).unwrap();
        assert_eq!(record.value.as_deref(), Some(value.as_bytes()));
        let key = record.key.clone().unwrap();
        assert_eq!(partition_for_key(&key, PARTITIONS), record.partition);
    }
    assert!(stored.is_empty());
    consumer.commit().await.unwrap();

    let committed = client.fetch_offsets("readers", "events").await.unwrap();
    for c in &committed {
        let end = described.partitions[c.partition as usize].end_offset;
        assert_eq!(c.offset, Some(end), "partition {}", c.partition);
    }
    let group = client.describe_group("readers").await.unwrap();
    assert!(group.partitions.iter().all(|p| p.lag == 0));
    assert_eq!(group.members.len(), 1);
    consumer.close().await.unwrap();
    let group = client.describe_group("readers").await.unwrap();
    assert!(group.members.is_empty(), "close leaves the group");
}

#[tokio::test]
async fn commit_never_passes_returned_records_and_a_new_member_resumes_there() {
    let broker = Brokerd::start();
    let client = connect(&broker).await;
    client.create_topic("jobs", 1, &[]).await.unwrap();
    let producer = client
        .producer("jobs", ProducerConfig::default())
        .await
        .unwrap();
    let mut acks = Vec::new();
    for i in 0..50 {
        acks.push(
            producer
                .send(Record::new(format!("job-{i}")))
                .await
                .unwrap(),
        );
    }
    for ack in acks {
        ack.await.unwrap();
    }

    let config = ConsumerConfig::default().auto_commit(None);
    let mut first = client
        .consumer("jobs", "workers", config.clone())
        .await
        .unwrap();
    for expected in 0..7 {
        assert_eq!(first.next().await.unwrap().offset, expected);
    }
    // One fetch brought all 50; only the 7 returned count.
    first.commit().await.unwrap();
    assert_eq!(first.positions(), [(0, 7)]);
    first.close().await.unwrap();
    let committed = client.fetch_offsets("workers", "jobs").await.unwrap();
    assert_eq!(committed[0].offset, Some(7));

    let mut second = client.consumer("jobs", "workers", config).await.unwrap();
    let record = second.next().await.unwrap();
    assert_eq!(record.offset, 7);
    assert_eq!(record.value.as_deref(), Some(&b"job-7"[..]));
    second.close().await.unwrap();
}

#[tokio::test]
async fn two_members_split_the_partitions_and_follow_the_rebalance() {
    const RECORDS: usize = 2_000;
    let broker = Brokerd::start();
    let client = connect(&broker).await;
    client.create_topic("shared", 4, &[]).await.unwrap();
    let producer = client
        .producer("shared", ProducerConfig::default())
        .await
        .unwrap();
    let mut acks = Vec::new();
    for i in 0..RECORDS {
        let record = Record::new(format!("{i}")).with_key(format!("k{i}"));
        acks.push(producer.send(record).await.unwrap());
    }
    for ack in acks {
        ack.await.unwrap();
    }

    let config = ConsumerConfig::default()
        .heartbeat_interval(Duration::from_millis(50))
        .auto_commit(Some(Duration::from_millis(100)))
        .fetch_max_bytes(4096);
    let mut a = client
        .consumer("shared", "pair", config.clone())
        .await
        .unwrap();
    let mut seen: HashSet<(u32, u64)> = HashSet::new();
    for _ in 0..100 {
        let r = a.next().await.unwrap();
        seen.insert((r.partition, r.offset));
    }
    a.commit().await.unwrap();
    let other_client = connect(&broker).await;
    let mut b = other_client
        .consumer("shared", "pair", config)
        .await
        .unwrap();
    assert!(
        b.assignment().is_empty(),
        "the newcomer's share is a's until a hands it over"
    );

    // Read with both until every record was seen (at least once: a rebalance may
    // hand over records that were returned but not yet committed).
    let poll = Duration::from_millis(100);
    let deadline = std::time::Instant::now() + WAIT;
    while seen.len() < RECORDS {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {RECORDS} records seen",
            seen.len()
        );
        // Each member drains what it has, until it has nothing for `poll`.
        for consumer in [&mut a, &mut b] {
            while let Ok(record) = tokio::time::timeout(poll, consumer.next()).await {
                let r = record.unwrap();
                seen.insert((r.partition, r.offset));
            }
        }
    }
    let (pa, pb) = (a.assignment(), b.assignment());
    assert!(!pa.is_empty() && !pb.is_empty(), "{pa:?} {pb:?}");
    assert!(pa.iter().all(|p| !pb.contains(p)), "{pa:?} {pb:?}");
    assert_eq!(pa.len() + pb.len(), 4);
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test]
async fn reconnects_after_the_broker_restarts() {
    let mut broker = Brokerd::start();
    let client = connect(&broker).await;
    client.create_topic("durable", 2, &[]).await.unwrap();
    let producer = client
        .producer("durable", ProducerConfig::default())
        .await
        .unwrap();
    let before = producer
        .send(Record::new("before").with_partition(1))
        .await
        .unwrap();
    assert_eq!(before.await.unwrap().offset, Some(0));

    broker.kill9();
    // With the broker gone, requests fail with a connection error, not a hang.
    let err = client
        .describe_topic("durable")
        .await
        .expect_err("broker is down");
    assert!(err.is_connection_error(), "{err}");

    broker.restart();
    let described = eventually(WAIT, || async {
        client.describe_topic("durable").await.ok()
    })
    .await;
    assert_eq!(described.partitions[1].end_offset, 1, "data survived");
    // The producer's task shares the client, so it reconnected too.
    let after = producer
        .send(Record::new("after").with_partition(1))
        .await
        .unwrap();
    assert_eq!(after.await.unwrap().offset, Some(1));
}

#[tokio::test]
async fn unreachable_broker_fails_with_a_clear_connect_error() {
    // Bind and drop a listener to get a port nothing listens on.
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let config = ClientConfig::default()
        .reconnect_backoff(Duration::from_millis(1), Duration::from_millis(5))
        .reconnect_max_attempts(3);
    let err = Client::connect_with(addr.clone(), config)
        .await
        .unwrap_err();
    match &err {
        ClientError::Connect { attempts, .. } => assert_eq!(*attempts, 3),
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains(&addr));
}

#[tokio::test]
async fn a_zero_heartbeat_interval_is_refused_before_joining() {
    let broker = Brokerd::start();
    let client = connect(&broker).await;
    client.create_topic("beats", 1, &[]).await.unwrap();
    let config = ConsumerConfig::default().heartbeat_interval(Duration::ZERO);
    let err = client.consumer("beats", "g", config).await.unwrap_err();
    assert!(matches!(err, ClientError::InvalidArgument(_)), "{err}");
    let config = client::QueueConsumerConfig {
        heartbeat_interval: Duration::ZERO,
        ..client::QueueConsumerConfig::default()
    };
    let err = client
        .queue_consumer("beats", "q", config)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::InvalidArgument(_)), "{err}");
    assert!(
        client.list_groups().await.unwrap().is_empty(),
        "neither joined"
    );
}

#[tokio::test]
async fn ack_none_and_explicit_partitions() {
    let broker = Brokerd::start();
    let client = connect(&broker).await;
    client.create_topic("fire", 3, &[]).await.unwrap();
    let producer = client
        .producer("fire", ProducerConfig::default().ack(AckLevel::None))
        .await
        .unwrap();
    let ack = producer
        .send(Record::new("x").with_partition(2))
        .await
        .unwrap();
    let meta = ack.await.unwrap();
    assert_eq!((meta.partition, meta.offset), (2, None));
    let err = producer
        .send(Record::new("x").with_partition(3))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::InvalidArgument(_)), "{err}");
    producer.flush().await.unwrap();
    let end = eventually(WAIT, || async {
        let d = client.describe_topic("fire").await.ok()?;
        (d.partitions[2].end_offset == 1).then_some(1)
    })
    .await;
    assert_eq!(end, 1);
}

#[tokio::test]
async fn subscription_receives_pushed_records() {
    let broker = Brokerd::start();
    let client = connect(&broker).await;
    client.create_topic("pushed", 1, &[]).await.unwrap();
    let producer = client
        .producer("pushed", ProducerConfig::default())
        .await
        .unwrap();
    let mut acks = Vec::new();
    for i in 0..20 {
        acks.push(producer.send(Record::new(format!("m{i}"))).await.unwrap());
    }
    for ack in acks {
        ack.await.unwrap();
    }
    let mut sub = client
        .subscribe(
            "pushed",
            SubscribeTarget::Partition(0),
            StartPosition::Offset(5),
            100,
            1 << 20,
        )
        .await
        .unwrap();
    let mut records = VecDeque::new();
    while records.len() < 15 {
        let delivery = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("a delivery in time")
            .expect("subscription open");
        let (from, to) = (delivery.from_offset, delivery.to_offset);
        client::decode_records(0, delivery.batches, from, Some(to), &mut records).unwrap();
    }
    let offsets: Vec<u64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (5..20).collect::<Vec<_>>());
    sub.unsubscribe().await.unwrap();
}

#[tokio::test]
async fn consumer_rejoins_and_resumes_after_the_broker_restarts() {
    let mut broker = Brokerd::start();
    let client = connect(&broker).await;
    client.create_topic("resume", 1, &[]).await.unwrap();
    let producer = client
        .producer("resume", ProducerConfig::default())
        .await
        .unwrap();
    let mut acks = Vec::new();
    for i in 0..10 {
        acks.push(producer.send(Record::new(format!("r{i}"))).await.unwrap());
    }
    for ack in acks {
        ack.await.unwrap();
    }
    let config = ConsumerConfig::default()
        .auto_commit(None)
        .heartbeat_interval(Duration::from_millis(50));
    let mut consumer = client
        .consumer("resume", "survivors", config)
        .await
        .unwrap();
    for expected in 0..5 {
        assert_eq!(consumer.next().await.unwrap().offset, expected);
    }
    consumer.commit().await.unwrap();

    broker.kill9();
    broker.restart();
    // Reading resumes where it stopped (errors while the broker is down are
    // expected; keep asking).
    let deadline = std::time::Instant::now() + WAIT;
    let record = loop {
        assert!(std::time::Instant::now() < deadline, "never resumed");
        let next = tokio::time::timeout(Duration::from_millis(200), consumer.next()).await;
        if let Ok(Ok(record)) = next {
            break record;
        }
    };
    assert_eq!(record.offset, 5);
    // The restarted broker forgot the group (groups live in memory); the heartbeat
    // task rejoined it, so the group has this member again and commits work.
    let group = eventually(WAIT, || async {
        let group = client.describe_group("survivors").await.ok()?;
        (group.members.len() == 1).then_some(group)
    })
    .await;
    assert_eq!(group.members[0].partitions, [0]);
    let deadline = std::time::Instant::now() + WAIT;
    while consumer.generation() != Some(group.generation)
        || consumer.member_id() != group.members[0].member_id
    {
        assert!(
            std::time::Instant::now() < deadline,
            "membership not applied"
        );
        let _ = tokio::time::timeout(Duration::from_millis(50), consumer.next()).await;
    }
    consumer.commit().await.unwrap();
    let mut committed = client.fetch_offsets("survivors", "resume").await.unwrap();
    if committed[0].offset < Some(6) {
        // The rejoin came after record 5 was returned: a new membership restarts the
        // partition at the committed offset (at-least-once), so record 5 comes again.
        let again = tokio::time::timeout(WAIT, consumer.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.offset, 5);
        consumer.commit().await.unwrap();
        committed = client.fetch_offsets("survivors", "resume").await.unwrap();
    }
    assert!(committed[0].offset >= Some(6), "{committed:?}");
    consumer.close().await.unwrap();
}

/// A consumer that rejoins after a broker restart (the broker forgot its member)
/// resumes from the records it returned, not from the older commit: a restart repeats
/// nothing this consumer already handed out, and its commit then records them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_rejoined_after_a_restart_resumes_where_it_got_to() {
    let mut broker = Brokerd::start();
    let client = connect(&broker).await;
    client.create_topic("r", 1, &[]).await.unwrap();
    let producer = client
        .producer("r", ProducerConfig::default())
        .await
        .unwrap();
    for i in 0..5 {
        producer
            .send(Record::new(format!("a{i}")))
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let config = ConsumerConfig::default()
        .auto_commit(None)
        .session_timeout(Duration::from_secs(3))
        .heartbeat_interval(Duration::from_millis(100));
    let mut consumer = client.consumer("r", "g", config).await.unwrap();
    for expected in 0..3u64 {
        let record = tokio::time::timeout(WAIT, consumer.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.offset, expected);
    }
    consumer.commit_offsets(&[(0, 1)]).await.unwrap(); // the commit lags behind
    let member = consumer.member_id();

    broker.restart();
    // Read on until the rejoin was applied, then two more: offsets 3, 4, 5, 6 once
    // each, never 1 or 2 again.
    producer
        .send(Record::new("b5"))
        .await
        .unwrap()
        .await
        .unwrap();
    producer
        .send(Record::new("b6"))
        .await
        .unwrap()
        .await
        .unwrap();
    let mut offsets = Vec::new();
    while offsets.len() < 4 {
        match tokio::time::timeout(WAIT, consumer.next()).await.unwrap() {
            Ok(record) => offsets.push(record.offset),
            Err(e) if e.is_connection_error() => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(offsets, [3, 4, 5, 6]);
    eventually(WAIT, || {
        let changed = consumer.member_id() != member;
        async move { changed.then_some(()) }
    })
    .await;
    // The next call applies the rejoin; nothing more to read, so it just waits.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), consumer.next())
            .await
            .is_err()
    );
    consumer.commit().await.unwrap();
    let committed = client.fetch_offsets("g", "r").await.unwrap();
    assert_eq!(
        committed[0].offset,
        Some(7),
        "the new member commits how far it got"
    );
    consumer.close().await.unwrap();
}

/// Closing a consumer whose member the broker forgot (it restarted, and the
/// heartbeat has not noticed yet) leaves nothing behind and is no error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_consumers_the_restarted_broker_forgot_succeeds() {
    let mut broker = Brokerd::start();
    let client = connect(&broker).await;
    client.create_topic("c", 1, &[]).await.unwrap();
    let slow = Duration::from_secs(20);
    let config = ConsumerConfig::default()
        .session_timeout(Duration::from_secs(60))
        .heartbeat_interval(slow);
    let consumer = client.consumer("c", "g", config).await.unwrap();
    let queue_config = client::QueueConsumerConfig {
        session_timeout: Duration::from_secs(60),
        heartbeat_interval: slow,
        ..client::QueueConsumerConfig::default()
    };
    let queue = client.queue_consumer("c", "q", queue_config).await.unwrap();
    broker.restart();
    consumer.close().await.unwrap();
    queue.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_given_back_is_not_committed_and_comes_again() {
    let broker = Brokerd::start();
    let client = connect(&broker).await;
    client.create_topic("gb", 1, &[]).await.unwrap();
    let producer = client
        .producer("gb", ProducerConfig::default())
        .await
        .unwrap();
    for i in 0..3 {
        producer
            .send(Record::new(format!("m{i}")))
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let config = ConsumerConfig::default().auto_commit(None);
    let mut consumer = client.consumer("gb", "g", config).await.unwrap();
    let mut records = Vec::new();
    for _ in 0..3 {
        records.push(
            tokio::time::timeout(WAIT, consumer.next())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let err = consumer.give_back(&records[1]).unwrap_err();
    assert!(matches!(err, ClientError::InvalidArgument(_)), "{err}");
    consumer.give_back(&records[2]).unwrap();
    assert_eq!(consumer.positions(), [(0, 2)]);
    consumer.commit().await.unwrap();
    assert_eq!(
        client.fetch_offsets("g", "gb").await.unwrap()[0].offset,
        Some(2)
    );
    let again = tokio::time::timeout(WAIT, consumer.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.offset, again.value), (2, records[2].value.clone()));
    consumer.close().await.unwrap();
}
