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
