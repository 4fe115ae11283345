//! Topic administration through brokerctl, as a user runs it: refusals that name the
//! limit, topic directories that hold data, changing a topic after creation.

use std::path::{Path, PathBuf};

use integration_tests::{brokerctl, brokerd_bin, Brokerd, Launch};

/// A brokerd logging JSON lines to a file in a directory of its own.
fn logged_broker() -> (Brokerd, tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("brokerd.log");
    let broker = Launch::new(brokerd_bin())
        .args(["--log-format", "json"])
        .log_to(&log)
        .start()
        .unwrap();
    (broker, dir, log)
}

/// The log's lines so far.
fn log_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every file below `dir` with its size.
fn files(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            out.extend(files(&entry.path()));
        } else {
            out.push((entry.path(), entry.metadata().unwrap().len()));
        }
    }
    out.sort();
    out
}

/// A partition count beyond the limit is the request's fault: `invalid_config`
/// naming the limit, never `internal` or a message about the broker's own defaults.
#[test]
fn too_many_partitions_is_invalid_config_naming_the_limit() {
    let broker = Brokerd::start();
    let addr = broker.addr();
    for count in ["5000", "0"] {
        let (ok, out, err) = brokerctl(addr, &["topics", "create", "x", "--partitions", count], "");
        assert!(!ok, "created with {count} partitions: {out}");
        assert!(
            err.contains("(invalid_config)") && err.contains("partitions must be within 1..=1024"),
            "{err}"
        );
        assert!(
            !err.contains("internal") && !err.contains("topic_defaults"),
            "{err}"
        );
    }
    let (ok, out, err) = brokerctl(
        addr,
        &[
            "topics",
            "create",
            "x",
            "--partitions",
            "1",
            "--config",
            "segment_bytes=1",
        ],
        "",
    );
    assert!(
        !ok && err.contains("(invalid_config)") && err.contains("4096"),
        "{out}{err}"
    );
    let (ok, out, _) = brokerctl(addr, &["topics"], "");
    assert!(ok && !out.contains('x'), "nothing was created: {out}");
}

/// A topic whose `topic.toml` is gone is not opened and, above all, not wiped by
/// creating the topic again: the create is refused naming the directory, the start
/// logs an error, and every file stays as it was.
#[test]
fn a_topic_directory_without_topic_toml_is_reported_and_never_wiped() {
    let (mut broker, _logs, log) = logged_broker();
    let addr = broker.addr().to_string();
    assert!(
        brokerctl(
            &addr,
            &["topics", "create", "orders", "--partitions", "2"],
            ""
        )
        .0
    );
    let (ok, _, err) = brokerctl(&addr, &["produce", "orders"], "a\nb\nc\n");
    assert!(ok, "{err}");
    assert!(broker.stop());
    let dir = broker.data_dir().join("topics/orders");
    std::fs::remove_file(dir.join("topic.toml")).unwrap();
    let before = files(&dir);

    broker.restart();
    let addr = broker.addr();
    let reported = log_lines(&log)
        .into_iter()
        .find(|l| l.contains("without topic.toml"))
        .expect("the start reports the directory");
    assert!(
        reported.contains("\"ERROR\"") && reported.contains("topics/orders"),
        "{reported}"
    );
    let (ok, out, _) = brokerctl(addr, &["topics"], "");
    assert!(ok && !out.contains("orders"), "{out}");
    let (ok, out, err) = brokerctl(
        addr,
        &["topics", "create", "orders", "--partitions", "1"],
        "",
    );
    assert!(!ok, "created over the old data: {out}");
    assert!(
        err.contains("(storage_error)")
            && err.contains("topics/orders without a topic.toml")
            && err.contains("does not delete it"),
        "{err}"
    );
    assert_eq!(files(&dir), before, "every file as it was");
}

/// A new topic's logs have nothing to recover, and the log does not claim they did.
#[test]
fn a_new_topic_does_not_log_a_recovery() {
    let (broker, _logs, log) = logged_broker();
    let addr = broker.addr();
    assert!(
        brokerctl(
            addr,
            &["topics", "create", "fresh", "--partitions", "3"],
            ""
        )
        .0
    );
    let (ok, out, _) = brokerctl(addr, &["topics"], "");
    assert!(ok && out.contains("fresh"));
    let lines = log_lines(&log);
    assert!(
        lines.iter().any(|l| l.contains("restored routing rules")),
        "the log is captured: {lines:?}"
    );
    let recovered: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("recovered after"))
        .collect();
    assert!(recovered.is_empty(), "{recovered:?}");
}

/// The lines of `topics describe NAME` that show settings, as `key = value`.
fn settings(addr: &str, topic: &str) -> String {
    let (ok, out, err) = brokerctl(addr, &["topics", "describe", topic], "");
    assert!(ok, "{err}");
    out
}

/// `topics alter` changes the settings that may change live, applies them without a
/// restart (a smaller retention deletes old segments at the next pass), keeps them
/// across a restart, and refuses the ones fixed at creation.
#[test]
fn alter_changes_live_settings_at_once_and_they_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("brokerd.toml");
    std::fs::write(&config, "[retention]\ncheck_interval_ms = 100\n").unwrap();
    let mut broker = Brokerd::start_with(&["--config", config.to_str().unwrap()]);
    let addr = broker.addr().to_string();
    let (ok, _, err) = brokerctl(
        &addr,
        &[
            "topics",
            "create",
            "t",
            "--partitions",
            "1",
            "--config",
            "segment_bytes=4096",
        ],
        "",
    );
    assert!(ok, "{err}");
    // Five produces of about 2 KiB each: a batch apiece, so a few 4 KiB segments.
    for run in 0..5 {
        let lines: String = (0..40)
            .map(|i| format!("message {run}/{i:02} with some padding\n"))
            .collect();
        let (ok, _, err) = brokerctl(&addr, &["produce", "t"], &lines);
        assert!(ok, "{err}");
    }

    let (ok, out, err) = brokerctl(
        &addr,
        &[
            "topics",
            "alter",
            "t",
            "--config",
            "retention_bytes=8192",
            "--config",
            "max_delivery_attempts=2",
        ],
        "",
    );
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        "altered topic t: retention_bytes=8192, max_delivery_attempts=2"
    );
    let shown = settings(&addr, "t");
    assert!(
        shown.contains("retention_bytes = 8192") && shown.contains("max_delivery_attempts = 2"),
        "{shown}"
    );
    // Applied live: the next retention pass (every 100 ms here) cuts the old segments.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, out, _) = brokerctl(&addr, &["--json", "topics", "describe", "t"], "");
        let topic: serde_json::Value = serde_json::from_str(&out).unwrap();
        if topic["partitions"][0]["start_offset"].as_u64().unwrap() > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "retention never applied: {out}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    for (setting, says) in [
        ("durability=os", "durability cannot change on a live topic"),
        (
            "segment_bytes=8192",
            "segment_bytes cannot change on a live topic",
        ),
        ("partitions=3", "unknown topic config key"),
        ("retention_ms=soon", "retention_ms"),
    ] {
        let (ok, out, err) = brokerctl(&addr, &["topics", "alter", "t", "--config", setting], "");
        assert!(!ok, "{setting} was accepted: {out}");
        assert!(
            err.contains("(invalid_config)") && err.contains(says),
            "{setting}: {err}"
        );
    }
    let (ok, _, err) = brokerctl(
        &addr,
        &["topics", "alter", "nope", "--config", "retention_ms=1"],
        "",
    );
    assert!(!ok && err.contains("(unknown_topic)"), "{err}");

    broker.restart();
    let shown = settings(broker.addr(), "t");
    assert!(
        shown.contains("retention_bytes = 8192")
            && shown.contains("max_delivery_attempts = 2")
            && shown.contains("segment_bytes = 4096")
            && shown.contains("durability = always"),
        "{shown}"
    );
}

/// `topics add-partitions` grows a topic at once and for good, refuses to shrink
/// it, and a stream group reads the new partitions from their start even when it
/// joined at "latest".
#[test]
fn add_partitions_grows_a_topic_and_groups_read_the_new_partitions_from_the_start() {
    let mut broker = Brokerd::start();
    let addr = broker.addr().to_string();
    assert!(brokerctl(&addr, &["topics", "create", "t", "--partitions", "1"], "").0);
    assert!(brokerctl(&addr, &["produce", "t"], "old\n").0);
    // The group starts at the end of partition 0 and reads one message from there.
    let consume = |count: &str| {
        let (ok, out, err) = brokerctl(
            &addr,
            &[
                "consume",
                "t",
                "--group",
                "g",
                "--from",
                "latest",
                "--count",
                count,
                "--timeout-ms",
                "5000",
            ],
            "",
        );
        assert!(ok, "{err}");
        let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    let (ok, _, _) = brokerctl(
        &addr,
        &[
            "consume",
            "t",
            "--group",
            "g",
            "--from",
            "latest",
            "--timeout-ms",
            "300",
        ],
        "",
    );
    assert!(ok);

    let (ok, out, err) = brokerctl(
        &addr,
        &["topics", "add-partitions", "t", "--count", "3"],
        "",
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "topic t now has 3 partition(s) (was 1)");
    for partition in ["1", "2"] {
        let (ok, _, err) = brokerctl(
            &addr,
            &["produce", "t", "--partition", partition],
            &format!("new-{partition}\n"),
        );
        assert!(ok, "{err}");
    }
    assert!(brokerctl(&addr, &["produce", "t", "--partition", "0"], "new-0\n").0);
    assert_eq!(
        consume("3"),
        ["new-0", "new-1", "new-2"],
        "nothing on the new partitions skipped"
    );

    for count in ["3", "2"] {
        let (ok, _, err) = brokerctl(
            &addr,
            &["topics", "add-partitions", "t", "--count", count],
            "",
        );
        assert!(
            !ok && err.contains("(invalid_request)") && err.contains("must be more"),
            "{err}"
        );
    }
    let (ok, _, err) = brokerctl(
        &addr,
        &["topics", "add-partitions", "t", "--count", "2000"],
        "",
    );
    assert!(
        !ok && err.contains("(invalid_config)") && err.contains("1..=1024"),
        "{err}"
    );

    broker.restart();
    let addr = broker.addr();
    let (ok, out, _) = brokerctl(addr, &["--json", "topics", "describe", "t"], "");
    assert!(ok);
    let topic: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ends: Vec<u64> = topic["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["end_offset"].as_u64().unwrap())
        .collect();
    assert_eq!(ends, [2, 1, 1]);
}
