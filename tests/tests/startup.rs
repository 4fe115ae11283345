//! brokerd's startup: settings it refuses, what it creates, how it logs.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use integration_tests::{brokerctl, brokerd_bin, Launch};

/// Runs brokerd with `config` as its configuration file until it exits (it must,
/// refusing); returns its stderr.
fn refused_with(config: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("brokerd.toml");
    std::fs::write(&path, config).unwrap();
    let output = Command::new(brokerd_bin())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "{config}: brokerd started: {stderr}"
    );
    assert!(output.stdout.is_empty(), "{config}: it never listened");
    stderr
}

#[test]
fn out_of_range_sampling_and_bad_unroutable_topics_refuse_startup_naming_the_key() {
    for (config, key) in [
        (
            "[tracing]\nsample_unsampled = 2.0\n",
            "tracing.sample_unsampled",
        ),
        (
            "[routing]\nunroutable_topic = \"__x\"\n",
            "routing.unroutable_topic",
        ),
        (
            "[routing]\nunroutable_topic = \"a b\"\n",
            "routing.unroutable_topic",
        ),
    ] {
        let stderr = refused_with(config);
        assert!(stderr.contains(key), "{config}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line, said once: {stderr}");
    }
}

#[test]
fn the_unroutable_topic_is_created_at_startup_and_receives_what_no_rule_matches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("brokerd.toml");
    std::fs::write(&path, "[routing]\nunroutable_topic = \"lost\"\n").unwrap();
    let broker = Launch::new(brokerd_bin())
        .args([std::ffi::OsStr::new("--config"), path.as_os_str()])
        .start()
        .unwrap();
    let (ok, out, err) = brokerctl(broker.addr(), &["topics"], "");
    assert!(ok && out.contains("lost"), "{out}{err}");
    let (ok, out, err) = brokerctl(broker.addr(), &["publish", "nobody.listens"], "hello\n");
    assert!(ok, "{out}{err}");
    let (ok, out, err) = brokerctl(
        broker.addr(),
        &["consume", "lost", "--from", "earliest", "--count", "1"],
        "",
    );
    assert!(ok && out.trim() == "hello", "{out}{err}");
}

#[test]
fn logs_that_go_to_a_file_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("brokerd.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(brokerd_bin())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on"), "{line}");
    // "brokerd started" is logged right after the address is printed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let text = loop {
        let text = std::fs::read_to_string(&log_path).unwrap();
        if text.contains("brokerd started") {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no startup line: {text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !text.contains('\u{1b}'),
        "escape codes in the log file: {text:?}"
    );
}

#[test]
fn a_sigterm_right_after_the_announcement_is_a_graceful_shutdown() {
    // The signal handlers are installed before `listening on` is printed: a
    // supervisor that stops brokerd as soon as it announced itself gets exit 0 and
    // clean logs, not the default action of SIGTERM.
    for _ in 0..5 {
        let mut broker = integration_tests::Brokerd::start();
        assert!(
            broker.stop(),
            "brokerd was killed by a SIGTERM sent right after it announced its address"
        );
    }
}
