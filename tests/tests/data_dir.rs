//! The data directory belongs to one brokerd: a second one started on it refuses
//! before touching a file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use integration_tests::{brokerctl, brokerd_bin, Brokerd};

/// Every file under `dir` with its size and modification time.
fn files(dir: &Path) -> BTreeMap<PathBuf, (u64, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                out.insert(entry.path(), (meta.len(), meta.modified().unwrap()));
            }
        }
    }
    out
}

/// The files once the broker has stopped writing (its zeroing ahead and periodic
/// jobs settle within moments of the last append).
fn settled_files(dir: &Path) -> BTreeMap<PathBuf, (u64, SystemTime)> {
    let mut last = files(dir);
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(200));
        let now = files(dir);
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("the broker's files never settled");
}

#[test]
fn a_second_brokerd_on_a_live_data_dir_refuses_and_touches_nothing() {
    let broker = Brokerd::start();
    let (ok, _, err) = brokerctl(
        broker.addr(),
        &["topics", "create", "t", "--partitions", "4"],
        "",
    );
    assert!(ok, "{err}");
    let lines: String = (0..200).map(|i| format!("message {i}\n")).collect();
    let (ok, _, err) = brokerctl(broker.addr(), &["produce", "t"], &lines);
    assert!(ok, "{err}");
    let before = settled_files(broker.data_dir());

    let started = Instant::now();
    let mut second = Command::new(brokerd_bin())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(broker.data_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the second brokerd did not exit"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = second.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!status.success(), "the second brokerd must fail: {stderr}");
    let pid = broker.pid().unwrap();
    assert!(
        stderr.contains("in use by another brokerd") && stderr.contains(&format!("pid {pid}")),
        "the refusal names the holder: {stderr}"
    );
    assert!(output.stdout.is_empty(), "it never listened");
    assert_eq!(files(broker.data_dir()), before, "not a file changed");

    // The first broker goes on as before.
    let (ok, out, err) = brokerctl(
        broker.addr(),
        &["consume", "t", "--from", "earliest", "--count", "200"],
        "",
    );
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 200);
}

#[test]
fn a_brokerd_whose_port_is_taken_does_not_recover_its_data_dir() {
    let broker = Brokerd::start();
    let (ok, _, err) = brokerctl(
        broker.addr(),
        &["topics", "create", "t", "--partitions", "1"],
        "",
    );
    assert!(ok, "{err}");
    let (ok, _, err) = brokerctl(broker.addr(), &["produce", "t"], "one\ntwo\n");
    assert!(ok, "{err}");
    // A copy of a live broker's directory, as an unclean shutdown leaves it: a
    // broker started on it must bind first, and fail, before recovering anything.
    let copy = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(broker.data_dir().join("."))
        .arg(copy.path())
        .status()
        .unwrap();
    assert!(status.success());
    let before = files(copy.path());
    let output = Command::new(brokerd_bin())
        .args([
            "--listen",
            broker.addr(),
            "--http-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(copy.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("cannot listen on"), "{stderr}");
    let after = files(copy.path());
    // LOCK is written by the (refused) second broker; nothing else may change.
    let without_lock = |files: BTreeMap<PathBuf, (u64, SystemTime)>| -> BTreeMap<_, _> {
        files
            .into_iter()
            .filter(|(path, _)| !path.ends_with("LOCK"))
            .collect()
    };
    assert_eq!(
        without_lock(after),
        without_lock(before),
        "recovery never ran"
    );
}
