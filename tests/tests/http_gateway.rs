//! The HTTP gateway against the real brokerd, with a real HTTP client: records
//! produced over HTTP read natively and the other way round, byte for byte; long
//! polling; topic administration; errors that are JSON 4xx and change nothing;
//! HTTP/2 by prior knowledge; health; protected mode. Authentication over HTTP is
//! `http_security.rs`.

mod http_support;

use std::collections::VecDeque;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use client::Client;
use http_support::{code, end_offsets, h2c, http1, json};
use integration_tests::{brokerd_bin, Brokerd, Launch};
use protocol::batch::BatchBuilder;
use protocol::ops::produce::{AckLevel, PartitionSelector};
use serde_json::{json, Value};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

async fn native(broker: &Brokerd) -> Client {
    Client::connect(broker.addr()).await.unwrap()
}

fn url(broker: &Brokerd, path: &str) -> String {
    format!("http://{}{path}", broker.http_addr())
}

/// Reads every record of `topic`'s `partition` from `from`, natively.
async fn read_natively(
    client: &Client,
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
async fn records_produced_over_http_read_natively_with_the_same_key_headers_and_value() {
    let broker = Brokerd::start();
    let native = native(&broker).await;
    native.create_topic("orders", 3, &[]).await.unwrap();
    let body = json!({"records": [
        {"key": "user-7", "value": {"total": 42, "items": ["a"]}, "headers": [{"key": "source", "value": "web"}]},
        {"key_base64": B64.encode([0u8, 255]), "value_base64": B64.encode([1u8, 2, 3]), "partition": 2,
         "headers": [{"key": "bin", "value_base64": B64.encode([9u8])}]},
        {"value": "plain text", "timestamp_ms": 1_700_000_000_000i64},
    ]});
    let (status, produced) = json(
        http1()
            .post(url(&broker, "/v1/topics/orders/records?ack=durable"))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{produced}");
    let offsets = produced["offsets"].as_array().unwrap();
    assert_eq!(offsets.len(), 3);
    let keyed = protocol::ops::produce::partition_for_key(b"user-7", 3);
    assert_eq!(
        offsets[0]["partition"], keyed,
        "partitioned by key like the native client"
    );
    assert_eq!(offsets[1]["partition"], 2);

    let place = |i: usize| {
        (
            offsets[i]["partition"].as_u64().unwrap() as u32,
            offsets[i]["offset"].as_u64().unwrap(),
        )
    };
    let (p, o) = place(0);
    let record = read_natively(&native, "orders", p, o)
        .await
        .pop_front()
        .unwrap();
    assert_eq!(record.offset, o);
    assert_eq!(record.key.as_deref(), Some(&b"user-7"[..]));
    assert_eq!(
        record.value.as_deref(),
        Some(&br#"{"total":42,"items":["a"]}"#[..]),
        "compact, keys in the order sent"
    );
    assert_eq!(
        record.headers,
        vec![("source".to_string(), Bytes::from_static(b"web"))]
    );

    let (p, o) = place(1);
    let record = read_natively(&native, "orders", p, o)
        .await
        .pop_front()
        .unwrap();
    assert_eq!(record.key.as_deref(), Some(&[0u8, 255][..]));
    assert_eq!(record.value.as_deref(), Some(&[1u8, 2, 3][..]));
    assert_eq!(
        record.headers,
        vec![("bin".to_string(), Bytes::from_static(&[9]))]
    );

    let (p, o) = place(2);
    let record = read_natively(&native, "orders", p, o)
        .await
        .pop_front()
        .unwrap();
    assert_eq!(record.key, None);
    assert_eq!(record.value.as_deref(), Some(&b"plain text"[..]));
    assert_eq!(record.timestamp_ms, 1_700_000_000_000);
}

#[tokio::test]
async fn records_produced_natively_are_fetched_over_http_identically() {
    let broker = Brokerd::start();
    let native = native(&broker).await;
    native.create_topic("events", 1, &[]).await.unwrap();
    let mut builder = BatchBuilder::new();
    builder
        .push(
            1_700_000_000_123,
            Some(b"k1"),
            Some(br#"{"a":1}"#),
            &[("trace", b"t-1")],
        )
        .unwrap();
    builder
        .push(1_700_000_000_124, None, Some(&[0xff, 0x00]), &[])
        .unwrap();
    builder
        .push(1_700_000_000_125, Some(&[0xfe]), None, &[("bin", &[0x80])])
        .unwrap();
    native
        .produce_batch(
            "events",
            PartitionSelector::Partition(0),
            AckLevel::Durable,
            Duration::from_secs(10),
            builder.finish(),
        )
        .await
        .unwrap();

    let (status, fetched) = json(
        http1()
            .get(url(
                &broker,
                "/v1/topics/events/partitions/0/records?offset=0",
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{fetched}");
    assert_eq!(fetched["next_offset"], 3);
    assert_eq!(fetched["high_watermark"], 3);
    let records = fetched["records"].as_array().unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0]["offset"], 0);
    assert_eq!(records[0]["timestamp_ms"], 1_700_000_000_123i64);
    assert_eq!(records[0]["key"], "k1");
    assert_eq!(
        records[0]["value"],
        json!({"a": 1}),
        "a JSON value reads as JSON"
    );
    assert_eq!(records[0]["value_base64"], B64.encode(br#"{"a":1}"#));
    assert_eq!(
        records[0]["headers"],
        json!([{"key": "trace", "value": "t-1", "value_base64": B64.encode("t-1")}])
    );
    assert_eq!(records[1]["key"], Value::Null);
    assert_eq!(records[1]["value"], Value::Null, "not UTF-8: only base64");
    assert_eq!(records[1]["value_base64"], B64.encode([0xffu8, 0x00]));
    assert_eq!(records[2]["key_base64"], B64.encode([0xfeu8]));
    assert_eq!(records[2]["value_base64"], Value::Null, "a tombstone");
    assert_eq!(records[2]["headers"][0]["value"], Value::Null);
    assert_eq!(
        records[2]["headers"][0]["value_base64"],
        B64.encode([0x80u8])
    );

    // From the middle: only what is at or after the offset.
    let (_, fetched) = json(
        http1()
            .get(url(
                &broker,
                "/v1/topics/events/partitions/0/records?offset=2",
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(fetched["records"].as_array().unwrap().len(), 1);
    assert_eq!(fetched["records"][0]["offset"], 2);
}

#[tokio::test]
async fn a_long_poll_returns_when_a_record_arrives() {
    let broker = Brokerd::start();
    let native = native(&broker).await;
    native.create_topic("waits", 1, &[]).await.unwrap();
    let poll = tokio::spawn(
        http1()
            .get(url(
                &broker,
                "/v1/topics/waits/partitions/0/records?offset=0&max_wait_ms=25000",
            ))
            .send(),
    );
    let mut builder = BatchBuilder::new();
    builder.push(1, None, Some(b"arrived"), &[]).unwrap();
    native
        .produce_batch(
            "waits",
            PartitionSelector::Partition(0),
            AckLevel::Durable,
            Duration::from_secs(10),
            builder.finish(),
        )
        .await
        .unwrap();
    let (status, fetched) = json(poll.await.unwrap().unwrap()).await;
    assert_eq!(status, 200, "{fetched}");
    // A poll that timed out would answer no records.
    assert_eq!(fetched["records"][0]["value"], "arrived");
    assert_eq!(fetched["next_offset"], 1);
}

#[tokio::test]
async fn topics_are_created_listed_described_trimmed_and_deleted() {
    let broker = Brokerd::start();
    let http = http1();
    let create = json!({"name": "crud", "partitions": 2, "config": {"retention_ms": 3_600_000, "durability": "always"}});
    let (status, body) = json(
        http.post(url(&broker, "/v1/topics"))
            .json(&create)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body, json!({"name": "crud", "partitions": 2}));
    let (status, body) = json(
        http.post(url(&broker, "/v1/topics"))
            .json(&create)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(code(&body), "topic_exists");

    let (status, list) = json(http.get(url(&broker, "/v1/topics")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(
        list["topics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "crud" && t["partitions"] == 2),
        "{list}"
    );
    assert!(
        !list["topics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["internal"] == true),
        "internal topics hidden: {list}"
    );

    let records: Vec<Value> = (0..3)
        .map(|i| json!({"value": format!("r{i}"), "partition": 0}))
        .collect();
    let (status, _) = json(
        http.post(url(&broker, "/v1/topics/crud/records"))
            .json(&json!({"records": records}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, described) = json(
        http.get(url(&broker, "/v1/topics/crud"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{described}");
    assert_eq!(described["config"]["retention_ms"], "3600000");
    assert_eq!(described["partitions"][0]["end_offset"], 3);
    assert_eq!(
        described["partitions"][0]["durable_offset"], 3,
        "durable: acknowledged durable"
    );
    assert_eq!(described["partitions"][1]["end_offset"], 0);

    let (status, deleted) = json(
        http.delete(url(
            &broker,
            "/v1/topics/crud/partitions/0/records?before_offset=2",
        ))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted, json!({"partition": 0, "log_start_offset": 2}));
    let (_, described) = json(
        http.get(url(&broker, "/v1/topics/crud"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(described["partitions"][0]["start_offset"], 2);

    let response = http
        .delete(url(&broker, "/v1/topics/crud"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    let (status, body) = json(
        http.get(url(&broker, "/v1/topics/crud"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(code(&body), "unknown_topic");
}

#[tokio::test]
async fn bad_requests_get_json_4xx_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("brokerd.toml");
    std::fs::write(
        &config,
        "[http]\nmax_body_bytes = 4096\nmax_records_per_produce = 5\n",
    )
    .unwrap();
    let broker = Launch::new(brokerd_bin())
        .args(["--config".into(), config.into_os_string()])
        .start()
        .unwrap();
    let native = native(&broker).await;
    native.create_topic("safe", 2, &[]).await.unwrap();
    let before = end_offsets(&native, "safe").await;
    let http = http1();
    let produce = url(&broker, "/v1/topics/safe/records");

    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "unknown topic",
            http.post(url(&broker, "/v1/topics/nope/records"))
                .json(&json!({"records": [{"value": 1}]})),
            404,
            "unknown_topic",
        ),
        (
            "bad JSON",
            http.post(&produce)
                .body("{\"records\": [")
                .header("content-type", "application/json"),
            400,
            "invalid_request",
        ),
        (
            "wrong shape",
            http.post(&produce)
                .json(&json!({"records": [{"vaule": 1}]})),
            400,
            "invalid_request",
        ),
        (
            "bad base64",
            http.post(&produce)
                .json(&json!({"records": [{"value": "ok"}, {"value_base64": "%%%"}]})),
            400,
            "invalid_request",
        ),
        (
            "both forms",
            http.post(&produce)
                .json(&json!({"records": [{"value": "a", "value_base64": "YQ=="}]})),
            400,
            "invalid_request",
        ),
        (
            "no partition 9",
            http.post(&produce)
                .json(&json!({"records": [{"value": 1}, {"value": 2, "partition": 9}]})),
            404,
            "invalid_partition",
        ),
        (
            "oversized body",
            http.post(&produce)
                .json(&json!({"records": [{"value": "x".repeat(8192)}]})),
            413,
            "frame_too_large",
        ),
        (
            "too many records",
            http.post(&produce)
                .json(&json!({"records": vec![json!({"value": 1}); 6]})),
            413,
            "resource_limit",
        ),
        (
            "no records",
            http.post(&produce).json(&json!({"records": []})),
            400,
            "invalid_request",
        ),
        (
            "bad ack",
            http.post(format!("{produce}?ack=sometimes"))
                .json(&json!({"records": [{"value": 1}]})),
            400,
            "invalid_request",
        ),
        (
            "unknown route",
            http.get(url(&broker, "/v1/nothing/here")),
            404,
            "unknown_operation",
        ),
        (
            "wrong method",
            http.put(url(&broker, "/v1/topics")),
            405,
            "unknown_operation",
        ),
        (
            "bad partition",
            http.get(url(
                &broker,
                "/v1/topics/safe/partitions/minus-one/records?offset=0",
            )),
            400,
            "invalid_request",
        ),
        (
            "no offset",
            http.get(url(&broker, "/v1/topics/safe/partitions/0/records")),
            400,
            "invalid_request",
        ),
    ];
    for (what, request, status, expected) in cases {
        let (got, body) = json(request.send().await.unwrap()).await;
        assert_eq!(got, status, "{what}: {body}");
        assert_eq!(code(&body), expected, "{what}: {body}");
    }
    // A long name is echoed cut, never whole.
    let long = "n".repeat(5000);
    let (status, body) = json(
        http.get(url(&broker, &format!("/v1/topics/{long}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().len() < 1000,
        "{body}"
    );

    assert_eq!(
        end_offsets(&native, "safe").await,
        before,
        "nothing was stored"
    );
    let (status, _) = json(
        http.post(&produce)
            .json(&json!({"records": [{"value": 1}]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "the broker still serves");
}

#[tokio::test]
async fn http2_by_prior_knowledge_serves_the_same_api() {
    let broker = Brokerd::start();
    let h2 = h2c();
    let response = h2.get(url(&broker, "/healthz")).send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status().as_u16(), 200);
    let (status, _) = json(
        h2.post(url(&broker, "/v1/topics"))
            .json(&json!({"name": "h2"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    // Several requests at once on the one connection.
    let produces: Vec<_> = (0..8)
        .map(|i| {
            tokio::spawn(
                h2.post(url(&broker, "/v1/topics/h2/records"))
                    .json(&json!({"records": [{"value": i}]}))
                    .send(),
            )
        })
        .collect();
    for produce in produces {
        let response = produce.await.unwrap().unwrap();
        assert_eq!(response.version(), reqwest::Version::HTTP_2);
        assert_eq!(response.status().as_u16(), 200);
    }
    let (_, fetched) = json(
        h2.get(url(&broker, "/v1/topics/h2/partitions/0/records?offset=0"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(fetched["records"].as_array().unwrap().len(), 8);
}

#[tokio::test]
async fn health_and_the_openapi_document_are_served() {
    let broker = Brokerd::start();
    let http = http1();
    let (status, body) = json(http.get(url(&broker, "/healthz")).send().await.unwrap()).await;
    assert_eq!((status, &body["status"]), (200, &json!("ok")));
    let (status, body) = json(http.get(url(&broker, "/readyz")).send().await.unwrap()).await;
    assert_eq!((status, &body["status"]), (200, &json!("ok")), "{body}");
    let (status, document) = json(
        http.get(url(&broker, "/v1/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let checked_in: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        document, checked_in,
        "the served document is the checked-in one"
    );
}

#[test]
fn without_authentication_brokerd_refuses_a_non_loopback_http_address() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(brokerd_bin())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "0.0.0.0:0",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to listen for HTTP on 0.0.0.0:0 without authentication"),
        "{stderr}"
    );
    assert!(!dir.path().join("data").exists(), "nothing was created");
}

#[tokio::test]
async fn http_enabled_false_starts_brokerd_without_its_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("brokerd.toml");
    // A taken port would stop brokerd if it still bound one: it must not try.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    std::fs::write(
        &config,
        format!("[http]\nenabled = false\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let broker = Launch::new(brokerd_bin())
        .args(["--config".into(), config.into_os_string()])
        .without_http()
        .start()
        .unwrap();
    native(&broker)
        .await
        .create_topic("native-only", 1, &[])
        .await
        .unwrap();
}

/// What the web console asks of the API beyond the rest: who it is, where a time
/// falls in a partition, where a routing key would go, deliveries in the
/// statistics, the default durability, and the console's own page.
#[tokio::test]
async fn the_consoles_endpoints_answer_from_the_request_layer() {
    let broker = Brokerd::start();
    let http = http1();
    let (status, me) = json(http.get(url(&broker, "/v1/whoami")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        me,
        json!({"principal": "ANONYMOUS", "authenticated_by": "NONE", "security_enabled": false})
    );

    let (status, _) = json(
        http.post(url(&broker, "/v1/topics"))
            .json(&json!({"name": "timed", "partitions": 1}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    let records = json!({"records": [
        {"value": "old", "timestamp_ms": 1_000},
        {"value": "middle", "timestamp_ms": 2_000},
        {"value": "new", "timestamp_ms": 3_000},
    ]});
    let (status, _) = json(
        http.post(url(&broker, "/v1/topics/timed/records"))
            .json(&records)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    for (at, offset) in [(0, 0), (1_500, 1), (2_000, 1), (9_000, 3)] {
        let path = format!("/v1/topics/timed/partitions/0/offset?timestamp_ms={at}");
        let (status, found) = json(http.get(url(&broker, &path)).send().await.unwrap()).await;
        assert_eq!(status, 200, "{found}");
        assert_eq!(found, json!({"partition": 0, "offset": offset}), "at {at}");
    }
    let (status, body) = json(
        http.get(url(
            &broker,
            "/v1/topics/timed/partitions/0/offset?timestamp_ms=x",
        ))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!((status, code(&body)), (400, "invalid_request"), "{body}");

    // Reading counts as delivered in the statistics.
    let (status, _) = json(
        http.get(url(
            &broker,
            "/v1/topics/timed/partitions/0/records?offset=0",
        ))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let (_, stats) = json(http.get(url(&broker, "/v1/stats")).send().await.unwrap()).await;
    assert_eq!(stats["default_durability"], "always", "{stats}");
    assert!(stats["http_connections"].as_u64().unwrap() >= 1, "{stats}");
    let timed = stats["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["topic"] == "timed")
        .unwrap();
    assert_eq!(timed["delivered"]["messages_total"], 3, "{stats}");
    assert_eq!(timed["messages_total"], 3, "{stats}");

    let (status, _) = json(
        http.post(url(&broker, "/v1/routes"))
            .json(&json!({"pattern": "orders.#", "topic": "timed"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    let probe = |key: &str| {
        http.post(url(&broker, "/v1/routes/match"))
            .json(&json!({"routing_key": key}))
            .send()
    };
    let (status, matched) = json(probe("orders.created.eu").await.unwrap()).await;
    assert_eq!(status, 200, "{matched}");
    assert_eq!(matched["destinations"][0]["topic"], "timed", "{matched}");
    let (_, unmatched) = json(probe("payments.created").await.unwrap()).await;
    assert_eq!(unmatched, json!({"destinations": []}));

    let page = http.get(url(&broker, "/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("script-src 'self'"));
    assert!(page.text().await.unwrap().contains("/console/js/app.js"));
    let script = http
        .get(url(&broker, "/console/js/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let (status, body) = json(
        http.get(url(&broker, "/console/../Cargo.toml"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404, "{body}");
}
