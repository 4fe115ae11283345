//! What the Kafka tests share: a brokerd with its Kafka listener, kcat (found, or
//! skipped outside CI), and a native client.

#![allow(dead_code)]

pub mod wire;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use integration_tests::{brokerd_bin, Brokerd, Launch};

/// Longest one kcat run may take (it exits at the end of the partition with `-e`;
/// this is the backstop for a hang).
pub const KCAT_TIMEOUT_S: &str = "30";

/// A brokerd with its Kafka listener on a port the OS picked.
pub fn broker() -> Brokerd {
    Launch::new(brokerd_bin())
        .with_kafka()
        .start()
        .unwrap_or_else(|e| panic!("starting brokerd with --kafka-listen: {e}"))
}

/// kcat, from `$KCAT` or `PATH`; `None` (the test then says so and passes) when it
/// is missing, except under `CI`, where `.ci/run` installs it and a missing one fails.
pub fn kcat() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("KCAT").map(PathBuf::from),
        Some(PathBuf::from("kcat")),
    ];
    let found = candidates.into_iter().flatten().find(|path| {
        Command::new(path)
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "kcat is missing under CI; .ci/run installs it (Debian package kcat)"
        );
        eprintln!("SKIPPED: kcat is not installed (apt-get install kcat)");
    }
    found
}

/// Runs kcat against `broker`'s Kafka listener with `args`, `stdin` on its input,
/// under [`KCAT_TIMEOUT_S`]; panics unless it succeeds, and returns its stdout.
pub fn run_kcat(kcat: &PathBuf, broker: &Brokerd, args: &[&str], stdin: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("timeout")
        .arg(KCAT_TIMEOUT_S)
        .arg(kcat)
        .args(["-b", broker.kafka_addr()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning kcat: {e}"));
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).unwrap();
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    assert!(
        status.success(),
        "kcat {args:?} failed ({status}):\n{stdout}\n{}",
        String::from_utf8_lossy(&stderr)
    );
    stdout
}

/// A native client of `broker`.
pub async fn native(broker: &Brokerd) -> client::Client {
    client::Client::connect(broker.addr()).await.unwrap()
}

/// Debian's python3 with confluent-kafka (`python3-confluent-kafka`, which links the
/// same librdkafka as kcat); `None` (the test then says so and passes) when it is
/// missing, except under `CI`, where `.ci/run` installs it and a missing one fails.
pub fn confluent_python() -> Option<PathBuf> {
    let python =
        PathBuf::from(std::env::var_os("KAFKA_PYTHON").unwrap_or("/usr/bin/python3".into()));
    let found = Command::new(&python)
        .args(["-c", "import confluent_kafka"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "confluent-kafka is missing under CI; .ci/run installs it (python3-confluent-kafka)"
        );
        eprintln!("SKIPPED: python3-confluent-kafka is not installed");
        return None;
    }
    Some(python)
}

/// Debian's python3 with kafka-python (`python3-kafka`, a pure-Python client with its
/// own protocol code); `None` outside CI when it is missing, as [`confluent_python`].
pub fn kafka_python() -> Option<PathBuf> {
    let python = PathBuf::from("/usr/bin/python3");
    let found = Command::new(&python)
        .args(["-c", "import kafka"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "kafka-python is missing under CI; .ci/run installs it (python3-kafka)"
        );
        eprintln!("SKIPPED: python3-kafka is not installed");
        return None;
    }
    Some(python)
}

/// Longest one Python client script may take (the backstop for a hang; each script
/// has its own, shorter deadlines).
pub const PYTHON_TIMEOUT_S: &str = "120";

/// Runs `tests/kafka_python/<script>` with `python` against `broker`'s Kafka
/// listener (its address in `$BOOTSTRAP`), `args` after it, under
/// [`PYTHON_TIMEOUT_S`]; panics unless it succeeds, and returns its stdout.
pub fn run_python(python: &PathBuf, broker: &Brokerd, script: &str, args: &[&str]) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("kafka_python")
        .join(script);
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new("timeout")
        .arg(PYTHON_TIMEOUT_S)
        .arg(python)
        .arg(&path)
        .args(args)
        .env("BOOTSTRAP", broker.kafka_addr())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", path.display()));
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    assert!(
        status.success(),
        "{script} {args:?} failed ({status}):\n{stdout}\n{}",
        String::from_utf8_lossy(&stderr)
    );
    stdout
}
