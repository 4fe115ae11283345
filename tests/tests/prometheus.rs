//! A real Prometheus server (Debian's `prometheus`, installed by `.ci/run`) scrapes
//! the real brokerd's `/metrics` every second, and PromQL through Prometheus's own
//! HTTP API returns the produced message count and a consumer lag equal to what
//! `DescribeGroup` (so `brokerctl groups describe`) reports.
//!
//! Without a `prometheus` binary the test prints why and passes, unless `CI` is set:
//! there a missing Prometheus is a failure.

mod metrics_support;

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use client::Client;
use integration_tests::Brokerd;
use metrics_support::{produce_and_commit, GROUP, PRODUCED, TOPIC};
use tokio::time::{sleep, Instant};

/// How long Prometheus may take to start, scrape and answer with the expected values.
const DEADLINE: Duration = Duration::from_secs(90);
/// Between two queries while waiting.
const POLL: Duration = Duration::from_millis(250);

/// The `prometheus` binary on `PATH`, if any.
fn find_prometheus() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("prometheus"))
        .find(|candidate| candidate.is_file())
}

/// A port nobody listens on now: bound, read and released (Prometheus takes no port 0).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A running Prometheus, killed when dropped.
struct Prometheus {
    child: Child,
    address: String,
    log: PathBuf,
}

impl Prometheus {
    /// Starts `binary` scraping `target`'s `/metrics` every second, its storage and
    /// log under `dir`.
    fn start(binary: &Path, target: &str, dir: &Path) -> Prometheus {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: brokerd\n    metrics_path: /metrics\n    \
                 static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let address = format!("127.0.0.1:{}", free_port());
        let log = dir.join("prometheus.log");
        let output = std::fs::File::create(&log).unwrap();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdin(Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .unwrap();
        Prometheus {
            child,
            address,
            log,
        }
    }

    /// The instant vector `query` evaluates to now, as (labels, value) pairs; `None`
    /// while Prometheus is not answering yet.
    async fn query(
        &self,
        http: &reqwest::Client,
        query: &str,
    ) -> Option<Vec<(HashMap<String, String>, f64)>> {
        let url = format!("http://{}/api/v1/query", self.address);
        let answer = http
            .get(&url)
            .query(&[("query", query)])
            .send()
            .await
            .ok()?;
        let body: serde_json::Value = answer.json().await.ok()?;
        assert_eq!(body["status"], "success", "{query}: {body}");
        let result = body["data"]["result"].as_array()?;
        Some(
            result
                .iter()
                .map(|series| {
                    let labels = series["metric"]
                        .as_object()
                        .map(|m| {
                            m.iter()
                                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                                .collect()
                        })
                        .unwrap_or_default();
                    let value = series["value"][1].as_str().unwrap().parse().unwrap();
                    (labels, value)
                })
                .collect(),
        )
    }

    /// What Prometheus logged, for a failure message.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn prometheus_scrapes_the_produced_count_and_the_lag_of_describe_group() {
    let Some(binary) = find_prometheus() else {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
        assert!(!ci, "CI is set but no `prometheus` is on PATH: .ci/run installs Debian's prometheus package");
        println!("SKIPPED prometheus_scrapes_the_produced_count_and_the_lag_of_describe_group: no `prometheus` on PATH (apt-get install prometheus)");
        return;
    };
    let broker = Brokerd::start();
    let client = Client::connect(broker.addr()).await.unwrap();
    let described = produce_and_commit(&client).await;
    let expected_lag: HashMap<String, f64> = described
        .partitions
        .iter()
        .map(|p| (p.partition.to_string(), p.lag as f64))
        .collect();
    assert_eq!(expected_lag.len(), 2);

    let dir = tempfile::tempdir().unwrap();
    let prometheus = Prometheus::start(&binary, broker.http_addr(), dir.path());
    let http = reqwest::Client::new();
    let produced = format!(r#"sum(brokerd_partition_messages_in_total{{topic="{TOPIC}"}})"#);
    let lag = format!(r#"brokerd_group_lag_messages{{group="{GROUP}",topic="{TOPIC}"}}"#);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let count = prometheus.query(&http, &produced).await;
        let lags = prometheus.query(&http, &lag).await.map(|series| {
            series
                .into_iter()
                .map(|(labels, v)| (labels.get("partition").cloned().unwrap_or_default(), v))
                .collect::<HashMap<_, _>>()
        });
        let count = count.and_then(|c| c.first().map(|(_, v)| *v));
        if count == Some(PRODUCED.iter().sum::<u64>() as f64)
            && lags.as_ref() == Some(&expected_lag)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never showed {} produced and lag {expected_lag:?}: last {count:?} and {lags:?}\nits log:\n{}",
            PRODUCED.iter().sum::<u64>(),
            prometheus.log()
        );
        sleep(POLL).await;
    }
    // The scrape itself was healthy, not merely partial.
    let up = prometheus
        .query(&http, r#"up{job="brokerd"}"#)
        .await
        .unwrap();
    assert_eq!(up.first().map(|(_, v)| *v), Some(1.0));
}
