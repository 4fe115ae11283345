//! kill -9 the broker while producers are being acknowledged at `durable`; restart it:
//! every acknowledged message is there and the group resumes from its committed offset.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client::{AckLevel, Client, ClientConfig, ConsumerConfig, ProducerConfig, Record, StartFrom};
use integration_tests::Brokerd;
use tokio::time::{timeout, Instant};

const DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_kill9_and_groups_resume_where_they_committed() {
    let mut broker = Brokerd::start();
    let config = ClientConfig::default()
        .reconnect_max_attempts(1)
        .request_timeout(Duration::from_secs(10));
    let client = Client::connect_with(broker.addr(), config.clone())
        .await
        .unwrap();
    client
        .create_topic("ledger", 2, &[("durability", "always")])
        .await
        .unwrap();

    // A first round, consumed and committed by group "audit".
    let producer = client
        .producer("ledger", ProducerConfig::default())
        .await
        .unwrap();
    for n in 0..200u64 {
        let sent = producer.send(Record::new(format!("m{n}")).with_key(format!("k{}", n % 7)));
        drop(sent.await.unwrap()); // its outcome is checked by flush below
    }
    producer.flush().await.unwrap();
    let consumer_config = ConsumerConfig::default()
        .auto_commit(None)
        .start(StartFrom::Earliest)
        .fetch_max_wait(Duration::from_millis(100));
    let mut audit = client
        .consumer("ledger", "audit", consumer_config.clone())
        .await
        .unwrap();
    for _ in 0..150 {
        timeout(DEADLINE, audit.next()).await.unwrap().unwrap();
    }
    audit.commit().await.unwrap();
    let committed: HashMap<u32, u64> = audit.positions().into_iter().collect();
    drop(audit); // no leave: the broker is about to die anyway

    // Producers keep sending, acknowledged at `durable`, while the broker is killed.
    let acknowledged: Arc<Mutex<Vec<(u32, u64, String)>>> = Arc::default();
    let producer = client
        .producer(
            "ledger",
            ProducerConfig::default()
                .ack(AckLevel::Durable)
                .linger(Duration::from_millis(1))
                // What is in flight at the kill fails soon instead of being retried
                // for two minutes: only what was acknowledged before it is checked.
                .delivery_timeout(Duration::from_secs(1)),
        )
        .await
        .unwrap();
    let sender = {
        let acknowledged = acknowledged.clone();
        tokio::spawn(async move {
            let mut pending = Vec::new();
            for n in 200..1_000_000u64 {
                let value = format!("m{n}");
                match producer
                    .send(Record::new(value.clone()).with_key(format!("k{}", n % 7)))
                    .await
                {
                    Ok(future) => pending.push((value, future)),
                    Err(_) => break,
                }
                if pending.len() >= 64 {
                    for (value, future) in pending.drain(..) {
                        match future.await {
                            Ok(meta) => acknowledged.lock().unwrap().push((
                                meta.partition,
                                meta.offset.unwrap(),
                                value,
                            )),
                            Err(_) => return,
                        }
                    }
                }
            }
        })
    };
    let deadline = Instant::now() + DEADLINE;
    while acknowledged.lock().unwrap().len() < 2000 {
        assert!(Instant::now() < deadline, "producer made progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    broker.kill9();
    let _ = timeout(DEADLINE, sender).await;
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 2000);

    broker.restart();
    let client = Client::connect_with(broker.addr(), config).await.unwrap();
    // Every acknowledged message is where the broker said it was.
    let mut stored: HashMap<(u32, u64), String> = HashMap::new();
    let described = client.describe_topic("ledger").await.unwrap();
    for partition in &described.partitions {
        let mut reader = client.partition_reader("ledger", &[(partition.partition, 0)]);
        while stored
            .keys()
            .filter(|(p, _)| *p == partition.partition)
            .count()
            < partition.end_offset as usize
        {
            let record = timeout(DEADLINE, reader.next()).await.unwrap().unwrap();
            let value = String::from_utf8(record.value.unwrap().to_vec()).unwrap();
            stored.insert((record.partition, record.offset), value);
        }
    }
    for (partition, offset, value) in &acknowledged {
        assert_eq!(
            stored.get(&(*partition, *offset)),
            Some(value),
            "acknowledged message at {partition}/{offset}"
        );
    }

    // The group resumes exactly at its committed offsets.
    let mut audit = client
        .consumer("ledger", "audit", consumer_config)
        .await
        .unwrap();
    let mut first: HashMap<u32, u64> = HashMap::new();
    while first.len() < committed.len() {
        let record = timeout(DEADLINE, audit.next()).await.unwrap().unwrap();
        first.entry(record.partition).or_insert(record.offset);
    }
    assert_eq!(first, committed);
    audit.close().await.unwrap();
}

/// Disk space the files under `dir` really occupy (allocated blocks, not lengths).
fn allocated_bytes(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            allocated_bytes(&entry.path())
        } else {
            meta.blocks() * 512
        };
    }
    total
}

/// An empty broker holds well under a MiB of reserved disk for its internal topics, not
/// 16 MiB of data and 6 MiB of index each: it starts on a nearly full disk, and an idle
/// partition costs little.
#[tokio::test]
async fn an_empty_broker_reserves_little_disk() {
    let broker = Brokerd::start();
    let client = Client::connect(broker.addr()).await.unwrap();
    client.create_topic("quiet", 8, &[]).await.unwrap();
    let used = allocated_bytes(broker.data_dir());
    assert!(
        used < 4 * 1024 * 1024,
        "an empty broker with one 8-partition topic holds {} KiB",
        used / 1024
    );
}
