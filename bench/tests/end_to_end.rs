//! Runs the real `broker-bench` binary against a brokerd it starts itself, and checks
//! the JSON it prints: every message delivered exactly once.

use std::process::Command;

fn bench(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_broker-bench"))
        .arg("--brokerd")
        .arg(integration_tests::brokerd_bin())
        .args(["--json", "--quiet"])
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("running broker-bench");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[test]
fn pubsub_delivers_every_message_once_and_reports_latency() {
    let (code, stdout, stderr) = bench(&[
        "--workload",
        "pubsub",
        "--messages",
        "3000",
        "--batch",
        "10",
        "--producers",
        "2",
        "--consumers",
        "2",
        "--partitions",
        "3",
        "--durability",
        "os",
        "--ack",
        "appended",
    ]);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    let report = json(&stdout);
    assert_eq!(report["lost"], 0);
    assert_eq!(report["duplicates"], 0);
    assert_eq!(report["messages"], 3000);
    assert_eq!(report["received"], 3000);
    assert!(report["msgs_per_sec"].as_f64().is_some_and(|r| r > 0.0));
    for key in ["publish_latency_us", "e2e_latency_us"] {
        for p in ["p50", "p90", "p99", "p999", "max"] {
            assert!(
                report[key][p].as_f64().is_some_and(|v| v > 0.0),
                "{key}.{p}: {report}"
            );
        }
    }
}

#[test]
fn produce_checks_the_stored_count() {
    let (code, stdout, stderr) = bench(&[
        "--workload",
        "produce",
        "--messages",
        "5000",
        "--batch",
        "500",
    ]);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    let report = json(&stdout);
    assert_eq!(report["stored_messages"], 5000);
    assert_eq!(report["lost"], 0);
    assert_eq!(report["ack"], "durable");
}

#[test]
fn queue_acks_every_message_exactly_once() {
    let (code, stdout, stderr) = bench(&[
        "--workload",
        "queue",
        "--messages",
        "2000",
        "--batch",
        "100",
        "--consumers",
        "2",
        "--partitions",
        "2",
        "--durability",
        "os",
        "--ack",
        "appended",
    ]);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    let report = json(&stdout);
    assert_eq!(report["lost"], 0);
    assert_eq!(report["duplicates"], 0);
    assert_eq!(report["received"], 2000);
}

#[test]
fn bad_arguments_are_refused_before_starting_anything() {
    let (code, _, stderr) = bench(&["--message-size", "8"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("--message-size"), "{stderr}");
}

#[test]
fn a_brokerd_that_will_not_start_is_a_clear_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_broker-bench"))
        .args(["--brokerd", "/nonexistent/brokerd", "--quiet"])
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("running broker-bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("pass --brokerd PATH of a working binary or --addr of a running broker"),
        "{stderr}"
    );
    assert!(
        stderr.contains("cannot start /nonexistent/brokerd: "),
        "{stderr}"
    );
}

#[test]
fn connect_only_times_handshakes_and_scram_logins() {
    let (code, stdout, stderr) = bench(&["--connect-only", "3"]);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    let report = json(&stdout);
    assert_eq!(report["scram"], false);
    assert_eq!(report["setup_us"]["samples"], 3);

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("brokerd.toml");
    std::fs::write(&config, "[security]\nmechanisms = [\"SCRAM-SHA-256\"]\n").unwrap();
    // The broker started here gets the user by `brokerd --init-admin`.
    let output = Command::new(env!("CARGO_BIN_EXE_broker-bench"))
        .arg("--brokerd")
        .arg(integration_tests::brokerd_bin())
        .args(["--json", "--connect-only", "3", "--scram-user", "bench"])
        .arg("--brokerd-config")
        .arg(&config)
        .env("BROKER_BENCH_SCRAM_PASSWORD", "bench-password")
        .output()
        .expect("running broker-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{output:?}");
    let report = json(&stdout);
    assert_eq!(report["scram"], true);
    assert!(report["setup_us"]["p50"].as_f64().is_some_and(|v| v > 0.0));
}

#[test]
fn a_workload_logs_every_connection_in_with_scram() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("brokerd.toml");
    std::fs::write(&config, "[security]\nmechanisms = [\"SCRAM-SHA-256\"]\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_broker-bench"))
        .arg("--brokerd")
        .arg(integration_tests::brokerd_bin())
        .args([
            "--json",
            "--quiet",
            "--workload",
            "pubsub",
            "--messages",
            "2000",
        ])
        .args([
            "--batch",
            "100",
            "--scram-user",
            "bench",
            "--brokerd-config",
        ])
        .arg(&config)
        .env("BROKER_BENCH_SCRAM_PASSWORD", "bench-password")
        .output()
        .expect("running broker-bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{output:?}");
    let report = json(&stdout);
    assert_eq!(report["broker"], "brokerd, authenticated");
    assert_eq!(report["lost"], 0);
    assert_eq!(report["received"], 2000);
}
