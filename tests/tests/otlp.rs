//! OTLP export, black-box: brokerd exports the spans of a traced message to an OTLP
//! receiver of the test's own (`otlp_support`), and with no collector listening it
//! serves as before.

mod otlp_support;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use client::tracing_context::new_trace;
use client::{Client, ProducerConfig, QueueConsumerConfig, Record};
use integration_tests::{brokerctl, brokerd_bin, Brokerd, Launch};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use otlp_support::{hex, int, text, Collector, Received};
use tokio::time::{timeout, Instant};

const DEADLINE: Duration = Duration::from_secs(30);

fn write_config(dir: &Path, tracing: &str) -> String {
    let path = dir.join("brokerd.toml");
    std::fs::write(&path, format!("[tracing]\n{tracing}\n")).unwrap();
    path.to_str().unwrap().to_string()
}

/// Produces one traced and one untraced message to `orders` (three attempts, short
/// backoff) and nacks the traced one until it is dead-lettered; returns the trace
/// context's header as produced, and as the consumer received it (what its own span
/// would continue).
async fn dead_letter_a_traced_message(addr: &str) -> (String, String) {
    let client = Client::connect(addr.to_string()).await.unwrap();
    let config = [
        ("max_delivery_attempts", "3"),
        ("retry_backoff_ms", "20"),
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
    traced.await.unwrap();
    plain.await.unwrap();
    producer.close().await.unwrap();
    let mut consumer = client
        .queue_consumer("orders", "workers", QueueConsumerConfig::default())
        .await
        .unwrap();
    let mut nacks = 0;
    let mut received = String::new();
    while nacks < 3 {
        let message = timeout(DEADLINE, consumer.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if message.value().map(|v| &v[..]) == Some(b"poison") {
            let header = message.headers().iter().find(|(k, _)| k == "traceparent");
            received = String::from_utf8(header.unwrap().1.to_vec()).unwrap();
            message.nack("cannot parse").await.unwrap();
            nacks += 1;
        } else {
            message.ack().await.unwrap();
        }
    }
    consumer.close().await.unwrap();
    (context.to_header(), received)
}

fn name_with_attempt(r: &Received) -> String {
    let attempt = int(&r.span.attributes, "brokerd.attempt");
    match (r.span.name.as_str(), attempt) {
        ("deliver" | "nack", Some(a)) => format!("{} #{a}", r.span.name),
        (name, _) => name.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_message_reaches_the_collector_as_one_linked_trace() {
    let collector = Collector::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "otlp_endpoint = \"{}\"\notlp_service_name = \"brokerd-under-test\"\notlp_flush_interval_ms = 20\n",
            collector.endpoint()
        ),
    );
    let broker = Brokerd::start_with(&["--config", &config]);
    let (header, consumed) = dead_letter_a_traced_message(broker.addr()).await;
    let trace_id = header[3..35].to_string();
    let producer_span = header[36..52].to_string();
    // A consumer's span continues the header it received: the same trace, below the
    // producer's span, like the broker's first span.
    assert_eq!(
        consumed, header,
        "consumers get the producer's context unchanged"
    );

    let spans = collector
        .wait_for(DEADLINE, |spans| {
            spans.iter().any(|r| r.span.name == "dead-letter")
        })
        .await;
    assert_eq!(collector.malformed(), Vec::<String>::new());
    assert!(
        spans.iter().all(|r| hex(&r.span.trace_id) == trace_id),
        "only the traced message has spans, all in its trace"
    );

    let mut names: Vec<String> = spans.iter().map(name_with_attempt).collect();
    names.sort();
    let mut expected = [
        "produce",
        "append",
        "durable",
        "deliver #1",
        "nack #1",
        "retry",
        "deliver #2",
        "nack #2",
        "retry",
        "deliver #3",
        "nack #3",
        "dead-letter",
    ]
    .map(String::from)
    .to_vec();
    expected.sort();
    assert_eq!(names, expected, "every span of the trace, each once");

    // Parent links: the broker's first span hangs off the producer's span; every
    // other span's parent is a span the collector received.
    let by_id: HashMap<String, &Received> =
        spans.iter().map(|r| (hex(&r.span.span_id), r)).collect();
    assert_eq!(by_id.len(), spans.len(), "span ids are distinct");
    let parent = |r: &Received| hex(&r.span.parent_span_id);
    let parent_name = |r: &Received| by_id.get(&parent(r)).map(|p| name_with_attempt(p));
    for r in &spans {
        let name = name_with_attempt(r);
        if r.span.name == "produce" {
            assert_eq!(
                parent(r),
                producer_span,
                "the producer's span is the root's parent"
            );
            continue;
        }
        let Some(parent_name) = parent_name(r) else {
            panic!("{name}'s parent {} was not received", parent(r));
        };
        let expected = match r.span.name.as_str() {
            "append" | "durable" | "deliver" => "produce".to_string(),
            "nack" => name.replace("nack", "deliver"),
            "retry" | "dead-letter" => {
                assert!(
                    parent_name.starts_with("nack #"),
                    "{name} below {parent_name}"
                );
                continue;
            }
            other => panic!("unexpected span {other}"),
        };
        assert_eq!(parent_name, expected, "{name}'s parent");
    }
    let dead_letter = spans.iter().find(|r| r.span.name == "dead-letter").unwrap();
    assert_eq!(parent_name(dead_letter).as_deref(), Some("nack #3"));

    // Kinds, times, status and the key attributes.
    for r in &spans {
        let s = &r.span;
        assert!(
            s.start_time_unix_nano > 1_600_000_000_000_000_000
                && s.end_time_unix_nano >= s.start_time_unix_nano,
            "{}: unix nanos",
            s.name
        );
        assert_eq!(
            text(&s.attributes, "messaging.destination.name"),
            Some("orders"),
            "{}",
            s.name
        );
        assert_eq!(
            text(&s.attributes, "messaging.destination.partition.id"),
            Some("0")
        );
        assert_eq!(int(&s.attributes, "brokerd.offset"), Some(0));
        assert_eq!(
            text(&r.resource, "service.name"),
            Some("brokerd-under-test")
        );
        assert_eq!(
            text(&r.resource, "service.instance.id"),
            Some(broker.addr()),
            "the instance is the broker's bound address"
        );
        let kind = match s.name.as_str() {
            "produce" | "nack" => SpanKind::Server,
            "deliver" => SpanKind::Producer,
            _ => SpanKind::Internal,
        };
        assert_eq!(s.kind, kind as i32, "{}", s.name);
        let failed = matches!(s.name.as_str(), "nack" | "dead-letter");
        let code = s.status.as_ref().map_or(0, |st| st.code);
        assert_eq!(
            code == StatusCode::Error as i32,
            failed,
            "{}: status",
            s.name
        );
    }
    for r in spans.iter().filter(|r| r.span.name == "nack") {
        let s = &r.span;
        assert_eq!(
            text(&s.attributes, "messaging.consumer.group.name"),
            Some("workers")
        );
        assert_eq!(text(&s.attributes, "brokerd.reason"), Some("cannot parse"));
        assert_eq!(s.status.as_ref().unwrap().message, "cannot parse");
    }
    let s = &dead_letter.span;
    assert_eq!(
        text(&s.attributes, "brokerd.dead_letter_topic"),
        Some("orders.dlq")
    );
    assert_eq!(int(&s.attributes, "brokerd.attempts"), Some(3));
    assert_eq!(
        s.status.as_ref().unwrap().message,
        "dead-lettered to orders.dlq after 3 attempts"
    );

    // The same spans are still on __traces.
    let (ok, out, _) = brokerctl(broker.addr(), &["trace", &trace_id], "");
    assert!(ok && out.contains("dead-letter"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_collector_down_the_broker_serves_and_counts_the_loss() {
    // A port nothing listens on: bound once, then released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "otlp_endpoint = \"http://127.0.0.1:{port}\"\notlp_flush_interval_ms = 10\notlp_max_retries = 1\notlp_retry_backoff_ms = 10\notlp_queue_spans = 16\notlp_batch_spans = 4\n"
        ),
    );
    let log = dir.path().join("brokerd.log");
    let broker = Launch::new(brokerd_bin())
        .args(["--config", &config])
        .log_to(&log)
        .start()
        .unwrap();
    let client = Client::connect(broker.addr().to_string()).await.unwrap();
    client.create_topic("orders", 1, &[]).await.unwrap();
    let producer = client
        .producer("orders", ProducerConfig::default())
        .await
        .unwrap();
    // Far more spans than the export queue holds: produces must not wait for it.
    let contexts: Vec<_> = (0..200).map(|_| new_trace()).collect();
    let produced = async {
        let mut acks = Vec::new();
        for context in &contexts {
            acks.push(
                producer
                    .send(Record::new("x").with_trace(context))
                    .await
                    .unwrap(),
            );
        }
        for ack in acks {
            ack.await.unwrap();
        }
    };
    timeout(DEADLINE, produced)
        .await
        .expect("produces are not held up by the unreachable collector");
    producer.close().await.unwrap();

    // Spans are still recorded on __traces...
    let trace_id = contexts[199].to_header()[3..35].to_string();
    let until = Instant::now() + DEADLINE;
    loop {
        let (ok, out, _) = brokerctl(broker.addr(), &["trace", &trace_id], "");
        if ok && out.contains("durable") {
            break;
        }
        assert!(Instant::now() < until, "{out}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ...and the lost export is counted in a (rate-limited) warning.
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let warnings: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("exporting trace spans failed"))
            .collect();
        if let Some(line) = warnings.first() {
            assert!(
                line.contains(&format!("127.0.0.1:{port}")) && line.contains("failed_total="),
                "{line}"
            );
            assert_eq!(warnings.len(), 1, "one warning per 30 s, not one per batch");
            break;
        }
        assert!(Instant::now() < until, "no export warning in {text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ...and in the metrics.
    let metrics = format!("http://{}/metrics", broker.http_addr());
    loop {
        let text = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
        let failed = text
            .lines()
            .find_map(|l| l.strip_prefix(r#"brokerd_otlp_spans_total{outcome="failed"} "#))
            .and_then(|n| n.trim().parse::<u64>().ok());
        if failed.is_some_and(|n| n > 0) {
            assert!(
                text.contains(r#"brokerd_otlp_spans_total{outcome="exported"} 0"#),
                "{text}"
            );
            break;
        }
        assert!(Instant::now() < until, "no failed export counted:\n{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
