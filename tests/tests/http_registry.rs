//! The service registry, routes, traces and stats over HTTP against the real
//! brokerd, with a real HTTP client: what is done over HTTP is what `brokerctl` (the
//! real binary) and the native client see, and the other way round; TTLs expire
//! without heartbeats; the registry watch is a Server-Sent Events stream of the
//! changes, in order, resumable by `Last-Event-ID`; a principal without the ACL is
//! refused with 403 and changes nothing.

mod http_support;

use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

use client::{Client, ClientConfig, Credentials};
use http_support::{code, http1, json};
use integration_tests::{brokerctl, brokerd_bin, Brokerd, Launch};
use protocol::ops::security::{
    AclBinding, AclFilter, Operation, PatternType, Permission, ResourceType,
};
use serde_json::{json, Value};
use tokio::time::Instant;

/// How long a test waits for something the broker does by itself (an expiry, a span
/// written, an event streamed).
const DEADLINE: Duration = Duration::from_secs(15);
/// Between two looks at something awaited.
const POLL: Duration = Duration::from_millis(50);

fn url(broker: &Brokerd, path: &str) -> String {
    format!("http://{}{path}", broker.http_addr())
}

async fn native(broker: &Brokerd) -> Client {
    Client::connect(broker.addr()).await.unwrap()
}

/// `brokerctl --json ARGS` against `broker`, parsed.
fn brokerctl_json(broker: &Brokerd, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (ok, out, err) = brokerctl(broker.addr(), &all, "");
    assert!(ok, "brokerctl {args:?} failed: {err}");
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

async fn register(broker: &Brokerd, service: &str, id: &str, body: Value) -> (u16, Value) {
    json(
        http1()
            .put(url(
                broker,
                &format!("/v1/services/{service}/instances/{id}"),
            ))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn get(broker: &Brokerd, path: &str) -> (u16, Value) {
    json(http1().get(url(broker, path)).send().await.unwrap()).await
}

fn instance_ids(discovered: &Value) -> Vec<String> {
    discovered["instances"]
        .as_array()
        .unwrap_or_else(|| panic!("no instances: {discovered}"))
        .iter()
        .map(|i| i["instance_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn an_instance_registered_over_http_is_seen_by_brokerctl_and_natively() {
    let broker = Brokerd::start();
    let native = native(&broker).await;
    let body = json!({"address": "10.0.0.7:8080", "ttl_ms": 60_000,
        "tags": [{"key": "zone", "value": "eu-1"}, {"key": "role", "value": "api"}]});
    let (status, answer) = register(&broker, "billing", "billing-1", body).await;
    assert_eq!(status, 204, "{answer}");
    let (status, _) = register(
        &broker,
        "billing",
        "billing-2",
        json!({"address": "10.0.0.8:8080", "tags": [{"key": "zone", "value": "us-1"}]}),
    )
    .await;
    assert_eq!(status, 204);

    // brokerctl, the real binary, over the native protocol.
    let services = brokerctl_json(&broker, &["services"]);
    assert_eq!(services, json!([{"service": "billing", "instances": 2}]));
    let described = brokerctl_json(&broker, &["services", "billing"]);
    let first = &described[0];
    assert_eq!(first["instance_id"], "billing-1");
    assert_eq!(first["address"], "10.0.0.7:8080");
    assert_eq!(first["ttl_ms"], 60_000);
    assert_eq!(
        first["tags"],
        json!([{"key": "zone", "value": "eu-1"}, {"key": "role", "value": "api"}])
    );
    assert_eq!(described[1]["ttl_ms"], 10_000, "the default TTL");

    // The native client.
    let found = native
        .discover("billing", &[("zone", "eu-1")])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].instance_id, "billing-1");

    // Discovery over HTTP, with tag filters.
    let (status, all) = get(&broker, "/v1/services/billing").await;
    assert_eq!(status, 200);
    assert_eq!(instance_ids(&all), ["billing-1", "billing-2"]);
    let (_, eu) = get(&broker, "/v1/services/billing?tag=zone=eu-1").await;
    assert_eq!(instance_ids(&eu), ["billing-1"]);
    let (_, both) = get(&broker, "/v1/services/billing?tag=zone%3Deu-1&tag=role=api").await;
    assert_eq!(instance_ids(&both), ["billing-1"]);
    let (_, none) = get(&broker, "/v1/services/billing?tag=zone=eu-1&tag=role=db").await;
    assert_eq!(instance_ids(&none), Vec::<String>::new());
    let (status, bad) = get(&broker, "/v1/services/billing?tag=zone").await;
    assert_eq!((status, code(&bad)), (400, "invalid_request"));
    let (_, list) = get(&broker, "/v1/services").await;
    assert_eq!(
        list,
        json!({"services": [{"service": "billing", "instances": 2}]})
    );
    let (status, one) = get(&broker, "/v1/services/billing/instances/billing-2").await;
    assert_eq!(status, 200);
    assert_eq!(one["address"], "10.0.0.8:8080");
    assert_eq!(one["tags"], json!([{"key": "zone", "value": "us-1"}]));

    // Deregistered over HTTP: gone natively; a heartbeat now is a 404.
    let gone = http1()
        .delete(url(&broker, "/v1/services/billing/instances/billing-2"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);
    let found = native.discover("billing", &[]).await.unwrap();
    assert_eq!(found.len(), 1);
    let (status, answer) = json(
        http1()
            .post(url(
                &broker,
                "/v1/services/billing/instances/billing-2/heartbeat",
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code(&answer)), (404, "unknown_instance"));
    let (status, answer) = get(&broker, "/v1/services/billing/instances/billing-2").await;
    assert_eq!((status, code(&answer)), (404, "unknown_instance"));

    // Refused registrations store nothing.
    let (status, answer) = register(
        &broker,
        "billing",
        "b-3",
        json!({"address": "x", "ttl_ms": 10}),
    )
    .await;
    assert_eq!((status, code(&answer)), (400, "invalid_request"));
    let (status, answer) = register(&broker, "billing", "b-3", json!({"ttl_ms": 5000})).await;
    assert_eq!(
        (status, code(&answer)),
        (400, "invalid_request"),
        "no address"
    );
    assert_eq!(native.discover("billing", &[]).await.unwrap().len(), 1);

    // And registered natively, seen over HTTP.
    let handle = native
        .register_instance(client::Registration {
            service: "ledger".into(),
            instance_id: "l-1".into(),
            address: "10.0.0.9:9000".into(),
            tags: vec![],
            ttl: Duration::from_secs(30),
        })
        .await
        .unwrap();
    let (_, ledger) = get(&broker, "/v1/services/ledger").await;
    assert_eq!(instance_ids(&ledger), ["l-1"]);
    handle.close().await.unwrap();
}

#[tokio::test]
async fn heartbeats_keep_an_instance_and_its_ttl_expires_it_without_them() {
    let broker = Brokerd::start();
    let mut watching = watch(&broker, "/v1/services/jobs/watch?count=2", None).await;
    let ttl_ms = 1_000;
    let (status, _) = register(
        &broker,
        "jobs",
        "j-1",
        json!({"address": "10.0.0.1:1", "ttl_ms": ttl_ms}),
    )
    .await;
    assert_eq!(status, 204);
    let heartbeat_url = url(&broker, "/v1/services/jobs/instances/j-1/heartbeat");
    // Heartbeats every quarter TTL for three TTLs: it stays all along.
    let kept_until = Instant::now() + Duration::from_millis(3 * ttl_ms);
    let mut beats = tokio::time::interval(Duration::from_millis(ttl_ms / 4));
    let mut last_beat = Instant::now();
    while Instant::now() < kept_until {
        beats.tick().await;
        let beat = http1().post(&heartbeat_url).send().await.unwrap();
        assert_eq!(
            beat.status(),
            204,
            "heartbeat refused: the instance expired"
        );
        last_beat = Instant::now();
        let (_, found) = get(&broker, "/v1/services/jobs").await;
        assert_eq!(instance_ids(&found), ["j-1"]);
    }
    // Without them, it goes, no sooner than its TTL after the last one.
    let deadline = Instant::now() + DEADLINE;
    loop {
        // Discovery leaves it out once its TTL passed; the listing once the broker
        // expired it (within services::EXPIRY_CHECK_INTERVAL).
        let (_, found) = get(&broker, "/v1/services/jobs").await;
        let (_, listed) = get(&broker, "/v1/services").await;
        if instance_ids(&found).is_empty() && listed["services"] == json!([]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still registered: {found} {listed}"
        );
        tokio::time::sleep(POLL).await;
    }
    assert!(last_beat.elapsed() >= Duration::from_millis(ttl_ms));
    let services = brokerctl_json(&broker, &["services"]);
    assert_eq!(services, json!([]), "expired for brokerctl too");
    let beat = http1().post(&heartbeat_url).send().await.unwrap();
    assert_eq!(
        beat.status(),
        404,
        "an expired instance must register again"
    );
    let mut changes = Vec::new();
    while let Some(event) = watching.next().await {
        changes.push((event.event, event.data["instance_id"].clone()));
    }
    assert_eq!(
        changes,
        [
            ("registered".to_string(), json!("j-1")),
            ("expired".to_string(), json!("j-1"))
        ]
    );
}

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq)]
struct Sse {
    event: String,
    id: Option<u64>,
    data: Value,
}

/// Reads a text/event-stream response: events as they come, comments skipped.
struct SseReader {
    response: reqwest::Response,
    text: String,
    events: VecDeque<Sse>,
}

impl SseReader {
    fn new(response: reqwest::Response) -> SseReader {
        assert_eq!(response.status(), 200);
        let kind = response.headers()["content-type"].to_str().unwrap();
        assert!(kind.starts_with("text/event-stream"), "{kind}");
        SseReader {
            response,
            text: String::new(),
            events: VecDeque::new(),
        }
    }

    /// The next event, or `None` when the stream ended.
    async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Some(event);
            }
            let chunk = tokio::time::timeout(DEADLINE, self.response.chunk())
                .await
                .expect("no event in time")
                .unwrap()?;
            self.text.push_str(std::str::from_utf8(&chunk).unwrap());
            while let Some(end) = self.text.find("\n\n") {
                let block: String = self.text.drain(..end + 2).collect();
                let (mut event, mut id, mut data) = (None, None, String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().parse().unwrap());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if let Some(event) = event {
                    let data = serde_json::from_str(&data).unwrap();
                    self.events.push_back(Sse { event, id, data });
                }
            }
        }
    }
}

async fn watch(broker: &Brokerd, path: &str, last_event_id: Option<u64>) -> SseReader {
    let mut request = http1().get(url(broker, path));
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id.to_string());
    }
    // The answer's head comes once the watch's position is fixed: what happens
    // from here on is streamed.
    SseReader::new(request.send().await.unwrap())
}

#[tokio::test]
async fn the_watch_streams_registrations_and_deregistrations_in_order() {
    let broker = Brokerd::start();
    let native = native(&broker).await;
    let mut billing = watch(&broker, "/v1/services/billing/watch?count=3", None).await;
    let mut everything = watch(&broker, "/v1/registry/watch?count=4", None).await;

    let body = json!({"address": "10.0.0.7:8080", "tags": [{"key": "zone", "value": "a"}]});
    assert_eq!(
        register(&broker, "billing", "b-1", body.clone()).await.0,
        204
    );
    assert_eq!(register(&broker, "other", "o-1", body.clone()).await.0, 204);
    assert_eq!(register(&broker, "billing", "b-2", body).await.0, 204);
    // A heartbeat is not a change; a native deregistration is.
    let beat = http1()
        .post(url(&broker, "/v1/services/billing/instances/b-1/heartbeat"))
        .send()
        .await
        .unwrap();
    assert_eq!(beat.status(), 204);
    let (ok, _, err) = brokerctl(broker.addr(), &["services", "billing"], "");
    assert!(ok, "{err}");
    native
        .request(protocol::Request::DeregisterInstance(
            protocol::ops::registry::InstanceRequest {
                service: "billing".into(),
                instance_id: "b-1".into(),
            },
        ))
        .await
        .unwrap();

    let mut seen = Vec::new();
    while let Some(event) = billing.next().await {
        seen.push(event);
    }
    let summary: Vec<(&str, &str)> = seen
        .iter()
        .map(|e| (e.event.as_str(), e.data["instance_id"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            ("registered", "b-1"),
            ("registered", "b-2"),
            ("deregistered", "b-1")
        ],
        "the stream ends after count=3"
    );
    assert_eq!(seen[0].data["address"], "10.0.0.7:8080");
    assert_eq!(seen[0].data["tags"], json!([{"key": "zone", "value": "a"}]));
    assert_eq!(seen[0].data["ttl_ms"], 10_000);
    assert_eq!(seen[2].data["service"], "billing");
    let ids: Vec<u64> = seen.iter().map(|e| e.id.unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    let mut all = Vec::new();
    while let Some(event) = everything.next().await {
        all.push((
            event.event,
            event.data["instance_id"].as_str().unwrap().to_string(),
        ));
    }
    assert_eq!(
        all,
        [
            ("registered".to_string(), "b-1".to_string()),
            ("registered".to_string(), "o-1".to_string()),
            ("registered".to_string(), "b-2".to_string()),
            ("deregistered".to_string(), "b-1".to_string()),
        ]
    );

    // Reconnecting with the first event's id resumes after it.
    let mut resumed = watch(&broker, "/v1/services/billing/watch?count=2", Some(ids[0])).await;
    let mut again = Vec::new();
    while let Some(event) = resumed.next().await {
        again.push(event);
    }
    assert_eq!(again, seen[1..]);

    // An idle watch ends after its timeout, with nothing.
    let mut idle = watch(&broker, "/v1/services/nobody/watch?timeout_ms=200", None).await;
    assert_eq!(idle.next().await, None);

    let (status, answer) = json(
        http1()
            .get(url(&broker, "/v1/registry/watch"))
            .header("last-event-id", "not-a-number")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code(&answer)), (400, "invalid_request"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_watcher_misses_nothing_and_a_watch_ends_cleanly_at_shutdown() {
    let mut broker = Brokerd::start();
    // More changes than a watch holds decoded (WATCH_BUFFER_EVENTS, 256), made
    // while its client reads nothing: they wait in __registry, not in the broker.
    let changes = 300;
    let mut slow = watch(
        &broker,
        &format!("/v1/services/many/watch?count={changes}"),
        None,
    )
    .await;
    let client = http1();
    for i in 0..changes {
        let answer = client
            .put(url(
                &broker,
                &format!("/v1/services/many/instances/m-{i:03}"),
            ))
            .json(&json!({"address": format!("10.0.1.{}:80", i % 250)}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 204);
    }
    let mut seen = Vec::new();
    while let Some(event) = slow.next().await {
        assert_eq!(event.event, "registered");
        seen.push(event.data["instance_id"].as_str().unwrap().to_string());
    }
    let expected: Vec<String> = (0..changes).map(|i| format!("m-{i:03}")).collect();
    assert_eq!(seen, expected, "every change, in order");

    // A watch open at shutdown ends its stream (cleanly: the body is complete, not
    // cut), so it does not hold the broker's graceful shutdown up.
    let mut open = watch(&broker, "/v1/registry/watch", None).await;
    let stopped = tokio::task::spawn_blocking(move || broker.stop());
    assert_eq!(open.next().await, None);
    assert!(stopped.await.unwrap(), "brokerd exited cleanly");
}

/// Every record of `topic` (one partition) natively: (key, value) as text.
async fn records_of(client: &Client, topic: &str) -> Vec<(Option<String>, String)> {
    let fetched = client
        .fetch(topic, 0, 0, 1 << 20, Duration::ZERO)
        .await
        .unwrap();
    let mut out = VecDeque::new();
    client::decode_records(0, fetched.batches, 0, None, &mut out).unwrap();
    out.into_iter()
        .map(|r| {
            (
                r.key.map(|k| String::from_utf8(k.to_vec()).unwrap()),
                String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
            )
        })
        .collect()
}

async fn add_route(broker: &Brokerd, body: Value) -> (u16, Value) {
    json(
        http1()
            .post(url(broker, "/v1/routes"))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn publish(broker: &Brokerd, key: &str, body: Value) -> (u16, Value) {
    json(
        http1()
            .post(url(broker, &format!("/v1/publish/{key}")))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn routed_topics(answer: &Value) -> Vec<String> {
    let mut topics: Vec<String> = answer["routed"]
        .as_array()
        .unwrap_or_else(|| panic!("not routed: {answer}"))
        .iter()
        .map(|r| r["topic"].as_str().unwrap().to_string())
        .collect();
    topics.sort();
    topics
}

#[tokio::test]
async fn routes_are_added_listed_and_deleted_and_publish_lands_in_the_matching_topics() {
    let broker = Brokerd::start();
    let native = native(&broker).await;
    for topic in ["orders-eu", "orders-all", "orders-vip"] {
        native.create_topic(topic, 1, &[]).await.unwrap();
    }
    let (status, eu) = add_route(
        &broker,
        json!({"pattern": "orders.*.eu", "topic": "orders-eu"}),
    )
    .await;
    assert_eq!(status, 201, "{eu}");
    let (status, all) = add_route(
        &broker,
        json!({"pattern": "orders.#", "topic": "orders-all"}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = add_route(
        &broker,
        json!({"pattern": "orders.#", "topic": "orders-vip", "headers": [{"key": "tier", "value": "vip"}]}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, answer) =
        add_route(&broker, json!({"pattern": "orders.#", "topic": "nope"})).await;
    assert_eq!((status, code(&answer)), (404, "unknown_topic"));

    let (status, list) = get(&broker, "/v1/routes").await;
    assert_eq!(status, 200);
    let routes = list["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 3);
    assert_eq!(routes[0]["route_id"], eu["route_id"]);
    assert_eq!(routes[0]["pattern"], "orders.*.eu");
    assert_eq!(routes[0]["topic"], "orders-eu");
    assert_eq!(
        routes[2]["headers"],
        json!([{"key": "tier", "value": "vip"}])
    );
    assert_eq!(
        brokerctl_json(&broker, &["routes"]),
        Value::Array(routes.clone()),
        "brokerctl lists the same rules"
    );

    let (status, answer) = publish(
        &broker,
        "orders.created.eu",
        json!({"records": [{"key": "k1", "value": "first"}, {"value": {"n": 2}}]}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(routed_topics(&answer), ["orders-all", "orders-eu"]);
    let (status, answer) = publish(
        &broker,
        "orders.created.us",
        json!({"headers": [{"key": "tier", "value": "vip"}], "records": [{"value": "third"}]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(routed_topics(&answer), ["orders-all", "orders-vip"]);

    let first_two = vec![
        (Some("k1".to_string()), "first".to_string()),
        (None, r#"{"n":2}"#.to_string()),
    ];
    assert_eq!(records_of(&native, "orders-eu").await, first_two);
    let mut everything = first_two.clone();
    everything.push((None, "third".to_string()));
    assert_eq!(records_of(&native, "orders-all").await, everything);
    assert_eq!(
        records_of(&native, "orders-vip").await,
        [(None, "third".to_string())]
    );

    // Deleted: publishing no longer reaches it; deleting again is a 404.
    let route_url = url(&broker, &format!("/v1/routes/{}", all["route_id"]));
    assert_eq!(
        http1().delete(&route_url).send().await.unwrap().status(),
        204
    );
    let (status, answer) = json(http1().delete(&route_url).send().await.unwrap()).await;
    assert_eq!((status, code(&answer)), (404, "unknown_route"));
    let (_, list) = get(&broker, "/v1/routes").await;
    assert_eq!(list["routes"].as_array().unwrap().len(), 2);
    let (status, answer) =
        publish(&broker, "orders.x.eu", json!({"records": [{"value": "4"}]})).await;
    assert_eq!(status, 200);
    assert_eq!(routed_topics(&answer), ["orders-eu"]);

    // Refused publishes store nothing.
    let (status, answer) =
        publish(&broker, "payments.x", json!({"records": [{"value": "5"}]})).await;
    assert_eq!((status, code(&answer)), (422, "unroutable"));
    let (status, answer) = publish(
        &broker,
        "orders.x.eu",
        json!({"records": [{"value": "6", "partition": 0}]}),
    )
    .await;
    assert_eq!((status, code(&answer)), (400, "invalid_request"));
    let (status, answer) = publish(
        &broker,
        "orders.x.eu",
        json!({"records": [{"value": "7"}, {"value_base64": "%%%"}]}),
    )
    .await;
    assert_eq!((status, code(&answer)), (400, "invalid_request"));
    assert_eq!(records_of(&native, "orders-eu").await.len(), 3);
    assert_eq!(records_of(&native, "orders-all").await.len(), 3);
}

/// One trace's spans as (depth, name), depth first: the tree `brokerctl trace`
/// prints.
fn flatten(nodes: &Value, depth: usize, out: &mut Vec<(usize, String)>) {
    for node in nodes.as_array().unwrap() {
        out.push((depth, node["name"].as_str().unwrap().to_string()));
        flatten(&node["children"], depth + 1, out);
    }
}

#[tokio::test]
async fn a_traced_record_is_a_span_tree_like_brokerctl_trace_shows() {
    let broker = Brokerd::start();
    let native = native(&broker).await;
    native.create_topic("orders", 1, &[]).await.unwrap();
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace_id}-{client_span}-01");
    let (status, _) = json(
        http1()
            .post(url(&broker, "/v1/topics/orders/records"))
            .json(&json!({"records": [{"value": "traced",
                "headers": [{"key": "traceparent", "value": traceparent}]}]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);

    // Spans are written in the background: wait for the durable one.
    let deadline = Instant::now() + DEADLINE;
    let tree = loop {
        let (status, tree) = get(&broker, &format!("/v1/traces/{trace_id}")).await;
        let mut names = Vec::new();
        if status == 200 {
            flatten(&tree["spans"], 0, &mut names);
        } else {
            assert_eq!((status, code(&tree)), (404, "invalid_request"));
        }
        if names.iter().any(|(_, n)| n == "durable") {
            break tree;
        }
        assert!(Instant::now() < deadline, "no durable span: {tree}");
        tokio::time::sleep(POLL).await;
    };
    assert_eq!(tree["trace_id"], trace_id);
    let roots = tree["spans"].as_array().unwrap();
    assert_eq!(roots.len(), 1, "{tree}");
    assert_eq!(roots[0]["name"], "produce");
    assert_eq!(
        roots[0]["parent_id"], client_span,
        "a child of the producer's span"
    );
    assert_eq!(roots[0]["offset_us"], 0);
    assert!(!roots[0]["children"].as_array().unwrap().is_empty());
    let attributes = roots[0]["attributes"].as_array().unwrap();
    assert!(
        attributes.contains(&json!({"key": "topic", "value": "orders"})),
        "{attributes:?}"
    );

    // The same tree as brokerctl's: each line's indent is its depth.
    let mut ours = Vec::new();
    flatten(&tree["spans"], 0, &mut ours);
    let (ok, out, err) = brokerctl(broker.addr(), &["trace", trace_id], "");
    assert!(ok, "{err}");
    let theirs: Vec<(usize, String)> = out
        .lines()
        .skip(1)
        .map(|line| {
            let indent = line.len() - line.trim_start().len();
            let name = line.split_whitespace().next().unwrap().to_string();
            (indent / 2 - 1, name)
        })
        .collect();
    assert_eq!(ours, theirs, "brokerctl trace:\n{out}");

    // Listed, also by topic.
    let (status, list) = get(&broker, "/v1/traces?topic=orders").await;
    assert_eq!(status, 200);
    let traces = list["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0]["trace_id"], trace_id);
    assert_eq!(traces[0]["topic"], "orders");
    assert_eq!(traces[0]["spans"], tree["span_count"]);
    let (_, none) = get(&broker, "/v1/traces?topic=elsewhere").await;
    assert_eq!(none["traces"], json!([]));

    let (status, answer) = get(&broker, "/v1/traces/11111111111111111111111111111111").await;
    assert_eq!((status, code(&answer)), (404, "invalid_request"));
    let (status, answer) = get(&broker, "/v1/traces/not-a-trace").await;
    assert_eq!((status, code(&answer)), (400, "invalid_request"));
    let (status, answer) = get(&broker, "/v1/traces?limit=0").await;
    assert_eq!((status, code(&answer)), (400, "invalid_request"));
}

#[tokio::test]
async fn stats_over_http_are_the_servers_counters() {
    let broker = Brokerd::start();
    let native = native(&broker).await;
    native.create_topic("metrics", 2, &[]).await.unwrap();
    let (status, _) = json(
        http1()
            .post(url(&broker, "/v1/topics/metrics/records"))
            .json(&json!({"records": [{"value": "a", "partition": 0}, {"value": "b", "partition": 1}, {"value": "c", "partition": 1}]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);

    let (status, stats) = get(&broker, "/v1/stats").await;
    assert_eq!(status, 200, "{stats}");
    assert!(stats["uptime_ms"].as_u64().is_some());
    assert!(
        stats["connections"].as_u64().unwrap() >= 1,
        "the native client: {stats}"
    );
    let topics = stats["topics"].as_array().unwrap();
    let ours = topics.iter().find(|t| t["topic"] == "metrics").unwrap();
    assert_eq!(ours["messages_total"], 3);
    assert!(ours["bytes_total"].as_u64().unwrap() > 0);
    assert!(ours["messages_per_sec"].is_u64());
    assert!(
        topics
            .iter()
            .all(|t| !t["topic"].as_str().unwrap().starts_with("__")),
        "internal topics are left out: {stats}"
    );
    let theirs = brokerctl_json(&broker, &["stats"]);
    let theirs = theirs["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["topic"] == "metrics")
        .unwrap()
        .clone();
    assert_eq!(theirs["messages_total"], ours["messages_total"]);
    assert_eq!(theirs["bytes_total"], ours["bytes_total"]);

    let (status, topic) = get(&broker, "/v1/topics/metrics/stats").await;
    assert_eq!(status, 200);
    assert_eq!(topic["topic"], "metrics");
    assert_eq!(topic["total"]["messages_total"], 3);
    let partitions = topic["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 2);
    assert_eq!(partitions[0]["partition"], 0);
    assert_eq!(partitions[0]["messages_total"], 1);
    assert_eq!(partitions[1]["messages_total"], 2);
    let (status, answer) = get(&broker, "/v1/topics/nope/stats").await;
    assert_eq!((status, code(&answer)), (404, "unknown_topic"));
}

const ADMIN: &str = "admin";
const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// brokerd with SCRAM on, admitting anonymous clients (whom the ACLs still bind),
/// `admin` initialised.
fn secured(dir: &Path) -> Brokerd {
    let path = dir.join("brokerd.toml");
    let config = "[security]\nmechanisms = [\"SCRAM-SHA-256\"]\nallow_anonymous = true\nfailure_delay_ms = 10\n";
    std::fs::write(&path, config).unwrap();
    Launch::new(brokerd_bin())
        .args(["--config".into(), path.into_os_string()])
        .log_to(dir.join("brokerd.log"))
        .init_admin(ADMIN, ADMIN_PASSWORD)
        .start()
        .unwrap()
}

fn allow_anonymous(resource: ResourceType, name: &str, operation: Operation) -> AclBinding {
    AclBinding {
        principal: "ANONYMOUS".into(),
        resource,
        pattern: PatternType::Literal,
        name: name.into(),
        operation,
        permission: Permission::Allow,
    }
}

#[tokio::test]
async fn without_the_acl_every_family_is_refused_with_403_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let broker = secured(dir.path());
    let admin = Client::connect_with(
        broker.addr(),
        ClientConfig::default().credentials(Credentials::scram_sha_256(ADMIN, ADMIN_PASSWORD)),
    )
    .await
    .unwrap();
    admin.create_topic("orders", 1, &[]).await.unwrap();
    let refused = |answer: (u16, Value)| {
        assert_eq!(
            (answer.0, code(&answer.1)),
            (403, "not_authorized"),
            "{}",
            answer.1
        );
    };

    // Registry: register, and watch.
    refused(
        register(
            &broker,
            "billing",
            "b-1",
            json!({"address": "10.0.0.7:8080"}),
        )
        .await,
    );
    assert!(admin.list_services().await.unwrap().is_empty());
    refused(get(&broker, "/v1/registry/watch").await);
    // Routes: add, and publish.
    refused(add_route(&broker, json!({"pattern": "orders.#", "topic": "orders"})).await);
    assert!(admin.list_routes().await.unwrap().is_empty());
    admin.add_route("orders.#", "orders", &[]).await.unwrap();
    refused(publish(&broker, "orders.new", json!({"records": [{"value": "x"}]})).await);
    assert_eq!(
        admin.describe_topic("orders").await.unwrap().partitions[0].end_offset,
        0
    );
    // Traces and stats.
    refused(get(&broker, "/v1/traces").await);
    refused(get(&broker, "/v1/traces/4bf92f3577b34da6a3ce929d0e0e4736").await);
    refused(get(&broker, "/v1/stats").await);
    refused(get(&broker, "/v1/topics/orders/stats").await);

    // With the ACL, the same request goes through: the ACLs decided, nothing else.
    admin
        .create_acls(vec![allow_anonymous(
            ResourceType::Service,
            "billing",
            Operation::Write,
        )])
        .await
        .unwrap();
    let (status, answer) = register(
        &broker,
        "billing",
        "b-1",
        json!({"address": "10.0.0.7:8080"}),
    )
    .await;
    assert_eq!(status, 204, "{answer}");
    assert_eq!(admin.discover("billing", &[]).await.unwrap().len(), 1);

    // A watch is authorized at every read: one whose ACL goes ends with the error.
    let read_registry = allow_anonymous(ResourceType::Topic, "__registry", Operation::Read);
    admin
        .create_acls(vec![read_registry.clone()])
        .await
        .unwrap();
    let mut watching = watch(&broker, "/v1/services/billing/watch", None).await;
    let removed = admin
        .delete_acls(AclFilter {
            principal: Some(read_registry.principal.clone()),
            resource: Some(read_registry.resource),
            name: Some(read_registry.name.clone()),
            ..AclFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(removed, [read_registry]);
    // A change wakes the read in flight (authorized before the ACL went, or not).
    let deregistered = http1()
        .delete(url(&broker, "/v1/services/billing/instances/b-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(deregistered.status(), 204);
    let mut last = None;
    while let Some(event) = watching.next().await {
        last = Some(event);
    }
    let last = last.expect("the stream ended without saying why");
    assert_eq!(last.event, "error");
    assert_eq!(code(&last.data), "not_authorized");
}
