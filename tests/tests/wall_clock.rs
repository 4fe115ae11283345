//! The real brokerd under libfaketime: the wall clock steps two hours forward, then
//! two hours back (an NTP step), while the monotonic clock runs on untouched. Nothing
//! that measures a duration may notice: no lease expires early or late, no service
//! instance is dropped, and retention deletes nothing it should keep.
//!
//! Debian's `faketime` package provides the library; `.ci/run` installs it. Without
//! it the test says so and passes, except under `CI=true`, where it fails.

use std::path::{Path, PathBuf};
use std::time::Duration;

use client::{Client, ProducerConfig, QueueConsumer, QueueConsumerConfig, Record, Registration};
use integration_tests::{brokerd_bin, Launch};
use tokio::time::{sleep, timeout, Instant};

const LIBFAKETIME: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
];

/// The lease of every job: long enough for the checks after the forward step, short
/// enough that the test waits for its real expiry.
const ACK_DEADLINE_MS: u64 = 4000;
const JOBS: u64 = 20;

fn libfaketime() -> Option<PathBuf> {
    let found = LIBFAKETIME.iter().map(PathBuf::from).find(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "libfaketime is missing ({LIBFAKETIME:?}); .ci/run installs Debian's faketime"
        );
        eprintln!("skipped: libfaketime is not installed (apt install faketime)");
    }
    found
}

/// Sets the broker's wall clock `offset` from the real one ("+2h", "-2h", "+0").
fn step_wall_clock(file: &Path, offset: &str) {
    std::fs::write(file, format!("{offset}\n")).unwrap();
}

async fn produce(client: &Client, topic: &str, count: u64, value_bytes: usize) {
    let producer = client
        .producer(topic, ProducerConfig::default())
        .await
        .unwrap();
    let mut sent = Vec::new();
    for i in 0..count {
        let mut value = format!("{topic}-{i}-").into_bytes();
        value.resize(value_bytes.max(value.len()), b'x');
        sent.push(producer.send(Record::new(value)).await.unwrap());
    }
    for done in sent {
        done.await.unwrap();
    }
    producer.close().await.unwrap();
}

async fn take(consumer: &mut QueueConsumer) -> client::QueueMessage {
    timeout(Duration::from_secs(30), consumer.next())
        .await
        .expect("a delivery in time")
        .unwrap()
        .expect("subscription open")
}

/// (in flight, waiting for a retry) of the group's only partition.
async fn queue_counts(client: &Client) -> (u64, u64) {
    let group = client.describe_group("workers").await.unwrap();
    let counts = group.partitions[0].queue.unwrap();
    (counts.in_flight, counts.waiting_retry)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wall_clock_steps_change_no_lease_instance_or_retention() {
    let Some(library) = libfaketime() else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let clock_file = scratch.path().join("faketime");
    step_wall_clock(&clock_file, "+0");
    let config = scratch.path().join("brokerd.toml");
    std::fs::write(&config, "[retention]\ncheck_interval_ms = 100\n").unwrap();
    let broker = Launch::new(brokerd_bin())
        .args([std::ffi::OsStr::new("--config"), config.as_os_str()])
        .env("LD_PRELOAD", library.as_os_str())
        .env("FAKETIME_TIMESTAMP_FILE", clock_file.as_os_str())
        .env("FAKETIME_NO_CACHE", "1")
        .env("DONT_FAKE_MONOTONIC", "1")
        .start()
        .unwrap();
    let client = Client::connect(broker.addr()).await.unwrap();

    // Acked, unconsumed data in sealed segments, kept for an hour.
    client
        .create_topic(
            "ledger",
            1,
            &[("segment_bytes", "4096"), ("retention_ms", "3600000")],
        )
        .await
        .unwrap();
    produce(&client, "ledger", 60, 400).await;
    // 20 jobs leased to a member that holds them without settling.
    let queue_config = [
        ("ack_deadline_ms", ACK_DEADLINE_MS.to_string()),
        ("retry_backoff_ms", "60000".to_string()),
        ("retry_jitter", "0".to_string()),
    ];
    let queue_config: Vec<(&str, &str)> =
        queue_config.iter().map(|(k, v)| (*k, v.as_str())).collect();
    client.create_topic("jobs", 1, &queue_config).await.unwrap();
    produce(&client, "jobs", JOBS, 10).await;
    let mut worker = client
        .queue_consumer("jobs", "workers", QueueConsumerConfig::default())
        .await
        .unwrap();
    let mut held = Vec::new();
    for _ in 0..JOBS {
        held.push(take(&mut worker).await);
    }
    let leased_at = Instant::now();
    // A healthy instance that heartbeats (its TTL is 3 s, a beat every second).
    let instance = client
        .register_instance(Registration {
            service: "billing".into(),
            instance_id: "billing-1".into(),
            address: "10.0.0.7:8080".into(),
            tags: Vec::new(),
            ttl: Duration::from_secs(3),
        })
        .await
        .unwrap();
    let sealed = client.describe_topic("ledger").await.unwrap().partitions[0].start_offset;
    assert_eq!(sealed, 0);

    // Two hours forward. Retention runs ten times a second; the dispatcher runs on
    // each new job; the registry expires on its own schedule.
    step_wall_clock(&clock_file, "+2h");
    sleep(Duration::from_millis(1500)).await;
    produce(&client, "jobs", 1, 10).await;
    held.push(take(&mut worker).await);
    assert!(
        leased_at.elapsed() < Duration::from_millis(ACK_DEADLINE_MS),
        "the checks run inside the leases (the machine is very slow; raise ACK_DEADLINE_MS)"
    );
    assert_eq!(
        queue_counts(&client).await,
        (JOBS + 1, 0),
        "+2h: no lease expired"
    );
    let ledger = &client.describe_topic("ledger").await.unwrap().partitions[0];
    assert_eq!(ledger.start_offset, 0, "+2h: retention deleted nothing");
    assert_eq!(ledger.end_offset, 60);
    let billing = client.discover("billing", &[]).await.unwrap();
    assert_eq!(
        billing.len(),
        1,
        "+2h: the heartbeating instance is still there"
    );

    // Two hours back: the leases still run out on time (they froze for two hours
    // when they ran on the wall clock), and the instance stays.
    step_wall_clock(&clock_file, "-2h");
    let deadline = Instant::now() + Duration::from_secs(30);
    while queue_counts(&client).await != (0, JOBS + 1) {
        assert!(
            Instant::now() < deadline,
            "-2h: the leases never expired: {:?}",
            queue_counts(&client).await
        );
        sleep(Duration::from_millis(100)).await;
    }
    let billing = client.discover("billing", &[]).await.unwrap();
    assert_eq!(
        billing.len(),
        1,
        "-2h: the heartbeating instance is still there"
    );
    let ledger = &client.describe_topic("ledger").await.unwrap().partitions[0];
    assert_eq!(ledger.start_offset, 0, "-2h: retention deleted nothing");

    drop(held);
    instance.close().await.unwrap();
    worker.close().await.unwrap();
}
