//! brokerctl on a real terminal: progress bars are drawn on a terminal's standard
//! error only, and shell completion scripts. The terminal is a pseudo-terminal made by
//! util-linux's `script`, which records everything the command writes to it.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use integration_tests::Brokerd;

/// Lines produced: enough that the bar is drawn at least once before the end.
const LINES: usize = 20_000;

fn brokerctl() -> &'static str {
    env!("CARGO_BIN_EXE_brokerctl")
}

/// Runs `shell_command` with a pseudo-terminal as its standard input, output and
/// error (each unless redirected in the command); returns what reached the terminal.
fn on_terminal(broker: &Brokerd, shell_command: &str) -> String {
    let output = Command::new("script")
        .args([
            "--quiet",
            "--return",
            "--command",
            shell_command,
            "/dev/null",
        ])
        .env("BROKER_ADDR", broker.addr())
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .expect("util-linux `script` runs");
    assert!(
        output.status.success(),
        "{shell_command} failed on a terminal: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `shell_command` with pipes, no terminal anywhere.
fn in_pipes(broker: &Brokerd, shell_command: &str) -> Output {
    let output = Command::new("sh")
        .args(["-c", shell_command])
        .env("BROKER_ADDR", broker.addr())
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .expect("sh runs");
    assert!(output.status.success(), "{shell_command}: {output:?}");
    output
}

fn write_lines(path: &Path) {
    let text: String = (0..LINES).map(|i| format!("line {i}\n")).collect();
    std::fs::write(path, text).unwrap();
}

#[test]
fn progress_bars_show_on_a_terminal_and_never_in_pipes() {
    let broker = Brokerd::start();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    write_lines(&input);
    let ctl = brokerctl();
    in_pipes(&broker, &format!("{ctl} topics create t --partitions 1"));

    // Producing a file: a bar in bytes of the file, then the summary.
    let seen = on_terminal(
        &broker,
        &format!("{ctl} produce t --ack appended < {}", input.display()),
    );
    assert!(seen.contains("KiB/"), "no bar in bytes: {seen:?}");
    assert!(
        seen.contains(&format!("acknowledged {LINES} of {LINES}")),
        "{seen:?}"
    );

    // Consuming into a file: a bar to --count, and the file holds every message.
    let out = dir.path().join("out.txt");
    let seen = on_terminal(
        &broker,
        &format!("{ctl} consume t --count {LINES} > {}", out.display()),
    );
    assert!(seen.contains("messages"), "no bar in messages: {seen:?}");
    let consumed = std::fs::read_to_string(&out).unwrap();
    assert_eq!(consumed.lines().count(), LINES);
    assert!(
        !consumed.contains("messages"),
        "the bar went into the output"
    );

    // Consuming onto the terminal itself: the messages, no bar among them.
    let seen = on_terminal(&broker, &format!("{ctl} consume t --count 3"));
    assert!(!seen.contains("messages"), "{seen:?}");
    assert!(seen.contains("line 2"), "{seen:?}");

    // No terminal: nothing but the output and the summary.
    let piped = in_pipes(
        &broker,
        &format!("{ctl} produce t --ack appended < {}", input.display()),
    );
    assert!(piped.stderr.is_empty(), "{piped:?}");
    let piped = in_pipes(&broker, &format!("{ctl} consume t --count {LINES}"));
    assert!(
        piped.stderr.is_empty(),
        "stderr: {:?}",
        String::from_utf8_lossy(&piped.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&piped.stdout).lines().count(),
        LINES
    );
}

#[test]
fn completion_scripts_are_generated_without_a_broker() {
    for shell in ["bash", "zsh", "fish"] {
        let output = Command::new(brokerctl())
            .args(["completions", shell])
            // Nothing listens here: completions must not try to connect.
            .env("BROKER_ADDR", "127.0.0.1:9")
            .output()
            .unwrap();
        assert!(output.status.success(), "{shell}: {output:?}");
        let script = String::from_utf8(output.stdout).unwrap();
        assert!(script.contains("brokerctl"), "{shell}");
        assert!(script.contains("tls-ca"), "{shell}");
    }
    // bash accepts the script it would source.
    let check = Command::new("bash")
        .args([
            "-c",
            &format!(
                "source <({} completions bash) && complete -p brokerctl",
                brokerctl()
            ),
        ])
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    assert!(String::from_utf8_lossy(&check.stdout).contains("brokerctl"));
}
