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
    let (ok, stdout, stderr) = try_kcat(kcat, broker, args, stdin);
    assert!(ok, "kcat {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

/// Runs kcat like [`run_kcat`], failure allowed: (whether it succeeded, stdout,
/// stderr).
pub fn try_kcat(
    kcat: &PathBuf,
    broker: &Brokerd,
    args: &[&str],
    stdin: &str,
) -> (bool, String, String) {
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
    (
        status.success(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// A native client of `broker`.
pub async fn native(broker: &Brokerd) -> client::Client {
    client::Client::connect(broker.addr()).await.unwrap()
}

/// Debian's python3 with confluent-kafka (`python3-confluent-kafka`, which links the
/// same librdkafka as kcat); see [`python_with`].
pub fn confluent_python() -> Option<PathBuf> {
    python_with("confluent_kafka", "python3-confluent-kafka")
}

/// Debian's python3 with kafka-python (`python3-kafka`, a pure-Python client with its
/// own protocol code); see [`python_with`].
pub fn kafka_python() -> Option<PathBuf> {
    python_with("kafka", "python3-kafka")
}

/// The python3 of `target/aiokafka-venv` (where `.ci/run` installs aiokafka from
/// PyPI: Debian has no package), or `$AIOKAFKA_PYTHON`, if it imports `aiokafka`;
/// `None` (the test then says so and passes) without one, except under `CI`.
pub fn aiokafka_python() -> Option<PathBuf> {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/aiokafka-venv/bin/python");
    let candidates = [
        std::env::var_os("AIOKAFKA_PYTHON").map(PathBuf::from),
        Some(venv),
    ];
    let found = candidates.into_iter().flatten().find(|python| {
        Command::new(python)
            .args(["-c", "import aiokafka"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "aiokafka is missing under CI; .ci/run installs it into target/aiokafka-venv"
        );
        eprintln!(
            "SKIPPED: aiokafka is not installed (pip install aiokafka into target/aiokafka-venv)"
        );
    }
    found
}

/// `$KAFKA_PYTHON` or Debian's python3, if it imports `module`; `None` (the test then
/// says so and passes) when it does not, except under `CI`, where `.ci/run` installs
/// the Debian `package` and a missing one fails.
fn python_with(module: &str, package: &str) -> Option<PathBuf> {
    let python =
        PathBuf::from(std::env::var_os("KAFKA_PYTHON").unwrap_or("/usr/bin/python3".into()));
    let found = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{module} is missing under CI; .ci/run installs it ({package})"
        );
        eprintln!("SKIPPED: {package} is not installed");
        return None;
    }
    Some(python)
}

/// Longest one Python client script may take (the backstop for a hang; each script
/// has its own, shorter deadlines).
pub const PYTHON_TIMEOUT_S: &str = "120";

/// `tests/kafka_python/<script>` with `python` against `broker`'s Kafka listener
/// (its address in `$BOOTSTRAP`), `args` after it, under [`PYTHON_TIMEOUT_S`], its
/// output captured: to run now ([`run_python`]) or beside something else.
pub fn python_command(python: &PathBuf, broker: &Brokerd, script: &str, args: &[&str]) -> Command {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("kafka_python")
        .join(script);
    let mut command = Command::new("timeout");
    command
        .arg(PYTHON_TIMEOUT_S)
        .arg(python)
        .arg(path)
        .args(args)
        .env("BOOTSTRAP", broker.kafka_addr())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs [`python_command`]; panics unless it succeeds, and returns its stdout.
pub fn run_python(python: &PathBuf, broker: &Brokerd, script: &str, args: &[&str]) -> String {
    let Output {
        status,
        stdout,
        stderr,
    } = python_command(python, broker, script, args)
        .output()
        .unwrap_or_else(|e| panic!("running {script}: {e}"));
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    assert!(
        status.success(),
        "{script} {args:?} failed ({status}):\n{stdout}\n{}",
        String::from_utf8_lossy(&stderr)
    );
    stdout
}
