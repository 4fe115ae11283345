//! Audit lines: every administrative change brokerd makes is one JSON log line with
//! target `audit`, the operation, the client that asked, and what changed.

use std::path::Path;

use integration_tests::{brokerctl, brokerd_bin, Launch};
use serde_json::Value;

/// The `audit` lines of brokerd's JSON log, as their `fields` objects.
fn audit_lines(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["target"] == "audit")
        .map(|line| {
            assert_eq!(line["level"], "INFO", "{line}");
            line["fields"].clone()
        })
        .collect()
}

#[test]
fn each_topic_route_and_dead_letter_change_is_one_audit_line_naming_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("brokerd.log");
    let broker = Launch::new(brokerd_bin())
        .args(["--log-format", "json"])
        .log_to(&log)
        .start()
        .unwrap();
    let addr = broker.addr();
    let run = |args: &[&str], stdin: &str| {
        let (ok, out, err) = brokerctl(addr, args, stdin);
        assert!(ok, "brokerctl {args:?}: {out}{err}");
    };
    run(
        &[
            "topics",
            "create",
            "jobs",
            "--partitions",
            "1",
            "--config",
            "max_delivery_attempts=1",
        ],
        "",
    );
    run(&["topics", "create", "gone", "--partitions", "2"], "");
    run(&["routes", "add", "jobs.#", "jobs"], "");
    run(&["routes", "add", "x.*", "gone", "--header", "k=v"], "");
    run(&["routes", "add", "y", "gone"], "");
    run(&["routes", "delete", "1"], "");
    run(&["topics", "delete", "gone"], "");
    // A failed change is no change: no line.
    assert!(!brokerctl(addr, &["topics", "delete", "gone"], "").0);
    // Dead letters to purge: a queue member nacks the only attempt.
    run(&["produce", "jobs"], "j1\n");
    run(
        &[
            "consume",
            "jobs",
            "--group",
            "w",
            "--queue",
            "--nack",
            "bad",
            "--count",
            "1",
            "--timeout-ms",
            "5000",
        ],
        "",
    );
    let dead_letters = "jobs.dlq";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, out, _) = brokerctl(addr, &["dlq", "jobs"], "");
        if out.contains("bad") || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    run(&["dlq", "purge", "jobs"], "");
    run(
        &["topics", "alter", "jobs", "--config", "retention_ms=60000"],
        "",
    );
    run(
        &["topics", "add-partitions", dead_letters, "--count", "2"],
        "",
    );

    let lines = audit_lines(&log);
    let ops: Vec<&str> = lines.iter().map(|l| l["op"].as_str().unwrap()).collect();
    assert_eq!(
        ops,
        [
            "CreateTopic",
            "CreateTopic",
            "AddRoute",
            "AddRoute",
            "AddRoute",
            "DeleteRoute",
            "DeleteTopic",
            "DeleteRecords",
            "AlterTopic",
            "CreatePartitions",
        ],
        "{lines:#?}"
    );
    for line in &lines {
        assert!(
            line["client"].as_str().unwrap().starts_with("brokerctl/"),
            "{line}"
        );
        // No authentication configured: every session is the anonymous principal.
        assert_eq!(line["principal"], "ANONYMOUS", "{line}");
    }
    assert_eq!(lines[0]["topic"], "jobs");
    assert_eq!(lines[0]["partitions"], 1);
    assert_eq!(lines[0]["config"], "max_delivery_attempts=1");
    assert_eq!(lines[3]["route"], 2);
    assert_eq!(lines[3]["pattern"], "x.*");
    assert_eq!(lines[3]["topic"], "gone");
    assert_eq!(lines[3]["headers"], "k=v");
    assert_eq!(lines[5]["route"], 1);
    assert_eq!(lines[5]["pattern"], "jobs.#");
    assert_eq!(lines[6]["topic"], "gone");
    assert_eq!(lines[6]["routes_deleted"], "[2, 3]");
    assert_eq!(lines[7]["topic"], dead_letters);
    assert_eq!(lines[7]["partition"], 0);
    assert_eq!(lines[7]["before_offset"], 1);
    assert_eq!(lines[8]["topic"], "jobs");
    assert_eq!(lines[8]["config"], "retention_ms=60000");
    assert_eq!(lines[9]["topic"], dead_letters);
    assert_eq!(lines[9]["from"], 1);
    assert_eq!(lines[9]["to"], 2);
}
