//! Routing end to end: rules fan a publish out to exactly the matching topics, survive
//! a restart, and brokerctl manages them.

use client::{AckLevel, Client};
use integration_tests::{brokerctl, Brokerd};

async fn messages(client: &Client, topic: &str) -> u64 {
    client
        .describe_topic(topic)
        .await
        .unwrap()
        .partitions
        .iter()
        .map(|p| p.end_offset)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_fan_out_to_matching_topics_and_rules_survive_a_restart() {
    let mut broker = Brokerd::start();
    let client = Client::connect(broker.addr()).await.unwrap();
    for topic in ["all-orders", "eu-orders", "audit", "urgent"] {
        client.create_topic(topic, 2, &[]).await.unwrap();
    }
    client
        .add_route("orders.#", "all-orders", &[])
        .await
        .unwrap();
    client
        .add_route("orders.*.eu", "eu-orders", &[])
        .await
        .unwrap();
    client
        .add_route("orders.created.*", "all-orders", &[])
        .await
        .unwrap(); // same topic twice
    client.add_route("#", "audit", &[]).await.unwrap();
    let urgent = client
        .add_route("#", "urgent", &[("priority", "high")])
        .await
        .unwrap();

    let routed = client
        .publish(
            "orders.created.eu",
            &[],
            [bytes::Bytes::from("o1")],
            AckLevel::Durable,
        )
        .await
        .unwrap();
    let mut topics: Vec<String> = routed.iter().map(|r| r.topic.clone()).collect();
    topics.sort();
    assert_eq!(topics, ["all-orders", "audit", "eu-orders"]);
    let routed = client
        .publish(
            "payments.done",
            &[("priority", "high")],
            [bytes::Bytes::from("p1")],
            AckLevel::Durable,
        )
        .await
        .unwrap();
    let mut topics: Vec<String> = routed.iter().map(|r| r.topic.clone()).collect();
    topics.sort();
    assert_eq!(topics, ["audit", "urgent"]);
    assert_eq!(
        messages(&client, "all-orders").await,
        1,
        "once per topic even when two rules match"
    );
    assert_eq!(messages(&client, "eu-orders").await, 1);
    assert_eq!(messages(&client, "audit").await, 2);
    assert_eq!(messages(&client, "urgent").await, 1);

    client.delete_route(urgent).await.unwrap();
    drop(client);
    broker.restart();
    let client = Client::connect(broker.addr()).await.unwrap();
    let routes = client.list_routes().await.unwrap();
    assert_eq!(routes.len(), 4);
    let routed = client
        .publish(
            "orders.shipped.eu",
            &[("priority", "high")],
            [bytes::Bytes::from("o2")],
            AckLevel::Durable,
        )
        .await
        .unwrap();
    assert_eq!(routed.len(), 3, "{routed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unroutable_publishes_are_refused_with_a_clear_error() {
    let broker = Brokerd::start();
    let client = Client::connect(broker.addr()).await.unwrap();
    let error = client
        .publish(
            "nobody.listens",
            &[],
            [bytes::Bytes::from("x")],
            AckLevel::Durable,
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(client::ErrorCode::Unroutable));
    assert!(error.to_string().contains("nobody.listens"), "{error}");
}

#[test]
fn brokerctl_adds_lists_deletes_routes_and_publishes() {
    let broker = Brokerd::start();
    let addr = broker.addr();
    for topic in ["eu", "all"] {
        assert!(brokerctl(addr, &["topics", "create", topic, "--partitions", "1"], "").0);
    }
    let (ok, out, err) = brokerctl(addr, &["routes", "add", "orders.*.eu", "eu"], "");
    assert!(ok && out.contains("added route 1"), "{out}{err}");
    let (ok, out, _) = brokerctl(
        addr,
        &["routes", "add", "orders.#", "all", "--header", "source=web"],
        "",
    );
    assert!(ok && out.contains("added route 2"), "{out}");
    let (ok, out, _) = brokerctl(addr, &["routes"], "");
    assert!(
        ok && out.contains("orders.*.eu") && out.contains("source=web"),
        "{out}"
    );
    let (ok, out, err) = brokerctl(
        addr,
        &["publish", "orders.created.eu", "--header", "source=web"],
        "a\nb\n",
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "published 2 message(s) to all, eu");
    let (ok, out, _) = brokerctl(
        addr,
        &["consume", "eu", "--count", "2", "--timeout-ms", "2000"],
        "",
    );
    assert!(ok);
    assert_eq!(out, "a\nb\n");
    let (ok, _, _) = brokerctl(addr, &["routes", "delete", "1"], "");
    assert!(ok);
    let (ok, _, err) = brokerctl(addr, &["publish", "orders.created.eu"], "c\n");
    assert!(!ok && err.contains("no routing rule matches"), "{err}");
}

/// Deleting a topic deletes the rules that sent messages to it (as deleting a RabbitMQ
/// queue removes its bindings), so publishes its other rules match go on; an exact
/// duplicate rule is refused naming the rule it duplicates.
#[test]
fn deleting_a_topic_deletes_its_rules_and_duplicates_are_refused() {
    let mut broker = Brokerd::start();
    let addr = broker.addr().to_string();
    let addr = addr.as_str();
    for topic in ["kept", "doomed"] {
        assert!(brokerctl(addr, &["topics", "create", topic, "--partitions", "1"], "").0);
    }
    for (pattern, topic) in [
        ("orders.#", "kept"),
        ("orders.#", "doomed"),
        ("x", "doomed"),
    ] {
        let (ok, out, err) = brokerctl(addr, &["routes", "add", pattern, topic], "");
        assert!(ok, "{out}{err}");
    }
    let (ok, out, err) = brokerctl(addr, &["routes", "add", "orders.#", "kept"], "");
    assert!(!ok, "a duplicate was accepted: {out}");
    assert!(
        err.contains("invalid_request") && err.contains("routing rule 1 already routes"),
        "{err}"
    );

    let (ok, out, err) = brokerctl(addr, &["topics", "delete", "doomed"], "");
    assert!(ok, "{out}{err}");
    let (ok, out, _) = brokerctl(addr, &["--json", "routes"], "");
    assert!(ok);
    let routes: serde_json::Value = serde_json::from_str(&out).unwrap();
    let topics: Vec<&str> = routes
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["topic"].as_str().unwrap())
        .collect();
    assert_eq!(topics, ["kept"], "{out}");
    let (ok, out, err) = brokerctl(addr, &["publish", "orders.created"], "o1\n");
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "published 1 message(s) to kept");

    broker.restart();
    let addr = broker.addr();
    let (ok, out, _) = brokerctl(addr, &["routes"], "");
    assert!(ok && !out.contains("doomed"), "{out}");
}
