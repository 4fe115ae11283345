//! The shell in README.md and the brokerctl transcripts in docs/client.md run, in
//! order, against a real brokerd, and exit as the documents say: a flag or command
//! that stops existing, or an example that stops working, fails here.
//!
//! What is checked is each command's exit status (0, or what an `echo $?` after it
//! shows), not its output: outputs hold offsets, times and sizes that differ run to
//! run. Commands that follow forever (`services register`, `services watch`) are
//! run in the background and stopped at the end. The curl examples of README.md and
//! docs/http.md run too, against the test broker's HTTP listener (the documents'
//! `127.0.0.1:7172` is replaced by its address), failing on any HTTP error status.

use std::path::Path;
use std::process::Command;

use integration_tests::{brokerctl_bin, brokerd_bin, Brokerd, Launch};

/// The workspace root, where the documents are.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// The lines of every fenced block of `kind` in `text`, block by block.
fn blocks(text: &str, kind: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in text.lines() {
        let fence = line.trim_start().strip_prefix("```");
        match (current.as_mut(), fence) {
            (None, Some(tag)) if tag.trim() == kind => current = Some(Vec::new()),
            (Some(_), Some(_)) => out.extend(current.take()),
            (Some(lines), None) => lines.push(line.to_string()),
            _ => {}
        }
    }
    out
}

/// The HTTP address the documents' examples use: the default.
const DOCUMENTED_HTTP_ADDR: &str = "127.0.0.1:7172";
/// The Kafka address the documents' examples use (`--kafka-listen 127.0.0.1:9092`).
const DOCUMENTED_KAFKA_ADDR: &str = "127.0.0.1:9092";

/// Whether kcat is on the PATH; a block using it is skipped without, except under
/// `CI`, where `.ci/run` installs it.
fn kcat_present() -> bool {
    let present = Command::new("kcat")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        present || std::env::var_os("CI").is_none(),
        "kcat is missing under CI; .ci/run installs it"
    );
    present
}

/// Commands that never end on their own.
fn follows(command: &str) -> bool {
    ["services register", "services watch"]
        .iter()
        .any(|f| command.contains(f))
}

/// Runs `script` in bash, within `timeout_s`, with `brokerctl` on the PATH meaning
/// the built binary pointed at `broker`; returns (success, stdout + stderr).
fn bash(broker: &Brokerd, dir: &Path, script: &str, timeout_s: u32) -> (bool, String) {
    // A real executable, not a shell function, so that a `brokerctl ... &` is the
    // shell's own job and the trap can stop it.
    let bin = dir.join("bin");
    if !bin.exists() {
        std::fs::create_dir(&bin).unwrap();
        std::os::unix::fs::symlink(brokerctl_bin(), bin.join("brokerctl")).unwrap();
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // The documents show the quick start's HTTP address; curl fails on 4xx and 5xx.
    let mut script = script.replace(DOCUMENTED_HTTP_ADDR, broker.http_addr());
    if script.contains(DOCUMENTED_KAFKA_ADDR) {
        script = script.replace(DOCUMENTED_KAFKA_ADDR, broker.kafka_addr());
    }
    let script = format!(
        "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\ncurl() {{ command curl --fail-with-body \"$@\"; }}\n{script}\n"
    );
    let output = Command::new("timeout")
        .arg(timeout_s.to_string())
        .args(["bash", "-c", &script])
        .current_dir(dir)
        .env("PATH", path)
        .env("BROKER_ADDR", broker.addr())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn the_readme_shell_examples_run() {
    let text = std::fs::read_to_string(root().join("README.md")).unwrap();
    // With the Kafka listener too: the README's kcat examples use it.
    let broker = Launch::new(brokerd_bin()).with_kafka().start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut ran = 0;
    for block in blocks(&text, "sh") {
        if block
            .iter()
            .any(|l| l.starts_with("kcat ") || l.contains("| kcat "))
            && !kcat_present()
        {
            eprintln!("SKIPPED a kcat block: kcat is not installed");
            continue;
        }
        // The quick start builds and starts brokerd itself: that is what this test
        // has done already.
        if block
            .iter()
            .any(|l| l.contains("cargo test") || l.contains("--bin brokerd "))
        {
            continue;
        }
        let script: Vec<&str> = block
            .iter()
            .map(String::as_str)
            .filter(|l| !l.starts_with("alias "))
            .collect();
        // A follower started with `&` must still be following when the block ends.
        let script = script.join("\n") + "\nfor job in $(jobs -p); do kill -0 \"$job\"; done";
        let (ok, output) = bash(&broker, dir.path(), &script, 120);
        assert!(
            ok,
            "README block failed:\n{script}\n--- output ---\n{output}"
        );
        ran += 1;
    }
    assert!(ran >= 3, "only {ran} blocks ran");
}

#[test]
fn the_http_guide_curl_examples_run() {
    let text = std::fs::read_to_string(root().join("docs/http.md")).unwrap();
    let broker = Brokerd::start();
    let dir = tempfile::tempdir().unwrap();
    let mut ran = 0;
    for block in blocks(&text, "sh") {
        let script = block.join("\n");
        assert!(
            script.contains("curl"),
            "docs/http.md: a shell block without curl:\n{script}"
        );
        let (ok, output) = bash(&broker, dir.path(), &script, 60);
        assert!(
            ok,
            "docs/http.md block failed:\n{script}\n--- output ---\n{output}"
        );
        ran += 1;
    }
    assert!(ran >= 8, "only {ran} blocks ran");
}

#[test]
fn the_client_guide_brokerctl_transcripts_run() {
    let text = std::fs::read_to_string(root().join("docs/client.md")).unwrap();
    let broker = Brokerd::start();
    let dir = tempfile::tempdir().unwrap();
    let mut ran = 0;
    for block in blocks(&text, "text") {
        let lines: Vec<&str> = block.iter().map(String::as_str).collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(command) = line.strip_prefix("$ ") else {
                continue;
            };
            // A trailing `# ...` explains the command; it is no part of it (and would
            // swallow the redirections added below).
            let command = command.split(" # ").next().unwrap_or(command).trim_end();
            if command.starts_with("echo $?") {
                continue;
            }
            // `echo $?` right after a command shows the status it must exit with; a
            // shown `brokerctl: error:` means it fails.
            let next_command = (i + 1..lines.len()).find(|&j| lines[j].starts_with("$ "));
            let echoed: Option<i32> = next_command
                .filter(|&j| lines[j].starts_with("$ echo $?"))
                .and_then(|j| lines.get(j + 1))
                .map(|l| l.trim().parse().unwrap());
            let shows_error = lines
                .get(i + 1)
                .is_some_and(|l| l.starts_with("brokerctl: error:"));
            let (script, expected) = if follows(command) {
                let script =
                    format!("{command} >/dev/null 2>&1 &\nsleep 0.5\nkill -0 $! # still following");
                (script, "to keep following".to_string())
            } else if let Some(status) = echoed {
                (
                    format!("set +e\n{command}\ntest $? -eq {status}"),
                    format!("status {status}"),
                )
            } else if shows_error {
                (format!("! {command}"), "to fail".to_string())
            } else {
                (command.to_string(), "status 0".to_string())
            };
            let (ok, output) = bash(&broker, dir.path(), &script, 30);
            assert!(
                ok,
                "docs/client.md: `{command}` (expected {expected}):\n{output}"
            );
            ran += 1;
        }
    }
    assert!(ran >= 30, "only {ran} commands ran");
}
