//! kcat (librdkafka) against the real brokerd's Kafka listener: metadata, produce
//! with keys and headers, consume from an offset, and records crossing between the
//! Kafka and the native protocol with the same key, headers, value and timestamp.
//! Without kcat these say so and pass, except under `CI` (`.ci/run` installs it).

mod kafka_support;

use std::collections::VecDeque;
use std::time::Duration;

use kafka_support::{broker, kcat, native, run_kcat};
use protocol::batch::BatchBuilder;
use protocol::ops::produce::{AckLevel, PartitionSelector};

/// Every record of `topic`'s `partition` from `from`, read natively.
async fn read_natively(
    client: &client::Client,
    topic: &str,
    partition: u32,
    from: u64,
) -> VecDeque<client::ConsumerRecord> {
    let fetched = client
        .fetch(topic, partition, from, 1 << 20, Duration::ZERO)
        .await
        .unwrap();
    let mut out = VecDeque::new();
    client::decode_records(partition, fetched.batches, from, None, &mut out).unwrap();
    out
}

#[tokio::test]
async fn kcat_lists_the_topics_and_the_advertised_address() {
    let Some(kcat) = kcat() else { return };
    let broker = broker();
    let client = native(&broker).await;
    client.create_topic("orders", 3, &[]).await.unwrap();
    let listed = run_kcat(&kcat, &broker, &["-L"], "");
    assert!(
        listed.contains(&format!("broker 0 at {} (controller)", broker.kafka_addr())),
        "{listed}"
    );
    assert!(
        listed.contains("topic \"orders\" with 3 partitions"),
        "{listed}"
    );
    for p in 0..3 {
        assert!(
            listed.contains(&format!("partition {p}, leader 0, replicas: 0, isrs: 0")),
            "{listed}"
        );
    }
}

#[tokio::test]
async fn kcat_produces_keys_and_headers_and_consumes_from_an_offset() {
    let Some(kcat) = kcat() else { return };
    let broker = broker();
    let client = native(&broker).await;
    client.create_topic("events", 1, &[]).await.unwrap();
    run_kcat(
        &kcat,
        &broker,
        &[
            "-t",
            "events",
            "-p",
            "0",
            "-P",
            "-K:",
            "-H",
            "source=web",
            "-H",
            "n=1",
        ],
        "k0:v0\nk1:v1\nk2:v2\n",
    );
    let consumed = run_kcat(
        &kcat,
        &broker,
        &[
            "-t",
            "events",
            "-p",
            "0",
            "-C",
            "-o",
            "1",
            "-e",
            "-f",
            "%o|%k|%s|%h\n",
        ],
        "",
    );
    assert_eq!(consumed, "1|k1|v1|source=web,n=1\n2|k2|v2|source=web,n=1\n");
    // The same offsets natively.
    let records = read_natively(&client, "events", 0, 0).await;
    let offsets: Vec<u64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [0, 1, 2]);
}

#[tokio::test]
async fn a_record_produced_natively_is_read_by_kcat_with_its_key_headers_and_value() {
    let Some(kcat) = kcat() else { return };
    let broker = broker();
    let client = native(&broker).await;
    client.create_topic("native-in", 1, &[]).await.unwrap();
    let mut builder = BatchBuilder::new();
    builder
        .push(
            1_700_000_000_123,
            Some(b"user-7"),
            Some(b"{\"total\":42}"),
            &[("trace", b"t-1"), ("source", b"native")],
        )
        .unwrap();
    client
        .produce_batch(
            "native-in",
            PartitionSelector::Partition(0),
            AckLevel::Durable,
            Duration::from_secs(10),
            builder.finish(),
        )
        .await
        .unwrap();
    let consumed = run_kcat(
        &kcat,
        &broker,
        &[
            "-t",
            "native-in",
            "-p",
            "0",
            "-C",
            "-o",
            "0",
            "-e",
            "-f",
            "%o|%k|%s|%h|%T\n",
        ],
        "",
    );
    assert_eq!(
        consumed,
        "0|user-7|{\"total\":42}|trace=t-1,source=native|1700000000123\n"
    );
}

#[tokio::test]
async fn a_record_produced_by_kcat_is_read_natively_with_its_key_headers_and_value() {
    let Some(kcat) = kcat() else { return };
    let broker = broker();
    let client = native(&broker).await;
    client.create_topic("kafka-in", 2, &[]).await.unwrap();
    run_kcat(
        &kcat,
        &broker,
        &[
            "-t",
            "kafka-in",
            "-p",
            "1",
            "-P",
            "-K:",
            "-H",
            "trace=t-9",
            "-X",
            "acks=all",
        ],
        "order-1:paid\n",
    );
    let records = read_natively(&client, "kafka-in", 1, 0).await;
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!(record.offset, 0);
    assert_eq!(record.key.as_deref(), Some(&b"order-1"[..]));
    assert_eq!(record.value.as_deref(), Some(&b"paid"[..]));
    assert_eq!(
        record.headers,
        [("trace".to_string(), bytes::Bytes::from_static(b"t-9"))]
    );
    assert!(
        record.timestamp_ms > 1_700_000_000_000,
        "{}",
        record.timestamp_ms
    );
    assert!(read_natively(&client, "kafka-in", 0, 0).await.is_empty());
}

#[tokio::test]
async fn kcat_waits_for_records_produced_after_it_started_consuming() {
    let Some(kcat) = kcat() else { return };
    let broker = broker();
    let client = native(&broker).await;
    client.create_topic("later", 1, &[]).await.unwrap();
    let consumer = {
        let kcat = kcat.clone();
        let addr = broker.kafka_addr().to_string();
        std::thread::spawn(move || {
            std::process::Command::new("timeout")
                .arg(kafka_support::KCAT_TIMEOUT_S)
                .arg(&kcat)
                .args([
                    "-b", &addr, "-t", "later", "-p", "0", "-C", "-o", "0", "-c", "1", "-f",
                    "%k|%s\n",
                ])
                .output()
                .unwrap()
        })
    };
    let mut builder = BatchBuilder::new();
    builder
        .push(1_700_000_000_000, Some(b"k"), Some(b"late"), &[])
        .unwrap();
    client
        .produce_batch(
            "later",
            PartitionSelector::Partition(0),
            AckLevel::Appended,
            Duration::from_secs(10),
            builder.finish(),
        )
        .await
        .unwrap();
    let output = consumer.join().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "k|late\n");
}

#[tokio::test]
async fn kcat_produces_with_every_compression_codec_and_the_records_are_stored_whole() {
    let Some(kcat) = kcat() else { return };
    let broker = broker();
    let client = native(&broker).await;
    let lines: String = (0..200)
        .map(|i| format!("key-{i}:a value that compresses well, number {i}\n"))
        .collect();
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("compressed-{codec}");
        client.create_topic(&topic, 1, &[]).await.unwrap();
        run_kcat(
            &kcat,
            &broker,
            &[
                "-t",
                &topic,
                "-p",
                "0",
                "-P",
                "-K:",
                "-z",
                codec,
                "-X",
                "linger.ms=50",
            ],
            &lines,
        );
        let records = read_natively(&client, &topic, 0, 0).await;
        assert_eq!(records.len(), 200, "{codec}");
        for (i, r) in records.iter().enumerate() {
            assert_eq!(
                r.key.as_deref(),
                Some(format!("key-{i}").as_bytes()),
                "{codec}"
            );
            let value = format!("a value that compresses well, number {i}");
            assert_eq!(r.value.as_deref(), Some(value.as_bytes()), "{codec}");
        }
        // And kcat reads them back (uncompressed batches).
        let consumed = run_kcat(
            &kcat,
            &broker,
            &["-t", &topic, "-C", "-o", "199", "-e", "-f", "%k\n"],
            "",
        );
        assert_eq!(consumed, "key-199\n", "{codec}");
    }
}

#[tokio::test]
async fn brokerctl_and_kcat_read_each_others_records_with_key_headers_and_value() {
    let Some(kcat) = kcat() else { return };
    let broker = broker();
    let client = native(&broker).await;
    client.create_topic("crossing", 1, &[]).await.unwrap();
    // brokerctl → kcat.
    let line =
        r#"{"key":"user-7","value":"{\"total\":42}","headers":{"trace":"t-1","source":"cli"}}"#;
    let (ok, out, err) = integration_tests::brokerctl(
        broker.addr(),
        &["produce", "crossing", "--input", "json"],
        &format!("{line}\n"),
    );
    assert!(ok, "{out}{err}");
    let consumed = run_kcat(
        &kcat,
        &broker,
        &["-t", "crossing", "-C", "-o", "0", "-e", "-f", "%k|%s|%h\n"],
        "",
    );
    assert_eq!(consumed, "user-7|{\"total\":42}|trace=t-1,source=cli\n");
    // kcat → brokerctl.
    run_kcat(
        &kcat,
        &broker,
        &[
            "-t",
            "crossing",
            "-P",
            "-K:",
            "-H",
            "from=kcat",
            "-H",
            "n=2",
        ],
        "k2:v2\n",
    );
    let (ok, out, err) = integration_tests::brokerctl(
        broker.addr(),
        &[
            "consume", "crossing", "--from", "1", "--count", "1", "--json",
        ],
        "",
    );
    assert!(ok, "{out}{err}");
    let record: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(record["offset"], 1);
    assert_eq!(record["key"], "k2");
    assert_eq!(record["value"], "v2");
    assert_eq!(
        record["headers"],
        serde_json::json!([{"key": "from", "value": "kcat"}, {"key": "n", "value": "2"}])
    );
}
