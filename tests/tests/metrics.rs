//! `/metrics` on the real brokerd, over HTTP: after known traffic, the series say
//! what was produced, delivered, committed and asked, and the lag is the lag
//! `DescribeGroup` (so `brokerctl groups describe`) reports; with authentication on,
//! scraping needs what `ServerStats` needs.

mod metrics_support;
mod tls_support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use client::{Client, ClientConfig, Credentials, TlsConfig};
use integration_tests::{brokerd_bin, Brokerd, Launch};
use metrics_support::{
    group_labels, partition_labels, produce_and_commit, sample, BATCHES, PRODUCED,
};
use protocol::ops::security::{
    AclBinding, Operation, PatternType, Permission, ResourceType, CLUSTER_RESOURCE,
};
use tls_support::client::{client_config, BOTH_VERSIONS};
use tls_support::pki::Pki;

async fn scrape(http: &reqwest::Client, broker: &Brokerd) -> String {
    let url = format!("http://{}/metrics", broker.http_addr());
    let answer = http.get(&url).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let content_type = answer.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = answer.text().await.unwrap();
    assert!(
        text.ends_with("# EOF\n"),
        "a complete OpenMetrics exposition"
    );
    text
}

fn value(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
}

#[tokio::test]
async fn metrics_over_http_count_the_traffic_and_match_describe_group() {
    let broker = Brokerd::start();
    let client = Client::connect(broker.addr()).await.unwrap();
    let described = produce_and_commit(&client).await;
    client
        .fetch(metrics_support::TOPIC, 1, 0, 1 << 20, Duration::ZERO)
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let text = scrape(&http, &broker).await;
    for (partition, produced) in (0u32..).zip(PRODUCED) {
        let labels = partition_labels(partition);
        let messages_in = value(
            &text,
            &format!("brokerd_partition_messages_in_total{labels}"),
        );
        assert_eq!(messages_in, produced as f64, "partition {partition}");
        let end = value(&text, &format!("brokerd_partition_log_end_offset{labels}"));
        assert_eq!(end, produced as f64);
    }
    let out = value(
        &text,
        &format!(
            "brokerd_partition_messages_out_total{}",
            partition_labels(1)
        ),
    );
    assert_eq!(out, PRODUCED[1] as f64, "the fetch delivered partition 1");
    for p in &described.partitions {
        let labels = group_labels(p.partition);
        let lag = value(&text, &format!("brokerd_group_lag_messages{labels}"));
        assert_eq!(lag, p.lag as f64, "partition {}", p.partition);
        let committed = value(&text, &format!("brokerd_group_committed_offset{labels}"));
        assert_eq!(Some(committed as u64), p.committed_offset);
    }
    // Every produce was answered on the native connection and counted there.
    let produces = value(&text, r#"brokerd_requests_total{op="Produce"}"#);
    assert_eq!(produces, BATCHES.iter().sum::<usize>() as f64);
    let durable = value(
        &text,
        r#"brokerd_produce_latency_seconds_count{ack="durable"}"#,
    );
    assert_eq!(durable, produces);
    assert!(value(&text, "brokerd_fsync_duration_seconds_count") >= 1.0);
    assert!(value(&text, r#"brokerd_connections_open{listener="native"}"#) >= 1.0);
    assert!(
        value(
            &text,
            r#"brokerd_connections_accepted_total{listener="native"}"#
        ) >= 1.0
    );
    // Every active segment's two indexes (the topic's and the internal topics') are
    // open for writing, within the budget a quarter of the open-file limit sets.
    let budget = value(&text, "brokerd_index_handles_budget");
    let open = value(&text, "brokerd_index_handles_open");
    assert!(budget >= 64.0, "{budget}");
    assert!(open >= 2.0 && open <= budget, "{open} of {budget}");
    assert!(value(&text, "brokerd_index_handles_reopened_total") >= 0.0);
    // Nothing has rolled: no sealed segment is mapped, within a budget of a sixth of
    // vm.max_map_count.
    assert!(value(&text, "brokerd_mapped_segments_budget") >= 64.0);
    assert_eq!(value(&text, "brokerd_mapped_segments_open"), 0.0);
    assert_eq!(value(&text, "brokerd_mapped_segments_reopened_total"), 0.0);
    // The scrape itself came over an HTTP connection.
    assert!(value(&text, r#"brokerd_connections_open{listener="http"}"#) >= 1.0);
    assert!(
        value(
            &text,
            r#"brokerd_connections_accepted_total{listener="http"}"#
        ) >= 1.0
    );

    // An error is counted by operation and code; a deleted topic leaves the output.
    assert!(client.describe_group("nobody").await.is_err());
    client.delete_topic(metrics_support::TOPIC).await.unwrap();
    let text = scrape(&http, &broker).await;
    let errors = value(
        &text,
        r#"brokerd_request_errors_total{op="DescribeGroup",code="unknown_group"}"#,
    );
    assert_eq!(errors, 1.0);
    // A request through the HTTP gateway is counted as the operation it makes.
    let missing = format!("http://{}/v1/topics/nope", broker.http_addr());
    assert_eq!(http.get(&missing).send().await.unwrap().status(), 404);
    let text = scrape(&http, &broker).await;
    let errors = value(
        &text,
        r#"brokerd_request_errors_total{op="DescribeTopic",code="unknown_topic"}"#,
    );
    assert_eq!(errors, 1.0);
    assert!(
        !text.contains(r#"topic="orders""#),
        "the deleted topic's series are gone:\n{text}"
    );
}

/// brokerd with TLS and SCRAM, `admin` initialised, its files under `dir`; and an
/// HTTPS client trusting its CA.
fn secured(dir: &Path) -> (Brokerd, Pki, reqwest::Client) {
    let pki = Pki::new(dir, "ca");
    let (cert, key, _) = pki.server("server");
    let path = dir.join("brokerd.toml");
    let config = format!(
        "[security]\nmechanisms = [\"SCRAM-SHA-256\"]\nfailure_delay_ms = 10\n\n\
         [tls]\ncert = {cert:?}\nkey = {key:?}\n"
    );
    std::fs::write(&path, config).unwrap();
    let broker = Launch::new(brokerd_bin())
        .args(["--config".into(), path.into_os_string()])
        .log_to(dir.join("brokerd.log"))
        .init_admin("admin", "admin-pw")
        .start()
        .unwrap();
    let mut tls = Arc::unwrap_or_clone(client_config(&pki.ca_path, None, BOTH_VERSIONS));
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let https = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .unwrap();
    (broker, pki, https)
}

#[tokio::test]
async fn with_authentication_on_scraping_needs_cluster_describe() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, pki, https) = secured(dir.path());
    let config = ClientConfig::default()
        .tls(TlsConfig::new(&pki.ca_path))
        .credentials(Credentials::scram_sha_256("admin", "admin-pw"));
    let admin = Client::connect_with(broker.addr(), config).await.unwrap();
    admin.create_user("prometheus", "scrape-pw").await.unwrap();
    admin.create_user("nosy", "nosy-pw").await.unwrap();
    admin
        .create_acls(vec![AclBinding {
            principal: "prometheus".into(),
            resource: ResourceType::Cluster,
            pattern: PatternType::Literal,
            name: CLUSTER_RESOURCE.into(),
            operation: Operation::Describe,
            permission: Permission::Allow,
        }])
        .await
        .unwrap();
    let url = format!("https://{}/metrics", broker.http_addr());
    let status = |user: Option<(&str, &str)>| {
        let mut request = https.get(&url);
        if let Some((user, password)) = user {
            request = request.basic_auth(user, Some(password));
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(None).await, 401, "no credentials");
    assert_eq!(
        status(Some(("nosy", "nosy-pw"))).await,
        403,
        "no cluster describe"
    );
    let answer = https
        .get(&url)
        .basic_auth("prometheus", Some("scrape-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let text = answer.text().await.unwrap();
    assert!(
        sample(&text, r#"brokerd_internal_topic_messages{topic="__users"}"#) >= Some(3.0),
        "the admin and two users are on __users:\n{text}"
    );
}
