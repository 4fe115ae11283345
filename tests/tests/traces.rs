//! Tracing end to end: a traced message nacked until it is dead-lettered leaves a trace
//! whose spans are in order with the right parents; an untraced one leaves none.

use std::time::Duration;

use client::tracing_context::new_trace;
use client::{Client, ProducerConfig, QueueConsumerConfig, Record};
use integration_tests::{brokerctl, Brokerd};
use tokio::time::{timeout, Instant};

const DEADLINE: Duration = Duration::from_secs(30);

/// The spans of `trace_id` as `brokerctl trace --json` prints them, once one named
/// `name` is among them (spans are written in batches off the hot path, so poll).
async fn spans_once(addr: &str, trace_id: &str, name: &str) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (ok, out, _) = brokerctl(addr, &["trace", trace_id, "--json"], "");
        let spans: Vec<serde_json::Value> = if ok {
            out.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        } else {
            Vec::new()
        };
        if spans.iter().any(|s| s["name"] == name) {
            return spans;
        }
        assert!(Instant::now() < deadline, "spans so far: {spans:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_and_dead_lettered_message_leaves_a_linked_trace() {
    let broker = Brokerd::start();
    let addr = broker.addr().to_string();
    let client = Client::connect(addr.clone()).await.unwrap();
    let config = [
        ("max_delivery_attempts", "3"),
        ("retry_backoff_ms", "50"),
        ("retry_jitter", "0"),
    ];
    client.create_topic("orders", 1, &config).await.unwrap();
    let context = new_trace();
    let producer = client
        .producer("orders", ProducerConfig::default())
        .await
        .unwrap();
    let traced = producer
        .send(Record::new("poison").with_trace(&context))
        .await
        .unwrap();
    let plain = producer.send(Record::new("fine")).await.unwrap();
    assert_eq!(traced.await.unwrap().offset, Some(0));
    assert_eq!(plain.await.unwrap().offset, Some(1));
    producer.close().await.unwrap();

    let mut consumer = client
        .queue_consumer("orders", "workers", QueueConsumerConfig::default())
        .await
        .unwrap();
    let mut nacks = 0;
    while nacks < 3 {
        let message = timeout(DEADLINE, consumer.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if message.value().map(|v| &v[..]) == Some(b"poison") {
            let header = message
                .headers()
                .iter()
                .find(|(k, _)| k == "traceparent")
                .map(|(_, v)| v.clone());
            assert_eq!(
                header.as_deref(),
                Some(context.to_header().as_bytes()),
                "consumers receive the trace context"
            );
            message.nack("cannot parse").await.unwrap();
            nacks += 1;
        } else {
            message.ack().await.unwrap();
        }
    }

    let trace_id = client::tracing_context::TraceParent::to_header(&context)[3..35].to_string();
    let spans = spans_once(&addr, &trace_id, "dead-letter").await;
    let names: Vec<String> = spans
        .iter()
        .map(|s| {
            let attempt = s["attributes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["key"] == "attempt")
                .map(|a| a["value"].as_str().unwrap().to_string());
            match (s["name"].as_str().unwrap(), attempt) {
                ("deliver", Some(a)) => format!("deliver #{a}"),
                (name, _) => name.to_string(),
            }
        })
        .collect();
    assert_eq!(
        names,
        [
            "produce",
            "append",
            "durable",
            "deliver #1",
            "nack",
            "retry",
            "deliver #2",
            "nack",
            "retry",
            "deliver #3",
            "nack",
            "dead-letter"
        ],
        "spans in order"
    );
    let id = |i: usize| spans[i]["span_id"].as_str().unwrap().to_string();
    let parent = |i: usize| spans[i]["parent_id"].as_str().unwrap().to_string();
    assert_eq!(
        parent(0),
        client::tracing_context::TraceParent::to_header(&context)[36..52].to_string(),
        "the producer's span is the parent"
    );
    assert_eq!(parent(1), id(0), "the append is part of the produce");
    assert_eq!(parent(2), id(0), "durable follows the produce");
    for deliver in [3, 6, 9] {
        assert_eq!(
            parent(deliver),
            id(0),
            "deliveries hang off the produce span"
        );
        assert_eq!(
            parent(deliver + 1),
            id(deliver),
            "the nack belongs to its delivery"
        );
    }
    assert_eq!(parent(5), id(4), "the retry follows its nack");
    assert_eq!(parent(8), id(7));
    assert_eq!(parent(11), id(10), "dead-lettered after the last nack");

    // The tree, as a person reads it.
    let (ok, out, _) = brokerctl(&addr, &["trace", &trace_id], "");
    assert!(
        ok && out.contains("deliver #3")
            && out.contains("dead-letter")
            && out.contains("reason=cannot parse"),
        "{out}"
    );
    let (ok, out, _) = brokerctl(&addr, &["traces", "--topic", "orders"], "");
    assert!(ok && out.contains(&trace_id), "{out}");

    // The untraced message left no spans at all.
    let (_, all, _) = brokerctl(&addr, &["traces", "--json"], "");
    assert_eq!(all.lines().count(), 1, "{all}");
    consumer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traced_publish_records_its_route_and_one_produce_per_destination() {
    let broker = Brokerd::start();
    let addr = broker.addr().to_string();
    let client = Client::connect(addr.clone()).await.unwrap();
    for topic in ["a", "b"] {
        client.create_topic(topic, 1, &[]).await.unwrap();
        client.add_route("orders.#", topic, &[]).await.unwrap();
    }
    let context = new_trace();
    let header = context.to_header();
    client
        .publish(
            "orders.created",
            &[("traceparent", header.as_str())],
            [bytes::Bytes::from("x")],
            client::AckLevel::Durable,
        )
        .await
        .unwrap();
    let trace_id = header[3..35].to_string();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (ok, out, _) = brokerctl(&addr, &["trace", &trace_id], "");
        if ok && out.matches("produce").count() == 2 {
            assert!(
                out.contains("route")
                    && out.contains("routing_key=orders.created")
                    && out.contains("topics=a,b"),
                "{out}"
            );
            // The produce spans hang below the route span (indented one level deeper).
            let route_indent = out
                .lines()
                .find(|l| l.trim_start().starts_with("route"))
                .map(|l| l.len() - l.trim_start().len())
                .unwrap();
            let produce_indent = out
                .lines()
                .find(|l| l.trim_start().starts_with("produce"))
                .map(|l| l.len() - l.trim_start().len())
                .unwrap();
            assert!(produce_indent > route_indent, "{out}");
            break;
        }
        assert!(Instant::now() < deadline, "{out}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_delivery_of_a_traced_message_is_spanned() {
    use client::protocol::ops::subscribe::{StartPosition, SubscribeTarget};
    let broker = Brokerd::start();
    let addr = broker.addr().to_string();
    let client = Client::connect(addr.clone()).await.unwrap();
    client.create_topic("feed", 1, &[]).await.unwrap();
    let context = new_trace();
    let producer = client
        .producer("feed", ProducerConfig::default())
        .await
        .unwrap();
    producer
        .send(Record::new("item").with_trace(&context))
        .await
        .unwrap()
        .await
        .unwrap();
    let mut subscription = client
        .subscribe(
            "feed",
            SubscribeTarget::Partition(0),
            StartPosition::Earliest,
            10,
            1 << 20,
        )
        .await
        .unwrap();
    let delivery = timeout(DEADLINE, subscription.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((delivery.from_offset, delivery.to_offset), (0, 1));
    let trace_id = context.to_header()[3..35].to_string();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (ok, out, _) = brokerctl(&addr, &["trace", &trace_id], "");
        if ok && out.contains("deliver #1") {
            assert!(out.contains("subscription="), "{out}");
            break;
        }
        assert!(Instant::now() < deadline, "{out}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ack_of_a_retried_message_belongs_to_its_last_delivery() {
    let broker = Brokerd::start();
    let addr = broker.addr().to_string();
    let client = Client::connect(addr.clone()).await.unwrap();
    let config = [("retry_backoff_ms", "50"), ("retry_jitter", "0")];
    client.create_topic("jobs", 1, &config).await.unwrap();
    let context = new_trace();
    let producer = client
        .producer("jobs", ProducerConfig::default())
        .await
        .unwrap();
    let sent = producer
        .send(Record::new("flaky").with_trace(&context))
        .await
        .unwrap();
    sent.await.unwrap();
    producer.close().await.unwrap();

    let mut consumer = client
        .queue_consumer("jobs", "workers", QueueConsumerConfig::default())
        .await
        .unwrap();
    let first = timeout(DEADLINE, consumer.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    first.nack("try again").await.unwrap();
    let second = timeout(DEADLINE, consumer.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    second.ack().await.unwrap();

    let trace_id = client::tracing_context::TraceParent::to_header(&context)[3..35].to_string();
    let spans = spans_once(&addr, &trace_id, "ack").await;
    let find = |name: &str, attempt: Option<&str>| {
        spans
            .iter()
            .find(|s| {
                s["name"] == name
                    && attempt.is_none_or(|a| {
                        s["attributes"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|kv| kv["key"] == "attempt" && kv["value"] == a)
                    })
            })
            .unwrap_or_else(|| panic!("no {name} span in {spans:?}"))
    };
    let ack = find("ack", None);
    let second_delivery = find("deliver", Some("2"));
    assert_eq!(
        ack["parent_id"], second_delivery["span_id"],
        "the ack hangs off the delivery that was acked: {spans:?}"
    );
    consumer.close().await.unwrap();
}

/// The value of attribute `key` of a span as `brokerctl trace --json` prints it.
fn attribute<'a>(span: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .and_then(|a| a["value"].as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_group_fetching_and_committing_a_traced_message_leaves_deliver_and_commit_spans() {
    let broker = Brokerd::start();
    let addr = broker.addr().to_string();
    let client = Client::connect(addr.clone()).await.unwrap();
    client.create_topic("orders", 1, &[]).await.unwrap();
    let context = new_trace();
    let producer = client
        .producer("orders", ProducerConfig::default())
        .await
        .unwrap();
    let traced = producer
        .send(Record::new("traced").with_trace(&context))
        .await
        .unwrap();
    let plain = producer.send(Record::new("plain")).await.unwrap();
    traced.await.unwrap();
    plain.await.unwrap();
    producer.close().await.unwrap();

    // A reader outside any group (its own connection) is not a delivery to anyone.
    let other = Client::connect(addr.clone()).await.unwrap();
    let mut reader = other.partition_reader("orders", &[(0, 0)]);
    for _ in 0..2 {
        timeout(DEADLINE, reader.next()).await.unwrap().unwrap();
    }

    let config = client::ConsumerConfig::default().auto_commit(None);
    let mut consumer = client.consumer("orders", "billing", config).await.unwrap();
    for expected in ["traced", "plain"] {
        let record = timeout(DEADLINE, consumer.next()).await.unwrap().unwrap();
        assert_eq!(record.value.as_deref(), Some(expected.as_bytes()));
    }
    let trace_id = context.to_header()[3..35].to_string();
    let spans = spans_once(&addr, &trace_id, "deliver").await;
    assert!(
        spans.iter().all(|s| s["name"] != "commit"),
        "nothing committed yet: {spans:?}"
    );

    consumer.commit().await.unwrap();
    let spans = spans_once(&addr, &trace_id, "commit").await;
    let names: Vec<&str> = spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["produce", "append", "durable", "deliver", "commit"],
        "one delivery (the group's, not the plain reader's), then its commit: {spans:?}"
    );
    let (produce, deliver, commit) = (&spans[0], &spans[3], &spans[4]);
    assert_eq!(deliver["parent_id"], produce["span_id"]);
    assert_eq!(commit["parent_id"], deliver["span_id"]);
    assert_eq!(attribute(deliver, "group"), Some("billing"));
    assert_eq!(
        attribute(deliver, "member"),
        Some(consumer.member_id().as_str())
    );
    assert_eq!(attribute(commit, "group"), Some("billing"));
    assert_eq!(attribute(commit, "committed_offset"), Some("2"));

    // The untraced message left no spans at all.
    let (_, all, _) = brokerctl(&addr, &["traces", "--json"], "");
    assert_eq!(all.lines().count(), 1, "{all}");
    consumer.close().await.unwrap();
}
