//! What a group is survives a restart: its mode, its offsets and its join overrides;
//! and a deleted topic takes its groups and their queue state with it.

use std::time::Duration;

use client::protocol::ops::group::{GroupMode, GroupStart};
use client::{Client, ClientError, ProducerConfig, QueueConsumerConfig, Record};
use integration_tests::{brokerctl, Brokerd};
use tokio::time::{timeout, Instant};

const DEADLINE: Duration = Duration::from_secs(30);
const SESSION: Duration = Duration::from_secs(10);

async fn produce(client: &Client, topic: &str, values: &[&str]) {
    let producer = client
        .producer(topic, ProducerConfig::default())
        .await
        .unwrap();
    let mut acks = Vec::new();
    for value in values {
        acks.push(producer.send(Record::new(value.to_string())).await.unwrap());
    }
    for ack in acks {
        ack.await.unwrap();
    }
    producer.close().await.unwrap();
}

/// The end offset of partition 0 of `topic`, or `None` if there is no such topic.
async fn end_of(client: &Client, topic: &str) -> Option<u64> {
    let described = client.describe_topic(topic).await.ok()?;
    Some(described.partitions[0].end_offset)
}

async fn wait_until_end(client: &Client, topic: &str, end: u64) {
    let deadline = Instant::now() + DEADLINE;
    while end_of(client, topic).await != Some(end) {
        assert!(Instant::now() < deadline, "{topic} never reached {end}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn refusal(result: Result<impl std::fmt::Debug, ClientError>) -> String {
    match result {
        Err(ClientError::Server { message, .. }) => message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_and_queue_groups_keep_their_modes_offsets_and_overrides_across_a_restart() {
    let mut broker = Brokerd::start();
    let client = Client::connect(broker.addr()).await.unwrap();
    client.create_topic("events", 1, &[]).await.unwrap();
    // The topic retries three times into jobs.dlq; the group's join says: once, into
    // jobs.failed.
    let topic_config = [("max_delivery_attempts", "3"), ("retry_backoff_ms", "1")];
    client.create_topic("jobs", 1, &topic_config).await.unwrap();
    produce(&client, "events", &["e0", "e1", "e2", "e3"]).await;
    produce(&client, "jobs", &["j0"]).await;

    let joined = client
        .join_group("readers", "events", "", SESSION, GroupStart::Earliest)
        .await
        .unwrap();
    client
        .commit_offsets(
            "readers",
            &joined.member_id,
            joined.generation,
            "events",
            &[(0, 3)],
        )
        .await
        .unwrap();
    client
        .leave_group("readers", &joined.member_id)
        .await
        .unwrap();

    let overrides = vec![
        ("max_delivery_attempts".to_string(), "1".to_string()),
        ("dead_letter_topic".to_string(), "jobs.failed".to_string()),
    ];
    let config = QueueConsumerConfig {
        max_in_flight: 1,
        overrides,
        ..QueueConsumerConfig::default()
    };
    let mut workers = client
        .queue_consumer("jobs", "workers", config)
        .await
        .unwrap();
    let first = timeout(DEADLINE, workers.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    first.nack("no").await.unwrap();
    wait_until_end(&client, "jobs.failed", 1).await;
    workers.close().await.unwrap();

    broker.restart();
    let client = Client::connect(broker.addr()).await.unwrap();

    let stream_as_queue = client
        .join_queue_group("readers", "events", "", SESSION, &[])
        .await;
    assert!(
        refusal(stream_as_queue).contains("is a stream group"),
        "the stream group is still a stream group"
    );
    let queue_as_stream = client
        .join_group("workers", "jobs", "", SESSION, GroupStart::Earliest)
        .await;
    assert!(
        refusal(queue_as_stream).contains("is a queue group"),
        "the queue group is still a queue group"
    );

    let offsets = client.fetch_offsets("readers", "events").await.unwrap();
    assert_eq!(offsets[0].offset, Some(3), "the stream group's commit");
    let joined = client
        .join_group("readers", "events", "", SESSION, GroupStart::Latest)
        .await
        .unwrap();
    assert_eq!(joined.partitions, [0]);
    let offsets = client.fetch_offsets("readers", "events").await.unwrap();
    assert_eq!(
        offsets[0].offset,
        Some(3),
        "a commit is not pinned over by latest"
    );

    // Rejoined without overrides, the queue group keeps those of its first join: the
    // next message is dead-lettered after one attempt, into jobs.failed.
    produce(&client, "jobs", &["j1"]).await;
    let config = QueueConsumerConfig {
        max_in_flight: 1,
        ..QueueConsumerConfig::default()
    };
    let mut workers = client
        .queue_consumer("jobs", "workers", config)
        .await
        .unwrap();
    let second = timeout(DEADLINE, workers.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(second.record.offset, 1, "the first stays dead-lettered");
    second.nack("no").await.unwrap();
    wait_until_end(&client, "jobs.failed", 2).await;
    assert_eq!(
        end_of(&client, "jobs.dlq").await,
        None,
        "the topic's dlq unused"
    );
    let deadline = Instant::now() + DEADLINE;
    loop {
        let described = client.describe_group("workers").await.unwrap();
        assert_eq!(described.mode, GroupMode::Queue);
        let counts = described.partitions[0].queue.unwrap();
        if counts.dead_lettered == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "settled: {counts:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    workers.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_topic_must_be_a_topic_the_broker_can_append_to() {
    let broker = Brokerd::start();
    let addr = broker.addr();
    for (value, says) in [
        ("__x", "reserved for the broker's internal topics"),
        ("no spaces", "invalid topic name"),
        ("jobs", "is the topic itself"),
    ] {
        let config = format!("dead_letter_topic={value}");
        let (ok, _, err) = brokerctl(
            addr,
            &[
                "topics",
                "create",
                "jobs",
                "--partitions",
                "1",
                "--config",
                &config,
            ],
            "",
        );
        assert!(!ok, "{config} accepted");
        assert!(
            err.contains("dead_letter_topic") && err.contains(says),
            "{config}: {err}"
        );
    }
    let client = Client::connect(addr).await.unwrap();
    client.create_topic("jobs", 1, &[]).await.unwrap();
    for value in ["__consumer_offsets", "jobs"] {
        let overrides = [("dead_letter_topic", value)];
        let joined = client
            .join_queue_group("workers", "jobs", "", SESSION, &overrides)
            .await;
        assert!(refusal(joined).contains("dead_letter_topic"), "{value}");
    }
    let (ok, out, _) = brokerctl(addr, &["groups"], "");
    assert!(ok);
    assert!(
        !out.contains("workers"),
        "a refused join creates no group: {out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_topic_deletes_its_groups_so_a_new_topic_of_that_name_starts_clean() {
    let mut broker = Brokerd::start();
    let client = Client::connect(broker.addr()).await.unwrap();
    client.create_topic("jobs", 1, &[]).await.unwrap();
    produce(&client, "jobs", &["a", "b", "c"]).await;
    let joined = client
        .join_group("readers", "jobs", "", SESSION, GroupStart::Earliest)
        .await
        .unwrap();
    client
        .commit_offsets(
            "readers",
            &joined.member_id,
            joined.generation,
            "jobs",
            &[(0, 2)],
        )
        .await
        .unwrap();
    let overrides = vec![("max_delivery_attempts".to_string(), "9".to_string())];
    let config = QueueConsumerConfig {
        max_in_flight: 1,
        overrides,
        ..QueueConsumerConfig::default()
    };
    let mut workers = client
        .queue_consumer("jobs", "workers", config)
        .await
        .unwrap();
    let taken = timeout(DEADLINE, workers.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    taken.ack().await.unwrap();
    // The workers hold "b" in flight while the topic goes.
    let _held = timeout(DEADLINE, workers.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    let (ok, _, err) = brokerctl(broker.addr(), &["topics", "delete", "jobs"], "");
    assert!(ok, "{err}");
    let (ok, out, _) = brokerctl(broker.addr(), &["groups"], "");
    assert!(ok);
    assert!(
        !out.contains("readers") && !out.contains("workers"),
        "{out}"
    );
    assert!(matches!(
        client
            .heartbeat("readers", &joined.member_id, joined.generation)
            .await,
        Err(ClientError::Server {
            code: client::ErrorCode::UnknownGroup,
            ..
        })
    ));
    drop(workers);

    // Created again, and across a restart: no group reattaches to the new topic.
    client.create_topic("jobs", 1, &[]).await.unwrap();
    produce(&client, "jobs", &["new"]).await;
    broker.restart();
    let client = Client::connect(broker.addr()).await.unwrap();
    let (ok, out, _) = brokerctl(broker.addr(), &["groups"], "");
    assert!(ok);
    assert!(
        !out.contains("readers") && !out.contains("workers"),
        "{out}"
    );
    let offsets = client.fetch_offsets("readers", "jobs").await.unwrap();
    assert_eq!(offsets[0].offset, None, "the old commit is gone");
    let as_queue = client
        .join_queue_group("readers", "jobs", "", SESSION, &[])
        .await;
    assert!(
        as_queue.is_ok(),
        "the name is free for any mode: {as_queue:?}"
    );
    let config = QueueConsumerConfig {
        max_in_flight: 1,
        ..QueueConsumerConfig::default()
    };
    let mut workers = client
        .queue_consumer("jobs", "workers", config)
        .await
        .unwrap();
    let first = timeout(DEADLINE, workers.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (first.record.offset, first.attempt),
        (0, 1),
        "a fresh queue"
    );
    first.ack().await.unwrap();
    let described = client.describe_group("workers").await.unwrap();
    assert_eq!(described.partitions[0].committed_offset, Some(1));
    workers.close().await.unwrap();
}
