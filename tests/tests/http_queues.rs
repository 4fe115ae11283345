//! Queues, streams, consumer groups and dead letters over the HTTP gateway, against
//! the real brokerd with a real HTTP client: a message nacked three times over HTTP
//! is dead-lettered with its reasons; a lease that runs out is redelivered; ack and
//! extend hold; an SSE stream delivers in order and a slow reader does not grow the
//! broker's memory; a group read commits what the client acknowledges; dead letters
//! are listed, replayed and purged.

use std::time::Duration;

use client::{Client, ProducerConfig, Record};
use integration_tests::Brokerd;
use serde_json::{json, Value};
use tokio::time::{timeout, Instant};

/// How long one HTTP request of a test may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a test waits for something it knows is coming.
const DEADLINE: Duration = Duration::from_secs(30);

/// Fast retries, no jitter, three attempts.
const QUEUE_CONFIG: &[(&str, &str)] = &[
    ("max_delivery_attempts", "3"),
    ("retry_backoff_ms", "50"),
    ("retry_backoff_max_ms", "200"),
    ("retry_jitter", "0"),
    ("ack_deadline_ms", "30000"),
];

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .build()
        .unwrap()
}

fn url(broker: &Brokerd, path: &str) -> String {
    format!("http://{}{path}", broker.http_addr())
}

/// A response's status and JSON body (`Value::Null` for an empty body).
async fn json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    (status, body)
}

async fn post(broker: &Brokerd, path: &str, body: Value) -> (u16, Value) {
    json(
        http()
            .post(url(broker, path))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn get(broker: &Brokerd, path: &str) -> (u16, Value) {
    json(http().get(url(broker, path)).send().await.unwrap()).await
}

async fn delete(broker: &Brokerd, path: &str) -> (u16, Value) {
    json(http().delete(url(broker, path)).send().await.unwrap()).await
}

/// Receives from `group` of `topic` over HTTP: the messages.
async fn receive(broker: &Brokerd, topic: &str, group: &str, query: &str) -> Vec<Value> {
    let path = format!("/v1/topics/{topic}/queues/{group}/receive?{query}");
    let (status, body) = json(http().post(url(broker, &path)).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    body["messages"].as_array().unwrap().clone()
}

/// Receives exactly one message, waiting for it.
async fn receive_one(broker: &Brokerd, topic: &str, group: &str, query: &str) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let mut messages =
            receive(broker, topic, group, &format!("max_wait_ms=5000&{query}")).await;
        if let Some(message) = messages.pop() {
            assert!(messages.is_empty(), "one message: {messages:?}");
            return message;
        }
        assert!(Instant::now() < deadline, "no message in time");
    }
}

async fn produce(client: &Client, topic: &str, records: Vec<Record>) {
    let producer = client
        .producer(topic, ProducerConfig::default())
        .await
        .unwrap();
    let mut acks = Vec::new();
    for record in records {
        acks.push(producer.send(record).await.unwrap());
    }
    for ack in acks {
        ack.await.unwrap();
    }
    producer.close().await.unwrap();
}

/// A record's header value as text, from its HTTP JSON.
fn header<'a>(record: &'a Value, name: &str) -> Option<&'a str> {
    record["headers"]
        .as_array()?
        .iter()
        .find(|h| h["key"] == name)
        .and_then(|h| h["value"].as_str())
}

/// Every record of partition 0 of `topic`, natively, once there are `count`.
async fn read_all(client: &Client, topic: &str, count: usize) -> Vec<client::ConsumerRecord> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(described) = client.describe_topic(topic).await {
            let p = &described.partitions[0];
            if (p.end_offset - p.start_offset) as usize >= count {
                let mut reader = client.partition_reader(topic, &[(0, p.start_offset)]);
                let mut out = Vec::new();
                while out.len() < count {
                    out.push(timeout(DEADLINE, reader.next()).await.unwrap().unwrap());
                }
                return out;
            }
        }
        assert!(Instant::now() < deadline, "{topic} never held {count}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn native_header(record: &client::ConsumerRecord, name: &str) -> Option<String> {
    record
        .headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
}

#[tokio::test]
async fn a_message_nacked_three_times_over_http_is_dead_lettered_with_its_reasons() {
    let broker = Brokerd::start();
    let native = Client::connect(broker.addr()).await.unwrap();
    native.create_topic("jobs", 1, QUEUE_CONFIG).await.unwrap();
    produce(
        &native,
        "jobs",
        vec![Record::new("poison")
            .with_key("k-1")
            .with_header("origin", "test")],
    )
    .await;

    for attempt in 1..=3u64 {
        let message = receive_one(&broker, "jobs", "workers", "").await;
        assert_eq!(message["attempt"], attempt, "{message}");
        assert_eq!(message["record"]["value"], "poison");
        assert_eq!(message["record"]["key"], "k-1");
        assert_eq!(header(&message["record"], "origin"), Some("test"));
        let id = message["delivery_id"].as_str().unwrap();
        let path = format!("/v1/topics/jobs/queues/workers/messages/{id}/nack");
        let (status, body) = post(
            &broker,
            &path,
            json!({"reason": format!("bad input #{attempt}"), "delay_ms": 0}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        // The same delivery cannot be nacked twice.
        let (status, body) = post(&broker, &path, json!({"reason": "again"})).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (409, Some("not_in_flight")),
            "{body}"
        );
    }

    // Natively: one dead letter, with where it came from and the last reason.
    let letters = read_all(&native, "jobs.dlq", 1).await;
    let letter = &letters[0];
    assert_eq!(letter.value.as_deref(), Some(&b"poison"[..]));
    assert_eq!(native_header(letter, "origin").as_deref(), Some("test"));
    assert_eq!(
        native_header(letter, "dlq.reason").as_deref(),
        Some("bad input #3")
    );
    assert_eq!(native_header(letter, "dlq.attempts").as_deref(), Some("3"));
    assert_eq!(
        native_header(letter, "dlq.group").as_deref(),
        Some("workers")
    );
    assert_eq!(
        native_header(letter, "dlq.original_offset").as_deref(),
        Some("0")
    );

    // Over HTTP: the same headers, fetched.
    let (status, fetched) = get(&broker, "/v1/topics/jobs.dlq/partitions/0/records?offset=0").await;
    assert_eq!(status, 200, "{fetched}");
    let record = &fetched["records"][0];
    assert_eq!(header(record, "dlq.reason"), Some("bad input #3"));
    assert_eq!(header(record, "dlq.attempts"), Some("3"));
    assert_eq!(header(record, "dlq.original_topic"), Some("jobs"));

    // And nothing is left to receive.
    assert!(receive(&broker, "jobs", "workers", "max_wait_ms=300")
        .await
        .is_empty());
    let described = native.describe_group("workers").await.unwrap();
    assert_eq!(described.mode, protocol::ops::group::GroupMode::Queue);
}

#[tokio::test]
async fn a_lease_that_runs_out_is_redelivered_as_attempt_two_and_an_ack_ends_it() {
    let broker = Brokerd::start();
    let native = Client::connect(broker.addr()).await.unwrap();
    native.create_topic("jobs", 1, QUEUE_CONFIG).await.unwrap();
    produce(&native, "jobs", vec![Record::new("job-1")]).await;

    let first = receive_one(&broker, "jobs", "workers", "lease_ms=300").await;
    assert_eq!(first["attempt"], 1);
    // Not settled: after its lease (and the backoff) it comes again.
    let again = receive_one(&broker, "jobs", "workers", "").await;
    assert_eq!(again["attempt"], 2, "{again}");
    assert_eq!(again["record"]["offset"], first["record"]["offset"]);
    assert_ne!(again["delivery_id"], first["delivery_id"]);

    let id = again["delivery_id"].as_str().unwrap();
    let (status, body) = delete(
        &broker,
        &format!("/v1/topics/jobs/queues/workers/messages/{id}"),
    )
    .await;
    assert_eq!((status, &body["acked"]), (200, &json!(1)), "{body}");
    // Acked: never again, even after what would have been its lease.
    assert!(receive(&broker, "jobs", "workers", "max_wait_ms=1000")
        .await
        .is_empty());
    let described = native.describe_group("workers").await.unwrap();
    let counts = described.partitions[0]
        .queue
        .expect("a queue group's counts");
    assert_eq!(
        (counts.in_flight, counts.waiting_retry),
        (0, 0),
        "{described:?}"
    );

    // A batch ack, twice (idempotent), and a bad id.
    produce(&native, "jobs", vec![Record::new("a"), Record::new("b")]).await;
    let deadline = Instant::now() + DEADLINE;
    let mut ids = Vec::new();
    while ids.len() < 2 {
        for m in receive(&broker, "jobs", "workers", "max_wait_ms=2000").await {
            ids.push(m["delivery_id"].clone());
        }
        assert!(Instant::now() < deadline);
    }
    for _ in 0..2 {
        let (status, body) = post(
            &broker,
            "/v1/topics/jobs/queues/workers/acks",
            json!({"delivery_ids": ids}),
        )
        .await;
        assert_eq!((status, &body["acked"]), (200, &json!(2)), "{body}");
    }
    let (status, body) = post(
        &broker,
        "/v1/topics/jobs/queues/workers/acks",
        json!({"delivery_ids": ["nope"]}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
}

#[tokio::test]
async fn an_extended_lease_keeps_a_message_from_redelivery() {
    let broker = Brokerd::start();
    let native = Client::connect(broker.addr()).await.unwrap();
    native.create_topic("jobs", 1, QUEUE_CONFIG).await.unwrap();
    produce(&native, "jobs", vec![Record::new("slow job")]).await;

    let message = receive_one(&broker, "jobs", "workers", "lease_ms=2000").await;
    let id = message["delivery_id"].as_str().unwrap();
    let (status, body) = post(
        &broker,
        &format!("/v1/topics/jobs/queues/workers/messages/{id}/extend"),
        json!({"lease_ms": 60000}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Well past the first lease, nothing is redelivered...
    assert!(receive(&broker, "jobs", "workers", "max_wait_ms=3000")
        .await
        .is_empty());
    // ...and the delivery is still in flight, so it acks.
    let (status, body) = delete(
        &broker,
        &format!("/v1/topics/jobs/queues/workers/messages/{id}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Leaving with nothing held says so.
    let (status, body) = delete(&broker, "/v1/topics/jobs/queues/workers/membership").await;
    assert_eq!((status, &body["left"]), (200, &json!(true)), "{body}");
}

/// A Server-Sent Events reader over a streamed response: whole events, as
/// (id, event, data).
struct SseReader {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

#[derive(Debug)]
struct SseEvent {
    id: Option<String>,
    event: Option<String>,
    data: String,
}

impl SseReader {
    async fn open(broker: &Brokerd, path: &str, last_event_id: Option<&str>) -> SseReader {
        // No overall timeout: a stream lasts as long as the test reads it.
        let client = reqwest::Client::builder().build().unwrap();
        let mut request = client.get(url(broker, path));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        SseReader {
            response,
            buffer: Vec::new(),
        }
    }

    /// The next event (comments skipped), within the deadline.
    async fn next(&mut self) -> SseEvent {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let frame: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let text = String::from_utf8(frame).unwrap();
                let mut event = SseEvent {
                    id: None,
                    event: None,
                    data: String::new(),
                };
                let mut comment_only = true;
                for line in text.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        event.id = Some(v.to_string());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event.event = Some(v.to_string());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        event.data.push_str(v);
                    } else if line.starts_with(':') || line.is_empty() {
                        continue;
                    }
                    comment_only = false;
                }
                if comment_only {
                    continue;
                }
                return event;
            }
            let chunk = timeout(DEADLINE, self.response.chunk())
                .await
                .expect("an event in time")
                .unwrap()
                .expect("the stream is open");
            self.buffer.extend_from_slice(&chunk);
        }
    }

    /// The next record event's (partition, offset, data).
    async fn record(&mut self) -> (u64, u64, Value, String) {
        let event = self.next().await;
        assert_eq!(event.event.as_deref(), Some("record"), "{event:?}");
        let data: Value = serde_json::from_str(&event.data).unwrap();
        let partition = data["partition"].as_u64().unwrap();
        let offset = data["record"]["offset"].as_u64().unwrap();
        (partition, offset, data, event.id.unwrap())
    }
}

#[tokio::test]
async fn an_sse_stream_delivers_records_in_order_and_resumes_from_last_event_id() {
    let broker = Brokerd::start();
    let native = Client::connect(broker.addr()).await.unwrap();
    native.create_topic("events", 1, &[]).await.unwrap();
    let first: Vec<Record> = (0..50).map(|i| Record::new(format!("e-{i}"))).collect();
    produce(&native, "events", first).await;

    let mut stream =
        SseReader::open(&broker, "/v1/topics/events/stream?start=earliest", None).await;
    // Records produced while the stream is open follow the ones before, in order.
    let more: Vec<Record> = (50..100).map(|i| Record::new(format!("e-{i}"))).collect();
    produce(&native, "events", more).await;
    let mut id_after_60 = String::new();
    for expected in 0..100u64 {
        let (partition, offset, data, id) = stream.record().await;
        assert_eq!((partition, offset), (0, expected));
        assert_eq!(data["record"]["value"], format!("e-{expected}"));
        assert_eq!(
            id,
            (expected + 1).to_string(),
            "the position after the event"
        );
        if expected == 60 {
            id_after_60 = id;
        }
    }
    drop(stream);

    let mut resumed =
        SseReader::open(&broker, "/v1/topics/events/stream", Some(&id_after_60)).await;
    let (_, offset, _, _) = resumed.record().await;
    assert_eq!(offset, 61, "resumes right after the last event seen");

    // A latest stream sees only what comes after it.
    let mut latest = SseReader::open(&broker, "/v1/topics/events/stream", None).await;
    produce(&native, "events", vec![Record::new("new")]).await;
    let (_, offset, data, _) = latest.record().await;
    assert_eq!((offset, &data["record"]["value"]), (100, &json!("new")));

    let (status, body) = json(
        http()
            .get(url(&broker, "/v1/topics/events/stream"))
            .header("Last-Event-ID", "1,2")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );
}

/// The resident set size of process `pid`, bytes.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Bytes produced while an SSE reader does not read.
const SLOW_READER_PRODUCED_BYTES: usize = 50 * 1024 * 1024;
/// How much brokerd's RSS may grow meanwhile: far below what buffering the produced
/// records as events would take (more than the records themselves, base64 in JSON).
const SLOW_READER_RSS_GROWTH_BYTES: u64 = 24 * 1024 * 1024;

#[tokio::test]
async fn a_slow_sse_reader_does_not_grow_the_broker_memory_and_catches_up_in_order() {
    let broker = Brokerd::start();
    let pid = broker.pid().expect("brokerd's pid");
    let native = Client::connect(broker.addr()).await.unwrap();
    native.create_topic("bulk", 1, &[]).await.unwrap();
    produce(
        &native,
        "bulk",
        (0..3).map(|i| Record::new(format!("warm-{i}"))).collect(),
    )
    .await;
    let mut stream = SseReader::open(&broker, "/v1/topics/bulk/stream?start=earliest", None).await;
    for expected in 0..3 {
        assert_eq!(stream.record().await.1, expected);
    }

    // The reader stops reading; 50 MB are produced, a megabyte at a time.
    let value = vec![b'x'; 64 * 1024];
    let records = SLOW_READER_PRODUCED_BYTES / value.len();
    let before = rss_bytes(pid);
    let mut peak = before;
    for chunk in 0..records / 16 {
        let batch = (0..16)
            .map(|i| {
                let n = chunk * 16 + i;
                let mut v = value.clone();
                v[..8].copy_from_slice(&(n as u64).to_be_bytes());
                Record::new(v)
            })
            .collect();
        produce(&native, "bulk", batch).await;
        peak = peak.max(rss_bytes(pid));
    }
    let growth = peak.saturating_sub(before);
    eprintln!("brokerd RSS {before} -> peak {peak} bytes while {SLOW_READER_PRODUCED_BYTES} bytes were produced");
    assert!(
        growth < SLOW_READER_RSS_GROWTH_BYTES,
        "brokerd's RSS grew by {growth} bytes (from {before}) while {SLOW_READER_PRODUCED_BYTES} bytes were produced for a reader that did not read"
    );

    // Reading again, it gets everything, in order.
    use base64::Engine;
    for n in 0..records as u64 {
        let (_, offset, data, _) = stream.record().await;
        assert_eq!(offset, 3 + n);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data["record"]["value_base64"].as_str().unwrap())
            .unwrap();
        assert_eq!(bytes.len(), value.len());
        assert_eq!(bytes[..8], n.to_be_bytes());
    }
}

#[tokio::test]
async fn a_group_read_commits_only_what_the_client_acknowledges_and_refuses_stale_commits() {
    let broker = Brokerd::start();
    let native = Client::connect(broker.addr()).await.unwrap();
    native.create_topic("orders", 2, &[]).await.unwrap();
    let records = |from: usize, to: usize| -> Vec<Record> {
        (from..to)
            .map(|i| Record::new(format!("o-{i}")).with_partition((i % 2) as u32))
            .collect()
    };
    produce(&native, "orders", records(0, 6)).await;

    let read = |query: &'static str| {
        let broker = &broker;
        async move {
            let (status, body) = get(
                broker,
                &format!("/v1/topics/orders/groups/billing/records?{query}"),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            body
        }
    };
    let first = read("max_wait_ms=2000").await;
    assert_eq!(first["records"].as_array().unwrap().len(), 6, "{first}");
    assert_eq!(
        first["partitions"],
        json!([0, 1]),
        "the only member owns both"
    );
    // Not committed: the next read gives the same records again.
    let again = read("").await;
    assert_eq!(again["records"], first["records"]);
    let commit_a = first["commit"].clone();
    let (status, body) = post(
        &broker,
        "/v1/topics/orders/groups/billing/commit",
        commit_a.clone(),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Natively: the commits are the group's, and its lag is 0.
    let described = native.describe_group("billing").await.unwrap();
    let committed: Vec<Option<u64>> = described
        .partitions
        .iter()
        .map(|p| p.committed_offset)
        .collect();
    assert_eq!(committed, [Some(3), Some(3)], "{described:?}");
    assert!(described.partitions.iter().all(|p| p.lag == 0));
    assert_eq!(described.members[0].client_name, "http");

    // The next read starts after the commit.
    produce(&native, "orders", records(6, 10)).await;
    let second = read("max_wait_ms=2000").await;
    let offsets: Vec<u64> = second["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["record"]["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, [3, 4, 3, 4], "{second}");
    let (status, body) = post(
        &broker,
        "/v1/topics/orders/groups/billing/commit",
        second["commit"].clone(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // The older commit again would go back: refused, and nothing changes.
    let (status, body) = post(&broker, "/v1/topics/orders/groups/billing/commit", commit_a).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("stale_generation")),
        "{body}"
    );
    // Past what was handed out: refused.
    let beyond = json!({"generation": second["commit"]["generation"], "offsets": [{"partition": 0, "offset": 100}]});
    let (status, body) = post(&broker, "/v1/topics/orders/groups/billing/commit", beyond).await;
    assert_eq!(status, 409, "{body}");
    let committed: Vec<Option<u64>> = native
        .fetch_offsets("billing", "orders")
        .await
        .unwrap()
        .iter()
        .map(|c| c.offset)
        .collect();
    assert_eq!(committed, [Some(5), Some(5)]);

    // Over HTTP: listed and described with the same numbers.
    let (status, list) = get(&broker, "/v1/groups").await;
    assert_eq!(status, 200, "{list}");
    assert!(list["groups"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["group"] == "billing" && g["mode"] == "stream"));
    let (status, described) = get(&broker, "/v1/groups/billing").await;
    assert_eq!(status, 200, "{described}");
    assert_eq!(described["partitions"][0]["committed_offset"], 5);
    assert_eq!(described["partitions"][0]["lag"], 0);
    let (status, body) = get(&broker, "/v1/groups/nobody").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("unknown_group"))
    );
}

/// Receives the next message of `workers` on `jobs` and nacks it until it is
/// dead-lettered (three attempts); its value.
async fn dead_letter_next(broker: &Brokerd) -> Value {
    let mut value = Value::Null;
    for attempt in 1..=3u64 {
        let message = receive_one(broker, "jobs", "workers", "").await;
        assert_eq!(message["attempt"], attempt, "{message}");
        value = message["record"]["value"].clone();
        let id = message["delivery_id"].as_str().unwrap();
        let path = format!("/v1/topics/jobs/queues/workers/messages/{id}/nack");
        let (status, body) = post(broker, &path, json!({"reason": "nope", "delay_ms": 0})).await;
        assert_eq!(status, 200, "{body}");
    }
    value
}

/// The topic's dead letters over HTTP, once there are `count` and all are listed:
/// `total` counts a dead letter as soon as it is appended, the list once it is
/// durable (a busy machine shows the gap).
async fn letters(broker: &Brokerd, count: u64) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (status, body) = get(broker, "/v1/topics/jobs/dlq").await;
        assert_eq!(status, 200, "{body}");
        let listed = body["letters"].as_array().map_or(0, Vec::len) as u64;
        if body["total"] == count && listed == count {
            return body;
        }
        assert!(Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn dead_letters_are_listed_replayed_and_purged_over_http() {
    let broker = Brokerd::start();
    let native = Client::connect(broker.addr()).await.unwrap();
    native.create_topic("jobs", 1, QUEUE_CONFIG).await.unwrap();
    let (status, body) = get(&broker, "/v1/topics/jobs/dlq").await;
    assert_eq!(
        (status, &body["total"], &body["dead_letter_topic"]),
        (200, &json!(0), &json!("jobs.dlq"))
    );
    produce(
        &native,
        "jobs",
        vec![Record::new("retry me").with_header("h", "1")],
    )
    .await;
    assert_eq!(dead_letter_next(&broker).await, "retry me");

    let listed = letters(&broker, 1).await;
    let letter = &listed["letters"][0];
    assert_eq!(letter["reason"], "nope");
    assert_eq!(letter["attempts"], 3);
    assert_eq!(letter["group"], "workers");
    assert_eq!(
        (&letter["original_topic"], &letter["original_offset"]),
        (&json!("jobs"), &json!(0))
    );
    assert_eq!(letter["record"]["value"], "retry me");

    // Replayed: back on its topic without the dlq.* headers, attempts from 1 again,
    // and gone from the dead-letter topic.
    let (status, body) = post(&broker, "/v1/topics/jobs/dlq/replay", json!(null)).await;
    assert_eq!((status, &body["count"]), (200, &json!(1)), "{body}");
    assert_eq!(letters(&broker, 0).await["letters"], json!([]));
    let back = receive_one(&broker, "jobs", "workers", "").await;
    assert_eq!(back["attempt"], 1, "{back}");
    assert_eq!(back["record"]["offset"], 1);
    assert_eq!(back["record"]["value"], "retry me");
    assert_eq!(header(&back["record"], "h"), Some("1"));
    assert_eq!(header(&back["record"], "dlq.reason"), None);
    let described = native.describe_topic("jobs.dlq").await.unwrap();
    assert_eq!(
        described.partitions[0].start_offset, 1,
        "deleted natively too"
    );

    // Dead again (its receive above was attempt 1), then purged.
    let id = back["delivery_id"].as_str().unwrap();
    let path = format!("/v1/topics/jobs/queues/workers/messages/{id}/nack");
    assert_eq!(
        post(&broker, &path, json!({"reason": "x", "delay_ms": 0}))
            .await
            .0,
        200
    );
    for _ in 2..=3 {
        let message = receive_one(&broker, "jobs", "workers", "").await;
        let id = message["delivery_id"].as_str().unwrap();
        let path = format!("/v1/topics/jobs/queues/workers/messages/{id}/nack");
        assert_eq!(
            post(&broker, &path, json!({"reason": "x", "delay_ms": 0}))
                .await
                .0,
            200
        );
    }
    letters(&broker, 1).await;
    let (status, body) = delete(&broker, "/v1/topics/jobs/dlq").await;
    assert_eq!((status, &body["count"]), (200, &json!(1)), "{body}");
    assert_eq!(letters(&broker, 0).await["total"], 0);
    let (status, _) = get(&broker, "/v1/topics/nothing/dlq").await;
    assert_eq!(status, 404);
}
