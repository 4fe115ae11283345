//! Exactly-once production retries: an idempotent producer's batch whose answer was
//! lost is sent again and stored once, through a connection cut between the append and
//! the answer, and across a kill -9 of the broker.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use client::protocol::batch::BatchBuilder;
use client::protocol::ops::produce::{
    AckLevel, PartitionSelector, ProduceRequest, ProduceResponse, ProducerSequence,
};
use client::{Client, ClientConfig, ProducerConfig, Record};
use integration_tests::Brokerd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const DEADLINE: Duration = Duration::from_secs(60);
/// The frame header's op code of Produce, and its RESPONSE flag.
const PRODUCE_OP: u16 = 20;
const RESPONSE_FLAG: u16 = 1;

/// A TCP proxy in front of the broker that, while `drops` is above zero, swallows the
/// next Produce answer coming back and cuts that connection: the broker appended the
/// batch and answered, the client never hears of it.
struct CuttingProxy {
    addr: String,
    drops: Arc<AtomicUsize>,
    cut: Arc<AtomicUsize>,
}

impl CuttingProxy {
    async fn start(upstream: String, drops: usize) -> CuttingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let drops = Arc::new(AtomicUsize::new(drops));
        let cut = Arc::new(AtomicUsize::new(0));
        let (d, c) = (drops.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = TcpStream::connect(&upstream).await.unwrap();
                tokio::spawn(relay(client, upstream, d.clone(), c.clone()));
            }
        });
        CuttingProxy { addr, drops, cut }
    }
}

async fn relay(
    client: TcpStream,
    upstream: TcpStream,
    drops: Arc<AtomicUsize>,
    cut: Arc<AtomicUsize>,
) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut up_read, mut up_write) = upstream.into_split();
    let requests = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_read, &mut up_write).await;
    });
    // Answers, frame by frame: [length u32][version u16][op u16][flags u16]...
    loop {
        let mut length = [0u8; 4];
        if up_read.read_exact(&mut length).await.is_err() {
            break;
        }
        let mut frame = vec![0u8; u32::from_le_bytes(length) as usize];
        if up_read.read_exact(&mut frame).await.is_err() {
            break;
        }
        let op = u16::from_le_bytes([frame[2], frame[3]]);
        let flags = u16::from_le_bytes([frame[4], frame[5]]);
        let take = op == PRODUCE_OP
            && flags == RESPONSE_FLAG
            && drops
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |d| d.checked_sub(1))
                .is_ok();
        if take {
            cut.fetch_add(1, Ordering::SeqCst);
            break; // dropping both halves closes the client's connection
        }
        if client_write.write_all(&length).await.is_err()
            || client_write.write_all(&frame).await.is_err()
        {
            break;
        }
    }
    requests.abort();
}

/// Every value stored in partition `partition` of `topic`, in offset order.
async fn stored_values(client: &Client, topic: &str, partition: u32) -> Vec<String> {
    let end = client.describe_topic(topic).await.unwrap().partitions[partition as usize].end_offset;
    let mut reader = client.partition_reader(topic, &[(partition, 0)]);
    let mut values = Vec::new();
    while (values.len() as u64) < end {
        let record = timeout(DEADLINE, reader.next()).await.unwrap().unwrap();
        values.push(String::from_utf8(record.value.unwrap().to_vec()).unwrap());
    }
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_produce_whose_answer_is_cut_off_is_retried_and_stored_once() {
    let broker = Brokerd::start();
    let admin = Client::connect(broker.addr()).await.unwrap();
    admin.create_topic("payments", 1, &[]).await.unwrap();
    let proxy = CuttingProxy::start(broker.addr().to_string(), 1).await;
    let client = Client::connect(&proxy.addr).await.unwrap();
    let producer = client
        .producer("payments", ProducerConfig::default())
        .await
        .unwrap();
    let first = producer.send(Record::new("pay #1")).await.unwrap();
    let stored = timeout(DEADLINE, first).await.unwrap().unwrap();
    assert_eq!(
        proxy.cut.load(Ordering::SeqCst),
        1,
        "the answer was cut off"
    );
    assert_eq!(
        stored.offset,
        Some(0),
        "the retry learned the original offset"
    );
    let second = producer.send(Record::new("pay #2")).await.unwrap();
    assert_eq!(
        timeout(DEADLINE, second).await.unwrap().unwrap().offset,
        Some(1)
    );
    producer.close().await.unwrap();
    assert_eq!(
        stored_values(&admin, "payments", 0).await,
        ["pay #1", "pay #2"]
    );

    // The same cut without idempotence: the caller is told, nothing is resent.
    proxy.drops.store(1, Ordering::SeqCst);
    let plain = client
        .producer("payments", ProducerConfig::default().idempotent(false))
        .await
        .unwrap();
    let lost = plain.send(Record::new("pay #3")).await.unwrap();
    let error = timeout(DEADLINE, lost).await.unwrap().unwrap_err();
    assert!(error.is_connection_error(), "{error}");
    assert_eq!(stored_values(&admin, "payments", 0).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_batches_cut_off_in_flight_are_each_stored_once() {
    let broker = Brokerd::start();
    let admin = Client::connect(broker.addr()).await.unwrap();
    admin.create_topic("ledger", 2, &[]).await.unwrap();
    let proxy = CuttingProxy::start(broker.addr().to_string(), 3).await;
    let client = Client::connect(&proxy.addr).await.unwrap();
    let config = ProducerConfig::default()
        .linger(Duration::from_millis(1))
        .batch_max_bytes(200);
    let producer = client.producer("ledger", config).await.unwrap();
    let mut acks = Vec::new();
    for n in 0..300 {
        let record = Record::new(format!("m{n}")).with_partition(n % 2);
        acks.push(producer.send(record).await.unwrap());
    }
    let mut offsets = HashMap::new();
    for (n, ack) in acks.into_iter().enumerate() {
        let meta = timeout(DEADLINE, ack).await.unwrap().unwrap();
        assert!(offsets
            .insert((meta.partition, meta.offset.unwrap()), n)
            .is_none());
    }
    assert_eq!(
        proxy.cut.load(Ordering::SeqCst),
        3,
        "three answers were cut off"
    );
    for partition in 0..2 {
        let values = stored_values(&admin, "ledger", partition).await;
        let expected: Vec<String> = (0..300)
            .filter(|n| n % 2 == partition)
            .map(|n| format!("m{n}"))
            .collect();
        assert_eq!(
            values, expected,
            "partition {partition}: each once, in order"
        );
    }
}

fn one_record(value: &str) -> Bytes {
    let mut builder = BatchBuilder::new();
    builder.push(1, None, Some(value.as_bytes()), &[]).unwrap();
    builder.finish()
}

async fn tagged(
    client: &Client,
    topic: &str,
    ack: AckLevel,
    producer_id: u64,
    sequence: u64,
) -> ProduceResponse {
    let request = client::protocol::Request::Produce(ProduceRequest {
        topic: topic.into(),
        partition: PartitionSelector::Partition(0),
        ack,
        timeout_ms: 10_000,
        producer: Some(ProducerSequence {
            producer_id,
            sequence,
        }),
        batch: one_record(&format!("seq {sequence}")),
    });
    match client.request(request).await.unwrap() {
        client::protocol::Response::Produce(answer) => answer,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_are_caught_across_a_kill9_and_restart() {
    let mut broker = Brokerd::start();
    let config = ClientConfig::default().reconnect_max_attempts(1);
    let client = Client::connect_with(broker.addr(), config.clone())
        .await
        .unwrap();
    // Acknowledged durable: synced, journal included. And appended only, on a topic
    // that never syncs: after a kill -9 the page cache still holds both.
    client
        .create_topic("synced", 1, &[("durability", "always")])
        .await
        .unwrap();
    client
        .create_topic("unsynced", 1, &[("durability", "os")])
        .await
        .unwrap();
    let id = client.init_producer().await.unwrap();
    for sequence in 0..3 {
        tagged(&client, "synced", AckLevel::Durable, id, sequence).await;
        tagged(&client, "unsynced", AckLevel::Appended, id, sequence).await;
    }
    broker.kill9();
    broker.restart();
    let client = Client::connect_with(broker.addr(), config).await.unwrap();
    for (topic, ack) in [
        ("synced", AckLevel::Durable),
        ("unsynced", AckLevel::Appended),
    ] {
        let retry = tagged(&client, topic, ack, id, 2).await;
        assert!(
            retry.duplicate,
            "{topic}: the retry after the restart is a duplicate"
        );
        assert_eq!(
            retry.base_offset,
            Some(2),
            "{topic}: with its original offset"
        );
        let next = tagged(&client, topic, ack, id, 3).await;
        assert_eq!(
            (next.base_offset, next.duplicate),
            (Some(3), false),
            "{topic}"
        );
        assert_eq!(stored_values(&client, topic, 0).await.len(), 4, "{topic}");
    }
    // Ids are never handed out twice, restarts included.
    assert!(client.init_producer().await.unwrap() > id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_rides_out_a_broker_restart_without_duplicates() {
    let mut broker = Brokerd::start();
    let client = Client::connect(broker.addr()).await.unwrap();
    client
        .create_topic("orders", 1, &[("durability", "always")])
        .await
        .unwrap();
    let producer = client
        .producer(
            "orders",
            ProducerConfig::default().linger(Duration::from_millis(1)),
        )
        .await
        .unwrap();
    let mut acks = Vec::new();
    for n in 0..400 {
        acks.push(producer.send(Record::new(format!("o{n}"))).await.unwrap());
        if n == 200 {
            // Mid-stream, with batches in flight: kill -9 and start again.
            broker.restart();
        }
    }
    for ack in acks {
        timeout(DEADLINE, ack).await.unwrap().unwrap();
    }
    let client = Client::connect(broker.addr()).await.unwrap();
    let values = stored_values(&client, "orders", 0).await;
    let expected: Vec<String> = (0..400).map(|n| format!("o{n}")).collect();
    assert_eq!(values, expected, "every record once, in order");
}
