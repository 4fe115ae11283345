//! Group administration through brokerctl, as an operator runs it: `groups` with its
//! LAG column, `groups reset-offsets`, `groups purge`, `groups delete`.

use std::time::Duration;

use client::protocol::ops::group::GroupStart;
use client::{Client, ProducerConfig, QueueConsumerConfig, Record};
use integration_tests::{brokerctl, Brokerd};
use tokio::time::timeout;

const DEADLINE: Duration = Duration::from_secs(30);
const SESSION: Duration = Duration::from_secs(10);
/// 2030-01-01T00:00:00Z: records are stamped a minute apart from here.
const BASE_MS: i64 = 1_893_456_000_000;

/// Four records on partition 0 (stamped 00:00, 00:01, 00:02, 00:03 of 2030-01-01)
/// and two on partition 1.
async fn produce(client: &Client) {
    let producer = client
        .producer("events", ProducerConfig::default())
        .await
        .unwrap();
    let mut acks = Vec::new();
    for (partition, count) in [(0, 4), (1, 2)] {
        for i in 0..count {
            let record = Record::new(format!("{partition}-{i}"))
                .with_partition(partition)
                .with_timestamp_ms(BASE_MS + i64::from(i) * 60_000);
            acks.push(producer.send(record).await.unwrap());
        }
    }
    for ack in acks {
        ack.await.unwrap();
    }
    producer.close().await.unwrap();
}

/// Runs brokerctl, expecting success; returns its stdout.
fn ok(addr: &str, args: &[&str]) -> String {
    let (ok, out, err) = brokerctl(addr, args, "");
    assert!(ok, "brokerctl {args:?} failed: {err}");
    out
}

/// Runs brokerctl, expecting failure; returns its stderr.
fn refused(addr: &str, args: &[&str]) -> String {
    let (ok, out, err) = brokerctl(addr, args, "");
    assert!(!ok, "brokerctl {args:?} succeeded: {out}");
    err
}

/// The cells of the row of `group` in `brokerctl groups`.
fn listed(addr: &str, group: &str) -> Option<Vec<String>> {
    let out = ok(addr, &["groups"]);
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next()?.split_whitespace().collect();
    assert_eq!(
        header,
        ["GROUP", "TOPIC", "MODE", "MEMBERS", "GENERATION", "LAG"]
    );
    lines
        .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
        .find(|cells| cells[0] == group)
}

async fn committed(client: &Client, group: &str) -> Vec<Option<u64>> {
    let offsets = client.fetch_offsets(group, "events").await.unwrap();
    offsets.iter().map(|o| o.offset).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokerctl_resets_a_stream_groups_offsets_by_position_and_time_only_when_it_is_empty() {
    let broker = Brokerd::start();
    let addr = broker.addr();
    let client = Client::connect(addr).await.unwrap();
    client.create_topic("events", 2, &[]).await.unwrap();
    produce(&client).await;
    let joined = client
        .join_group("readers", "events", "", SESSION, GroupStart::Earliest)
        .await
        .unwrap();
    let offsets = [(0, 4), (1, 2)];
    client
        .commit_offsets(
            "readers",
            &joined.member_id,
            joined.generation,
            "events",
            &offsets,
        )
        .await
        .unwrap();
    assert_eq!(
        listed(addr, "readers").unwrap(),
        ["readers", "events", "stream", "1", "1", "0"]
    );

    let err = refused(
        addr,
        &["groups", "reset-offsets", "readers", "--to", "earliest"],
    );
    assert!(err.contains("1 active member(s)"), "{err}");
    client
        .leave_group("readers", &joined.member_id)
        .await
        .unwrap();

    let out = ok(
        addr,
        &["groups", "reset-offsets", "readers", "--to", "earliest"],
    );
    assert_eq!(
        out,
        "reset group readers on topic events\n\nPARTITION  OFFSET\n        0       0\n        1       0\n"
    );
    assert_eq!(committed(&client, "readers").await, [Some(0), Some(0)]);
    assert_eq!(
        listed(addr, "readers").unwrap()[5],
        "6",
        "the lag of all six"
    );

    let to = |args: &[&str]| {
        let mut all = vec!["groups", "reset-offsets", "readers"];
        all.extend_from_slice(args);
        ok(addr, &all)
    };
    to(&["--to", "3", "--partition", "0"]);
    assert_eq!(committed(&client, "readers").await, [Some(3), Some(0)]);
    to(&["--to", "99", "--partition", "0"]);
    assert_eq!(
        committed(&client, "readers").await,
        [Some(4), Some(0)],
        "clamped to the end"
    );
    to(&["--to", "2030-01-01T00:01:00Z", "--partition", "0"]);
    assert_eq!(
        committed(&client, "readers").await,
        [Some(1), Some(0)],
        "the record at 00:01"
    );
    to(&["--to", "2030-01-01T01:01:30+01:00"]);
    assert_eq!(
        committed(&client, "readers").await,
        [Some(2), Some(2)],
        "the first record at or after 00:01:30 UTC; none on partition 1, so its end"
    );
    let out = to(&["--to", "latest", "--json"]);
    assert!(
        out.contains(r#""offsets":[{"partition":0,"offset":4},{"partition":1,"offset":2}]"#),
        "{out}"
    );
    assert_eq!(listed(addr, "readers").unwrap()[5], "0");

    let err = refused(
        addr,
        &["groups", "reset-offsets", "readers", "--to", "yesterday"],
    );
    assert!(err.contains("RFC 3339"), "{err}");
    let err = refused(
        addr,
        &[
            "groups",
            "reset-offsets",
            "readers",
            "--to",
            "0",
            "--topic",
            "other",
        ],
    );
    assert!(err.contains("consumes topic \"events\""), "{err}");
    let err = refused(
        addr,
        &[
            "groups",
            "reset-offsets",
            "readers",
            "--to",
            "0",
            "--partition",
            "7",
        ],
    );
    assert!(err.contains("partition"), "{err}");
    let err = refused(addr, &["groups", "reset-offsets", "nobody", "--to", "0"]);
    assert!(err.contains("does not exist"), "{err}");

    // A group that does not exist yet gets its offsets (and becomes a stream group).
    ok(
        addr,
        &[
            "groups",
            "reset-offsets",
            "fresh",
            "--to",
            "earliest",
            "--topic",
            "events",
        ],
    );
    assert_eq!(
        listed(addr, "fresh").unwrap(),
        ["fresh", "events", "stream", "0", "0", "6"]
    );
    let as_queue = client
        .join_queue_group("fresh", "events", "", SESSION, &[])
        .await;
    assert!(as_queue.is_err(), "it is a stream group now");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokerctl_purges_a_queue_group_to_the_end_and_deletes_groups() {
    let broker = Brokerd::start();
    let addr = broker.addr();
    let client = Client::connect(addr).await.unwrap();
    client.create_topic("events", 2, &[]).await.unwrap();
    produce(&client).await;
    let config = QueueConsumerConfig {
        max_in_flight: 1,
        ..QueueConsumerConfig::default()
    };
    let mut workers = client
        .queue_consumer("events", "workers", config.clone())
        .await
        .unwrap();
    let taken = timeout(DEADLINE, workers.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        listed(addr, "workers").unwrap()[..4],
        ["workers", "events", "queue", "1"]
    );
    assert_eq!(
        listed(addr, "workers").unwrap()[5],
        "6",
        "nothing acked yet"
    );

    let err = refused(addr, &["groups", "purge", "workers"]);
    assert!(err.contains("active member(s)"), "{err}");
    let err = refused(addr, &["groups", "delete", "workers"]);
    assert!(err.contains("active member(s)"), "{err}");
    let err = refused(
        addr,
        &["groups", "reset-offsets", "workers", "--to", "latest"],
    );
    assert!(err.contains("queue group"), "{err}");
    taken.ack().await.unwrap();
    workers.close().await.unwrap();

    let out = ok(addr, &["groups", "purge", "workers"]);
    assert_eq!(
        out,
        "purged group workers: 5 message(s) dropped; it starts at the end\n"
    );
    assert_eq!(listed(addr, "workers").unwrap()[5], "0");
    let described = client.describe_group("workers").await.unwrap();
    let floors: Vec<Option<u64>> = described
        .partitions
        .iter()
        .map(|p| p.committed_offset)
        .collect();
    assert_eq!(floors, [Some(4), Some(2)]);

    // Only what comes after the purge is delivered, as a first attempt.
    let producer = client
        .producer("events", ProducerConfig::default())
        .await
        .unwrap();
    let ack = producer
        .send(Record::new("after").with_partition(1))
        .await
        .unwrap();
    ack.await.unwrap();
    producer.close().await.unwrap();
    let mut workers = client
        .queue_consumer("events", "workers", config)
        .await
        .unwrap();
    let next = timeout(DEADLINE, workers.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (next.record.partition, next.record.offset, next.attempt),
        (1, 2, 1)
    );
    next.ack().await.unwrap();
    workers.close().await.unwrap();

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
            &[(0, 1)],
        )
        .await
        .unwrap();
    let err = refused(addr, &["groups", "purge", "readers"]);
    assert!(err.contains("stream group"), "{err}");
    client
        .leave_group("readers", &joined.member_id)
        .await
        .unwrap();

    for group in ["readers", "workers"] {
        assert_eq!(
            ok(addr, &["groups", "delete", group]),
            format!("deleted group {group}\n")
        );
        assert_eq!(listed(addr, group), None);
        let err = refused(addr, &["groups", "delete", group]);
        assert!(err.contains("does not exist"), "{err}");
    }
    assert_eq!(
        committed(&client, "readers").await,
        [None, None],
        "its commits went with it"
    );
    let rejoined = client
        .join_queue_group("readers", "events", "", SESSION, &[])
        .await;
    assert!(rejoined.is_ok(), "the name is free: {rejoined:?}");
}

#[tokio::test]
async fn a_group_left_empty_for_the_retention_is_deleted_and_one_with_a_member_kept() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("brokerd.toml");
    std::fs::write(&config, "[groups]\nempty_group_retention_ms = 1000\n").unwrap();
    let broker = Brokerd::start_with(&["--config", config.to_str().unwrap()]);
    let addr = broker.addr();
    let client = Client::connect(addr).await.unwrap();
    client.create_topic("events", 2, &[]).await.unwrap();
    produce(&client).await;
    for group in ["old", "kept"] {
        let joined = client
            .join_group(group, "events", "", SESSION, GroupStart::Earliest)
            .await
            .unwrap();
        client
            .commit_offsets(
                group,
                &joined.member_id,
                joined.generation,
                "events",
                &[(0, 4)],
            )
            .await
            .unwrap();
        if group == "old" {
            client.leave_group(group, &joined.member_id).await.unwrap();
        }
    }
    // Sweeps come every second for a retention of one: the empty group goes within
    // about two, the one with a member (inside its 10 s session) stays.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while listed(addr, "old").is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the empty group was kept"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(listed(addr, "kept").unwrap()[3], "1", "a member, so kept");
    assert_eq!(
        committed(&client, "old").await,
        [None, None],
        "its offsets went with it"
    );
}
