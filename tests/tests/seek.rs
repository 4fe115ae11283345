//! Seeking by time, as a user does it: records produced with known timestamps, read
//! back with `brokerctl consume --from TIME` (an RFC 3339 time or a time ago), directly
//! and as a group member, and through the client's `offsets_for_time` and
//! `PartitionReader::seek_to_time`.

use std::time::{SystemTime, UNIX_EPOCH};

use client::{Client, ProducerConfig, Record};
use integration_tests::{brokerctl, Brokerd};

/// 2026-12-01T10:00:00Z in milliseconds since the epoch.
const TEN_O_CLOCK_MS: i64 = 1_796_119_200_000;
const HOUR_MS: i64 = 3_600_000;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Produces `(timestamp_ms, value)` records to partition 0 of `topic`, durably.
async fn produce_at(client: &Client, topic: &str, records: &[(i64, &str)]) {
    let producer = client
        .producer(topic, ProducerConfig::default())
        .await
        .unwrap();
    let mut acks = Vec::new();
    for (timestamp_ms, value) in records {
        let record = Record::new(value.to_string())
            .with_timestamp_ms(*timestamp_ms)
            .with_partition(0);
        acks.push(producer.send(record).await.unwrap());
    }
    for ack in acks {
        ack.await.unwrap();
    }
    producer.close().await.unwrap();
}

/// `brokerctl consume` with `args`, which must succeed: its output lines.
fn consume(addr: &str, args: &[&str]) -> Vec<String> {
    let (ok, out, err) = brokerctl(addr, args, "");
    assert!(ok, "brokerctl {args:?} failed: {err}");
    out.lines().map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_from_an_rfc3339_time_starts_at_the_first_record_stamped_at_or_after_it() {
    let broker = Brokerd::start();
    let addr = broker.addr().to_string();
    let client = Client::connect(addr.clone()).await.unwrap();
    client.create_topic("events", 2, &[]).await.unwrap();
    let records = [
        (TEN_O_CLOCK_MS - HOUR_MS, "nine"),
        (TEN_O_CLOCK_MS, "ten"),
        (TEN_O_CLOCK_MS + HOUR_MS, "eleven"),
    ];
    produce_at(&client, "events", &records).await;

    let from = |time: &str| {
        consume(
            &addr,
            &["consume", "events", "--from", time, "--timeout-ms", "500"],
        )
    };
    assert_eq!(from("2026-12-01T10:00:00Z"), ["ten", "eleven"]);
    assert_eq!(from("2026-12-01T11:00:00+01:00"), ["ten", "eleven"]);
    assert_eq!(from("2026-12-01T10:00:00.001Z"), ["eleven"]);
    assert_eq!(from("2000-01-01T00:00:00Z"), ["nine", "ten", "eleven"]);
    assert!(
        from("2030-01-01T00:00:00Z").is_empty(),
        "past the last record: the end"
    );

    // A group with no commits starts there, and then commits what it printed.
    let out = consume(
        &addr,
        &[
            "consume",
            "events",
            "--group",
            "billing",
            "--from",
            "2026-12-01T10:30:00Z",
            "--count",
            "1",
        ],
    );
    assert_eq!(out, ["eleven"]);
    let committed = client.fetch_offsets("billing", "events").await.unwrap();
    assert_eq!(committed[0].offset, Some(3));

    // The client's own calls give the same answers.
    let offsets = client
        .offsets_for_time("events", &[0, 1], TEN_O_CLOCK_MS)
        .await
        .unwrap();
    assert_eq!(offsets, [(0, 1), (1, 0)], "partition 1 is empty: its end");
    let mut reader = client.partition_reader("events", &[(0, 0)]);
    reader.seek_to_time(TEN_O_CLOCK_MS + 1).await.unwrap();
    let record = reader.next().await.unwrap();
    assert_eq!(record.value.as_deref(), Some(&b"eleven"[..]));

    let (ok, _, err) = brokerctl(&addr, &["consume", "events", "--from", "yesterday"], "");
    assert!(!ok);
    assert!(
        err.contains("an RFC 3339 time") && err.contains("\"yesterday\""),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_from_a_time_ago_counts_back_from_now() {
    let broker = Brokerd::start();
    let addr = broker.addr().to_string();
    let client = Client::connect(addr.clone()).await.unwrap();
    client.create_topic("events", 1, &[]).await.unwrap();
    let now = now_ms();
    let minute = 60_000;
    let records = [
        (now - 2 * 24 * HOUR_MS, "two days ago"),
        (now - 2 * HOUR_MS, "two hours ago"),
        (now - 30 * minute, "half an hour ago"),
        (now - 5 * minute, "five minutes ago"),
    ];
    produce_at(&client, "events", &records).await;
    let from = |ago: &str| {
        consume(
            &addr,
            &["consume", "events", "--from", ago, "--timeout-ms", "500"],
        )
    };
    assert_eq!(from("-10m"), ["five minutes ago"]);
    assert_eq!(from("-1h"), ["half an hour ago", "five minutes ago"]);
    assert_eq!(from("-3d").len(), 4);
    assert_eq!(from("-1d").len(), 3);
    assert_eq!(from("-10800s").len(), 3, "seconds count too");
    let out = consume(
        &addr,
        &["consume", "events", "--from=-40m", "--timeout-ms", "500"],
    );
    assert_eq!(out, ["half an hour ago", "five minutes ago"]);
}
