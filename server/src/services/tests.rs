//! The registry against its rules: TTLs, restarts, limits, compaction.

use super::*;
use crate::clock::ManualClock;
use crate::internal::COMPACT_AFTER_RECORDS;
use protocol::batch::{split_batches, BatchView};
use protocol::ops::registry::REGISTRY_TOPIC;

fn tag(k: &str, v: &str) -> ConfigEntry {
    ConfigEntry {
        key: k.into(),
        value: v.into(),
    }
}

#[tokio::test]
async fn instances_expire_after_their_ttl_and_the_view_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    {
        let topics = Topics::open(dir.path()).unwrap();
        let services = Services::open(&topics, clock.clone()).unwrap();
        for (id, zone) in [("a", "x"), ("b", "y"), ("c", "x")] {
            services
                .register(
                    "billing",
                    id,
                    &format!("{id}:80"),
                    vec![tag("zone", zone)],
                    5_000,
                )
                .await
                .unwrap();
        }
        assert_eq!(
            services
                .describe("billing", &[tag("zone", "x")])
                .instances
                .len(),
            2
        );
        clock.advance(4_000);
        services.heartbeat("billing", "a").unwrap();
        services.heartbeat("billing", "b").unwrap();
        clock.advance(1_500); // c is now 5.5 s without a heartbeat
        assert_eq!(services.expire().unwrap(), 1);
        let ids: Vec<String> = services
            .describe("billing", &[])
            .instances
            .into_iter()
            .map(|i| i.instance_id)
            .collect();
        assert_eq!(ids, ["a", "b"]);
        assert!(matches!(
            services.heartbeat("billing", "c"),
            Err(BrokerError::UnknownInstance { .. })
        ));
        services.deregister("billing", "b").await.unwrap();
        assert_eq!(
            services.list(),
            [ServiceSummary {
                service: "billing".into(),
                instances: 1
            }]
        );
        topics.close_all();
    }
    // Restart within a's TTL: a survives (with a fresh grace period), and the age
    // shown still counts from its last heartbeat, 2.5 s before the restart.
    clock.advance(1_000);
    let topics = Topics::open(dir.path()).unwrap();
    let services = Services::open(&topics, clock.clone()).unwrap();
    let age =
        |services: &Services| services.describe("billing", &[]).instances[0].since_heartbeat_ms;
    assert_eq!(services.describe("billing", &[]).instances.len(), 1);
    assert_eq!(age(&services), 2_500);
    clock.advance(4_000);
    assert_eq!(
        age(&services),
        6_500,
        "older than its TTL, yet within its grace"
    );
    assert_eq!(
        services.expire().unwrap(),
        0,
        "the grace is one TTL from the restart"
    );
    services.heartbeat("billing", "a").unwrap();
    assert_eq!(age(&services), 0);
    topics.close_all();
    drop(services);
    // Restart long after: a is expired, and the expiry is recorded.
    clock.advance(60_000);
    let topics = Topics::open(dir.path()).unwrap();
    let services = Services::open(&topics, clock).unwrap();
    assert!(services.describe("billing", &[]).instances.is_empty());
    assert!(services.list().is_empty());
    let partition = topics
        .get(REGISTRY_TOPIC)
        .unwrap()
        .partition(0)
        .unwrap()
        .clone();
    partition
        .wait_durable(partition.end_offset(), Duration::from_secs(10))
        .await
        .unwrap();
    let chunk = partition.read(partition.start_offset(), 1 << 20).unwrap();
    let last = split_batches(chunk.bytes).last().unwrap().unwrap();
    let view = BatchView::new(&last).unwrap();
    let record = view.records().last().unwrap().unwrap();
    let event = RegistryEvent::decode(last.slice_ref(record.value.unwrap())).unwrap();
    assert!(matches!(event, RegistryEvent::Expired { .. }), "{event:?}");
}

#[tokio::test]
async fn oversized_addresses_and_tags_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let topics = Topics::open(dir.path()).unwrap();
    let services = Services::open(&topics, Arc::new(ManualClock::new(1_000_000))).unwrap();
    let long = "x".repeat(MAX_TAG_BYTES + 1);
    let too_many: Vec<_> = (0..=MAX_TAGS).map(|i| tag(&i.to_string(), "v")).collect();
    for (address, tags) in [
        ("x".repeat(MAX_ADDRESS_BYTES + 1), vec![]),
        ("a:1".to_string(), vec![tag("zone", &long)]),
        ("a:1".to_string(), too_many),
    ] {
        let refused = services.register("s", "i", &address, tags, 5_000).await;
        assert!(
            matches!(refused, Err(BrokerError::InvalidRequest(_))),
            "{refused:?}"
        );
    }
    assert!(services.describe("s", &[]).instances.is_empty());
    let fitting: Vec<_> = (0..MAX_TAGS).map(|i| tag(&i.to_string(), "v")).collect();
    services
        .register("s", "i", "a:1", fitting, 5_000)
        .await
        .unwrap();
    assert_eq!(services.describe("s", &[]).instances.len(), 1);
}

#[tokio::test]
async fn compaction_marks_the_restated_view_as_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let topics = Topics::open(dir.path()).unwrap();
    let services = Services::open(&topics, Arc::new(ManualClock::new(1_000_000))).unwrap();
    services
        .register("s", "i", "a:1", vec![], 5_000)
        .await
        .unwrap();
    for _ in 0..COMPACT_AFTER_RECORDS {
        services.heartbeat("s", "i").unwrap();
    }
    services.compact().unwrap();
    let partition = topics
        .get(REGISTRY_TOPIC)
        .unwrap()
        .partition(0)
        .unwrap()
        .clone();
    let chunk = partition.read(partition.start_offset(), 1 << 20).unwrap();
    let mut records = 0;
    for batch in split_batches(chunk.bytes) {
        let batch = batch.unwrap();
        for record in BatchView::new(&batch).unwrap().records() {
            let record = record.unwrap();
            assert!(
                record
                    .headers()
                    .any(|h| h == Ok((SNAPSHOT_HEADER, &b"1"[..]))),
                "every record left after compaction is marked"
            );
            records += 1;
        }
    }
    assert_eq!(records, 2, "the instance's registration and heartbeat");
}

#[tokio::test]
async fn an_instance_whose_ttl_passes_while_the_broker_is_down_is_gone_after_a_crash() {
    // Moved from the black-box test that slept 1.2 s across a kill -9: here the clock
    // moves instead, and the broker "crashes": a log dropped without `close` leaves
    // the disk as a crash would, and the next open recovers it.
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    {
        let topics = Topics::open(dir.path()).unwrap();
        let services = Services::open(&topics, clock.clone()).unwrap();
        services
            .register("billing", "old", "a:1", vec![], 1_000)
            .await
            .unwrap();
        drop(services);
        drop(topics);
    }
    clock.advance(1_200);
    let topics = Topics::open(dir.path()).unwrap();
    let services = Services::open(&topics, clock).unwrap();
    assert!(services.describe("billing", &[]).instances.is_empty());
}

#[tokio::test]
async fn a_step_of_the_wall_clock_neither_expires_a_healthy_instance_nor_keeps_a_dead_one() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let topics = Topics::open(dir.path()).unwrap();
    let services = Services::open(&topics, clock.clone()).unwrap();
    services
        .register("billing", "a", "a:1", vec![], 5_000)
        .await
        .unwrap();
    clock.advance(1_000);
    clock.step_wall(2 * 3_600_000);
    assert_eq!(
        services.expire().unwrap(),
        0,
        "two hours ahead, one second later"
    );
    services.heartbeat("billing", "a").unwrap();
    assert_eq!(
        services.describe("billing", &[]).instances[0].since_heartbeat_ms,
        0
    );
    clock.step_wall(-4 * 3_600_000);
    clock.advance(5_001);
    assert_eq!(
        services.expire().unwrap(),
        1,
        "silent for longer than its TTL"
    );
}
