//! Service registry end to end: registration, heartbeats, expiry, deregistration,
//! watching, restart, brokerctl.

use std::process::{Command, Stdio};
use std::time::Duration;

use client::{Client, ClientConfig, Registration, RegistryEvent};
use integration_tests::{brokerctl, brokerctl_bin, Brokerd};
use tokio::time::{timeout, Instant};

const DEADLINE: Duration = Duration::from_secs(30);

fn registration(id: &str, ttl_ms: u64) -> Registration {
    Registration {
        service: "billing".into(),
        instance_id: id.into(),
        address: format!("{id}.local:8080"),
        tags: vec![(
            "zone".into(),
            if id == "b" { "y".into() } else { "x".into() },
        )],
        ttl: Duration::from_millis(ttl_ms),
    }
}

fn kind(event: &RegistryEvent) -> String {
    let name = match event {
        RegistryEvent::Registered { .. } => "registered",
        RegistryEvent::Heartbeat { .. } => "heartbeat",
        RegistryEvent::Expired { .. } => "expired",
        RegistryEvent::Deregistered { .. } => "deregistered",
    };
    format!("{name} {}", event.instance().1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_register_expire_deregister_and_watchers_see_it_in_order() {
    let mut broker = Brokerd::start();
    let client = Client::connect(broker.addr()).await.unwrap();
    let mut watch = client.watch_services(Some("billing")).await.unwrap();

    let a = client
        .register_instance(registration("a", 1500))
        .await
        .unwrap();
    let b = client
        .register_instance(registration("b", 1500))
        .await
        .unwrap();
    let c = client
        .register_instance(registration("c", 1000))
        .await
        .unwrap();
    assert_eq!(
        client
            .discover("billing", &[("zone", "x")])
            .await
            .unwrap()
            .len(),
        2
    );
    let mut balancer = client.round_robin("billing", &[]).await.unwrap();
    let picks: Vec<String> = (0..6)
        .map(|_| balancer.pick().unwrap().instance_id.clone())
        .collect();
    assert_eq!(picks, ["a", "b", "c", "a", "b", "c"]);

    drop(c); // stops heartbeating: expired after its TTL
    let deadline = Instant::now() + DEADLINE;
    while client.discover("billing", &[]).await.unwrap().len() != 2 {
        assert!(Instant::now() < deadline, "c never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.close().await.unwrap();

    let mut events = Vec::new();
    while events.len() < 5 {
        events.push(kind(
            &timeout(DEADLINE, watch.next()).await.unwrap().unwrap(),
        ));
    }
    assert_eq!(
        events,
        [
            "registered a",
            "registered b",
            "registered c",
            "expired c",
            "deregistered b"
        ]
    );
    let services = client.list_services().await.unwrap();
    assert_eq!(
        (services[0].service.as_str(), services[0].instances),
        ("billing", 1)
    );

    // A restart keeps the live instance (a keeps heartbeating across it).
    drop(client);
    broker.restart();
    let client = Client::connect_with(broker.addr(), ClientConfig::default())
        .await
        .unwrap();
    let instances = client.discover("billing", &[]).await.unwrap();
    assert_eq!(
        instances
            .iter()
            .map(|i| i.instance_id.as_str())
            .collect::<Vec<_>>(),
        ["a"]
    );
    drop(a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokerctl_lists_describes_and_registers_like_a_sidecar() {
    let broker = Brokerd::start();
    let mut sidecar = Command::new(brokerctl_bin())
        .args([
            "--addr",
            broker.addr(),
            "services",
            "register",
            "search",
            "--addr",
            "10.1.2.3:9200",
            "--ttl-ms",
            "3000",
            "--tag",
            "zone=a",
            "--id",
            "search-1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (ok, out, _) = brokerctl(broker.addr(), &["services"], "");
        if ok && out.contains("search") {
            assert!(out.contains("SERVICE") && out.contains("1"), "{out}");
            break;
        }
        assert!(Instant::now() < deadline, "sidecar never registered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (ok, out, _) = brokerctl(broker.addr(), &["services", "search"], "");
    assert!(
        ok && out.contains("search-1")
            && out.contains("10.1.2.3:9200")
            && out.contains("zone=a")
            && out.contains("healthy"),
        "{out}"
    );
    let (ok, out, _) = brokerctl(broker.addr(), &["services", "search", "--json"], "");
    assert!(ok);
    let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(parsed[0]["instance_id"], "search-1");

    // SIGTERM: the sidecar deregisters before exiting.
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(sidecar.id() as i32, libc::SIGTERM) };
    assert!(sidecar.wait().unwrap().success());
    let (_, out, _) = brokerctl(broker.addr(), &["services", "search", "--json"], "");
    assert_eq!(out.trim(), "[]");
}
