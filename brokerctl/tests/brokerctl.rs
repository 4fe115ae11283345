//! The real `brokerctl` binary against a real brokerd.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use integration_tests::Brokerd;
use serde_json::Value;

/// Runs brokerctl against `addr` (through `BROKER_ADDR`), feeding `stdin`.
fn ctl_at(addr: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_brokerctl"))
        .args(args)
        .env("BROKER_ADDR", addr)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn brokerctl");
    let mut input = child.stdin.take().expect("piped stdin");
    input.write_all(stdin.as_bytes()).expect("write stdin");
    drop(input);
    child.wait_with_output().expect("brokerctl output")
}

fn ctl(broker: &Brokerd, args: &[&str]) -> Output {
    ctl_at(broker.addr(), args, "")
}

/// Runs brokerctl and insists it succeeded; returns stdout.
fn ok(output: Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "brokerctl failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        output.status
    );
    stdout
}

/// Insists brokerctl failed; returns stderr.
fn fails(output: Output) -> String {
    assert!(
        !output.status.success(),
        "brokerctl unexpectedly succeeded: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(text: &str) -> Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn committed(broker: &Brokerd, group: &str) -> Vec<Option<u64>> {
    let value = json(&ok(ctl(broker, &["groups", "describe", group, "--json"])));
    value["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| p["committed_offset"].as_u64())
        .collect()
}

#[test]
fn topics_create_list_describe_delete() {
    let broker = Brokerd::start();
    let out = ok(ctl(
        &broker,
        &[
            "topics",
            "create",
            "orders",
            "--partitions",
            "3",
            "--config",
            "retention_ms=60000",
        ],
    ));
    assert_eq!(out, "created topic orders with 3 partition(s)\n");

    let out = ok(ctl(&broker, &["topics"]));
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("NAME    PARTITIONS  MESSAGES  BYTES"));
    assert_eq!(lines.next(), Some("orders           3         0    0 B"));

    let listed = json(&ok(ctl(&broker, &["topics", "--json"])));
    assert_eq!(listed[0]["name"], "orders");
    assert_eq!(listed[0]["partitions"], 3);
    assert_eq!(listed[0]["messages"], 0);

    let out = ok(ctl(&broker, &["topics", "describe", "orders"]));
    assert!(out.starts_with("topic orders\n"), "{out}");
    assert!(out.contains("  retention_ms = 60000\n"), "{out}");
    assert!(
        out.contains("PARTITION  START  END  MESSAGES  SIZE\n"),
        "{out}"
    );
    for p in 0..3 {
        assert!(
            out.contains(&format!("        {p}      0    0         0   0 B")),
            "{out}"
        );
    }
    let described = json(&ok(ctl(
        &broker,
        &["--json", "topics", "describe", "orders"],
    )));
    assert_eq!(described["config"]["retention_ms"], "60000");
    assert_eq!(described["partitions"].as_array().map(Vec::len), Some(3));

    let err = fails(ctl(
        &broker,
        &["topics", "create", "bad", "-p", "1", "--config", "nope=1"],
    ));
    assert!(err.contains("invalid_config"), "{err}");
    let err = fails(ctl(&broker, &["topics", "create", "orders", "-p", "1"]));
    assert!(err.contains("topic_exists"), "{err}");

    assert_eq!(
        ok(ctl(&broker, &["topics", "delete", "orders"])),
        "deleted topic orders\n"
    );
    let err = fails(ctl(&broker, &["topics", "describe", "orders"]));
    assert!(err.starts_with("brokerctl: error: "), "{err}");
    assert!(err.contains("unknown_topic"), "{err}");
}

#[test]
fn group_consume_commits_exactly_the_printed_messages() {
    let broker = Brokerd::start();
    ok(ctl(
        &broker,
        &["topics", "create", "lines", "--partitions", "1"],
    ));
    let input: String = (1..=10).map(|i| format!("m{i}\n")).collect();
    let out = ok(ctl_at(broker.addr(), &["produce", "lines"], &input));
    assert_eq!(out, "acknowledged 10 of 10 message(s)\n");

    let args = ["consume", "lines", "--group", "g", "--count", "3"];
    assert_eq!(ok(ctl(&broker, &args)), "m1\nm2\nm3\n");
    assert_eq!(
        committed(&broker, "g"),
        [Some(3)],
        "one fetch read all 10; 3 printed"
    );
    assert_eq!(ok(ctl(&broker, &args)), "m4\nm5\nm6\n");
    assert_eq!(committed(&broker, "g"), [Some(6)]);

    // The rest as JSON, stopping after 300 ms without a message.
    let args = [
        "consume",
        "lines",
        "--group",
        "g",
        "--json",
        "--timeout-ms",
        "300",
    ];
    let out = ok(ctl(&broker, &args));
    let records: Vec<Value> = out.lines().map(json).collect();
    let offsets: Vec<u64> = records
        .iter()
        .filter_map(|r| r["offset"].as_u64())
        .collect();
    assert_eq!(offsets, [6, 7, 8, 9]);
    assert_eq!(records[0]["value"], "m7");
    assert_eq!(records[0]["partition"], 0);
    assert!(records[0]["key"].is_null());
    assert!(records[0]["timestamp"].as_i64().is_some());
    assert_eq!(committed(&broker, "g"), [Some(10)]);

    let groups = ok(ctl(&broker, &["groups"]));
    assert!(
        groups
            .lines()
            .any(|l| l.starts_with("g      lines  stream")),
        "{groups}"
    );
    let described = ok(ctl(&broker, &["groups", "describe", "g"]));
    assert!(
        described.contains("        0  -             10   10    0"),
        "{described}"
    );
    assert_eq!(
        json(&ok(ctl(&broker, &["groups", "--json"])))[0]["members"],
        0,
        "left"
    );
}

#[test]
fn group_consume_over_partitions_never_repeats_or_skips() {
    let broker = Brokerd::start();
    ok(ctl(
        &broker,
        &["topics", "create", "spread", "--partitions", "3"],
    ));
    let mut all = Vec::new();
    for key in ["a", "b", "c", "d"] {
        let input: String = (0..5).map(|i| format!("{key}{i}\n")).collect();
        ok(ctl_at(
            broker.addr(),
            &["produce", "spread", "--key", key],
            &input,
        ));
        all.extend((0..5).map(|i| format!("{key}{i}")));
    }
    let mut seen = Vec::new();
    let args = [
        "consume",
        "spread",
        "--group",
        "g",
        "--count",
        "3",
        "--timeout-ms",
        "2000",
    ];
    while seen.len() < all.len() {
        let out = ok(ctl(&broker, &args));
        let batch: Vec<String> = out.lines().map(str::to_string).collect();
        assert!(!batch.is_empty(), "stalled after {} messages", seen.len());
        seen.extend(batch);
        let total: u64 = committed(&broker, "g").into_iter().flatten().sum();
        assert_eq!(
            total,
            seen.len() as u64,
            "committed exactly what was printed"
        );
    }
    seen.sort();
    all.sort();
    assert_eq!(seen, all);
}

#[test]
fn produce_options_and_direct_consume() {
    let broker = Brokerd::start();
    ok(ctl(
        &broker,
        &["topics", "create", "t", "--partitions", "2"],
    ));
    let args = [
        "produce",
        "t",
        "--key",
        "user-1",
        "--header",
        "src=test",
        "--header",
        "n=1",
        "--partition",
        "1",
        "--ack",
        "appended",
    ];
    let out = ok(ctl_at(broker.addr(), &args, "a\r\nb\nc\n"));
    assert_eq!(out, "acknowledged 3 of 3 message(s)\n");

    let out = ok(ctl(
        &broker,
        &["consume", "t", "--from", "1", "--count", "2", "--json"],
    ));
    let records: Vec<Value> = out.lines().map(json).collect();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["partition"], 1);
    assert_eq!(records[0]["offset"], 1);
    assert_eq!(
        records[0]["value"], "b",
        "the \\r\\n line ending is stripped"
    );
    assert_eq!(records[0]["key"], "user-1");
    assert_eq!(records[0]["headers"][0]["key"], "src");
    assert_eq!(records[0]["headers"][1]["value"], "1");
    assert_eq!(records[1]["value"], "c");

    let out = ok(ctl(&broker, &["consume", "t", "--timeout-ms", "200"]));
    assert_eq!(out, "a\nb\nc\n");
    let out = ok(ctl(
        &broker,
        &["consume", "t", "--from", "latest", "--timeout-ms", "200"],
    ));
    assert_eq!(out, "");

    // Exit status: non-zero unless every line was acknowledged.
    let out = ctl_at(
        broker.addr(),
        &["produce", "t", "--partition", "7"],
        "x\ny\n",
    );
    let err = fails(out);
    assert!(err.contains("partition 7 does not exist"), "{err}");
    let err = fails(ctl_at(broker.addr(), &["produce", "missing"], "x\n"));
    assert!(err.contains("unknown_topic"), "{err}");
    let summary = json(&ok(ctl_at(broker.addr(), &["produce", "t", "--json"], "")));
    assert_eq!(summary["sent"], 0);
}

#[test]
fn stats_reports_uptime_connections_and_topics() {
    let broker = Brokerd::start();
    ok(ctl(
        &broker,
        &["topics", "create", "s", "--partitions", "1"],
    ));
    ok(ctl_at(broker.addr(), &["produce", "s"], "x\n"));
    let out = ok(ctl(&broker, &["stats"]));
    assert!(out.starts_with("uptime       "), "{out}");
    assert!(out.contains("\nconnections  "), "{out}");
    assert!(out.contains("TOPIC  MESSAGES"), "{out}");
    let stats = json(&ok(ctl(&broker, &["stats", "--json"])));
    assert!(stats["uptime_ms"].as_u64().is_some());
    assert_eq!(stats["topics"][0]["topic"], "s");
    assert_eq!(stats["topics"][0]["messages_total"], 1);
}

#[test]
fn unreachable_broker_is_a_clear_error() {
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    for args in [
        &["topics"][..],
        &["stats", "--json"],
        &["consume", "x", "--count", "1"],
    ] {
        let output = ctl_at(&addr, args, "");
        assert_eq!(output.status.code(), Some(1));
        assert!(output.stdout.is_empty());
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(
            err.starts_with("brokerctl: error: cannot connect to the broker at "),
            "{err}"
        );
        assert!(err.contains(&addr), "{err}");
    }
    // --addr wins over BROKER_ADDR.
    let broker = Brokerd::start();
    let output = ctl_at(&addr, &["--addr", broker.addr(), "topics"], "");
    ok(output);
}

/// Runs brokerctl against `addr` with its standard output a pipe whose reader is
/// already gone (`brokerctl ... | true`); returns its status and stderr.
fn ctl_into_closed_pipe(addr: &str, args: &[&str]) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_brokerctl"))
        .args(args)
        .env("BROKER_ADDR", addr)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn brokerctl");
    // Close the read end before brokerctl has even connected: every write fails.
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("brokerctl output");
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn every_listing_exits_quietly_on_a_closed_stdout() {
    let broker = Brokerd::start();
    ok(ctl(
        &broker,
        &["topics", "create", "t", "--partitions", "2"],
    ));
    ok(ctl_at(broker.addr(), &["produce", "t"], "a\nb\n"));
    ok(ctl(
        &broker,
        &["consume", "t", "--group", "g", "--count", "1"],
    ));
    let commands: &[&[&str]] = &[
        &["topics"],
        &["topics", "--json"],
        &["topics", "describe", "t"],
        &["groups"],
        &["groups", "describe", "g"],
        &["groups", "--json"],
        &["services"],
        &["routes", "list"],
        &["traces"],
        &["stats"],
        &["stats", "--json"],
        &["dlq", "list", "t"],
        &["consume", "t", "--timeout-ms", "500"],
    ];
    for args in commands {
        let (status, stderr) = ctl_into_closed_pipe(broker.addr(), args);
        assert_eq!(status.code(), Some(0), "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}");
    }
    // produce keeps its exit status (it says whether every line was acknowledged),
    // whatever became of the summary.
    let (status, stderr) = ctl_into_closed_pipe(broker.addr(), &["produce", "missing"]);
    assert_eq!(status.code(), Some(1), "{stderr}");
}

/// `brokerctl ARGS | head -N`: returns what head printed and brokerctl's output.
fn ctl_into_head(addr: &str, args: &[&str], lines: usize) -> (String, Output) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_brokerctl"))
        .args(args)
        .env("BROKER_ADDR", addr)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn brokerctl");
    let pipe = child.stdout.take().expect("piped stdout");
    let head = Command::new("head")
        .arg(format!("-{lines}"))
        .stdin(pipe)
        .stdout(Stdio::piped())
        .output()
        .expect("run head");
    let output = child.wait_with_output().expect("brokerctl output");
    (String::from_utf8_lossy(&head.stdout).into_owned(), output)
}

#[test]
fn group_consume_into_head_commits_what_head_read() {
    let broker = Brokerd::start();
    ok(ctl(
        &broker,
        &["topics", "create", "lines", "--partitions", "1"],
    ));
    let input: String = (1..=1000).map(|i| format!("m{i}\n")).collect();
    ok(ctl_at(broker.addr(), &["produce", "lines"], &input));

    let (read, output) = ctl_into_head(broker.addr(), &["consume", "lines", "--group", "g"], 2);
    assert_eq!(read, "m1\nm2\n");
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(output.stderr.is_empty(), "{output:?}");
    assert_eq!(committed(&broker, "g"), [Some(2)], "head read 2");

    // The next reader starts right after them.
    let args = ["consume", "lines", "--group", "g", "--count", "1"];
    assert_eq!(ok(ctl(&broker, &args)), "m3\n");
}

#[test]
fn queue_consume_into_head_acks_what_head_read() {
    let broker = Brokerd::start();
    ok(ctl(
        &broker,
        &["topics", "create", "jobs", "--partitions", "1"],
    ));
    let input: String = (1..=100).map(|i| format!("j{i}\n")).collect();
    ok(ctl_at(broker.addr(), &["produce", "jobs"], &input));

    let args = ["consume", "jobs", "--group", "w", "--queue"];
    let (read, output) = ctl_into_head(broker.addr(), &args, 2);
    assert_eq!(read, "j1\nj2\n");
    assert_eq!(output.status.code(), Some(0), "{output:?}");

    // The third was taken but never read: it is delivered again (after the 1 s retry
    // backoff), the first two never.
    let args = [
        "consume", "jobs", "--group", "w", "--queue", "--count", "98", "--json",
    ];
    let rest: Vec<Value> = ok(ctl(&broker, &args)).lines().map(json).collect();
    let mut values: Vec<&str> = rest.iter().filter_map(|r| r["value"].as_str()).collect();
    values.sort_by_key(|v| v[1..].parse::<u32>().unwrap());
    let expected: Vec<String> = (3..=100).map(|i| format!("j{i}")).collect();
    assert_eq!(values, expected);
    let third = rest.iter().find(|r| r["value"] == "j3").unwrap();
    assert_eq!(third["attempt"], 2);
}

#[test]
fn ack_none_says_nothing_was_acknowledged() {
    let broker = Brokerd::start();
    ok(ctl(
        &broker,
        &["topics", "create", "f", "--partitions", "1"],
    ));
    let out = ok(ctl_at(
        broker.addr(),
        &["produce", "f", "--ack", "none"],
        "a\nb\n",
    ));
    assert!(
        out.starts_with("sent 2 of 2 message(s) without waiting"),
        "{out}"
    );
    assert!(!out.contains("acknowledged"), "{out}");
    let args = ["produce", "f", "--ack", "none", "--json"];
    let summary = json(&ok(ctl_at(broker.addr(), &args, "c\n")));
    assert_eq!(summary["sent"], 1);
    assert!(summary.get("acknowledged").is_none(), "{summary}");
}

#[test]
fn trace_ids_are_checked_before_connecting() {
    // No broker at all: the argument is refused first, as a usage error.
    let output = ctl_at("127.0.0.1:1", &["trace", "nothex"], "");
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("32 hex digits"), "{err}");
    assert!(err.contains("\"nothex\""), "{err}");
}

/// Polls `brokerctl trace ID` until its output contains every one of `spans`.
fn trace_eventually(broker: &Brokerd, id: &str, spans: &[&str]) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        // Spans are written in the background: `trace` fails until the first is there.
        let out = String::from_utf8_lossy(&ctl(broker, &["trace", id]).stdout).into_owned();
        if spans.iter().all(|s| out.contains(s)) {
            return out;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "spans {spans:?} never came: {out}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn produce_and_publish_start_traces_with_trace() {
    let broker = Brokerd::start();
    ok(ctl(
        &broker,
        &["topics", "create", "orders", "--partitions", "1"],
    ));
    let out = ok(ctl_at(
        broker.addr(),
        &["produce", "orders", "--trace"],
        "x\ny\n",
    ));
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("acknowledged 2 of 2 message(s)"));
    let id = lines
        .next()
        .and_then(|l| l.strip_prefix("trace "))
        .expect(&out);
    assert_eq!(id.len(), 32, "{out}");
    let tree = trace_eventually(&broker, id, &["produce", "durable"]);
    assert!(tree.starts_with(&format!("trace {id}\n")), "{tree}");
    let consumed = ok(ctl(
        &broker,
        &["consume", "orders", "--count", "1", "--json"],
    ));
    let header = &json(&consumed)["headers"][0];
    assert_eq!(header["key"], "traceparent");
    assert!(header["value"].as_str().unwrap().contains(id), "{consumed}");

    ok(ctl(&broker, &["routes", "add", "orders.#", "orders"]));
    let args = ["publish", "orders.created", "--trace", "--json"];
    let summary = json(&ok(ctl_at(broker.addr(), &args, "z\n")));
    let id = summary["trace_id"].as_str().expect("trace_id").to_string();
    trace_eventually(&broker, &id, &["route"]);

    // A traceparent of one's own, as a header: the documented way to continue a trace.
    let own = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let args = [
        "produce",
        "orders",
        "--header",
        &format!("traceparent={own}"),
    ];
    ok(ctl_at(broker.addr(), &args, "w\n"));
    trace_eventually(&broker, "4bf92f3577b34da6a3ce929d0e0e4736", &["produce"]);
}

#[test]
fn services_register_asks_for_the_instance_address_by_the_name_users_type() {
    let output = ctl_at("127.0.0.1:1", &["services", "register", "search"], "");
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("--addr HOST:PORT after `register`"), "{err}");
    let help = ok(ctl_at(
        "127.0.0.1:1",
        &["services", "register", "--help"],
        "",
    ));
    assert!(!help.contains("crate::") && !help.contains("[`"), "{help}");
    assert!(help.contains("--instance-addr <HOST:PORT>"), "{help}");
    assert!(
        help.contains("Give it as --addr after `register`"),
        "{help}"
    );
}

/// A long-running brokerctl (a follower) whose stdout lines arrive on a channel.
struct Follower {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

/// How long a follower's next line may take, a broker restart included.
const FOLLOW_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl Follower {
    fn start(addr: &str, args: &[&str]) -> Follower {
        let mut child = Command::new(env!("CARGO_BIN_EXE_brokerctl"))
            .args(args)
            .env("BROKER_ADDR", addr)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn brokerctl");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Follower { child, lines }
    }

    fn next_line(&self) -> String {
        self.lines
            .recv_timeout(FOLLOW_WAIT)
            .expect("the follower printed a line in time")
    }

    fn lines(&self, n: usize) -> Vec<String> {
        (0..n).map(|_| self.next_line()).collect()
    }

    /// SIGTERM, and what it then did: exit status, the lines it printed after the
    /// ones read, and stderr.
    fn terminate(self) -> (std::process::ExitStatus, Vec<String>, String) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        let output = self.child.wait_with_output().expect("brokerctl exits");
        let rest: Vec<String> = self.lines.iter().collect();
        (
            output.status,
            rest,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

/// Polls until `check` holds, for up to [`FOLLOW_WAIT`].
fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + FOLLOW_WAIT;
    while !check() {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn lines_of(prefix: &str, range: std::ops::RangeInclusive<u32>) -> String {
    range.map(|i| format!("{prefix}{i}\n")).collect()
}

#[test]
fn following_a_topic_survives_a_broker_restart_without_repeating() {
    let mut broker = Brokerd::start();
    ok(ctl(
        &broker,
        &["topics", "create", "t", "--partitions", "2"],
    ));
    ok(ctl_at(
        broker.addr(),
        &["produce", "t", "--partition", "0"],
        &lines_of("a", 1..=3),
    ));
    let follower = Follower::start(broker.addr(), &["consume", "t"]);
    assert_eq!(follower.lines(3), ["a1", "a2", "a3"]);

    broker.restart();
    ok(ctl_at(
        broker.addr(),
        &["produce", "t", "--partition", "1"],
        &lines_of("b", 1..=2),
    ));
    ok(ctl_at(
        broker.addr(),
        &["produce", "t", "--partition", "0"],
        &lines_of("c", 1..=1),
    ));
    let mut after = follower.lines(3);
    after.sort();
    assert_eq!(
        after,
        ["b1", "b2", "c1"],
        "what came after, once, and nothing before"
    );

    let (status, rest, stderr) = follower.terminate();
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean stop: {stderr}");
    assert!(rest.is_empty(), "{rest:?}");
    assert!(stderr.contains("lost the broker at"), "{stderr}");
    assert!(stderr.contains("is back"), "{stderr}");
}

#[test]
fn a_group_follower_survives_a_restart_and_sigterm_commits_and_leaves() {
    let mut broker = Brokerd::start();
    ok(ctl(
        &broker,
        &["topics", "create", "t", "--partitions", "1"],
    ));
    ok(ctl_at(
        broker.addr(),
        &["produce", "t"],
        &lines_of("a", 1..=3),
    ));
    let follower = Follower::start(broker.addr(), &["consume", "t", "--group", "g"]);
    assert_eq!(follower.lines(3), ["a1", "a2", "a3"]);
    // Committed while it runs (every second), not only at exit.
    until("the printed messages are committed", || {
        committed(&broker, "g") == [Some(3)]
    });

    broker.restart();
    ok(ctl_at(
        broker.addr(),
        &["produce", "t"],
        &lines_of("b", 1..=2),
    ));
    assert_eq!(follower.lines(2), ["b1", "b2"], "resumed from the commit");
    // Restarted again before b1 and b2 were committed: the member rejoins and resumes
    // from what it printed, not from the older commit.
    broker.restart();
    ok(ctl_at(
        broker.addr(),
        &["produce", "t"],
        &lines_of("c", 1..=1),
    ));
    assert_eq!(follower.next_line(), "c1", "nothing printed twice");

    let (status, rest, stderr) = follower.terminate();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(committed(&broker, "g"), [Some(6)], "committed at SIGTERM");
    let groups = json(&ok(ctl(&broker, &["groups", "--json"])));
    assert_eq!(groups[0]["members"], 0, "left the group: {groups}");
}

#[test]
fn a_queue_follower_survives_a_restart() {
    let mut broker = Brokerd::start();
    ok(ctl(
        &broker,
        &["topics", "create", "jobs", "--partitions", "1"],
    ));
    ok(ctl_at(
        broker.addr(),
        &["produce", "jobs"],
        &lines_of("j", 1..=3),
    ));
    let args = ["consume", "jobs", "--group", "w", "--queue"];
    let follower = Follower::start(broker.addr(), &args);
    assert_eq!(follower.lines(3), ["j1", "j2", "j3"]);

    broker.restart();
    ok(ctl_at(
        broker.addr(),
        &["produce", "jobs"],
        &lines_of("j", 4..=4),
    ));
    // An ack the restart cut off is delivered again (at least once); nothing is lost.
    let mut again = Vec::new();
    loop {
        let line = follower.next_line();
        if line == "j4" {
            break;
        }
        again.push(line);
    }
    assert!(
        again
            .iter()
            .all(|l| ["j1", "j2", "j3"].contains(&l.as_str())),
        "{again:?}"
    );

    let (status, rest, stderr) = follower.terminate();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(rest.is_empty(), "{rest:?}");
    let groups = json(&ok(ctl(&broker, &["groups", "--json"])));
    assert_eq!(groups[0]["members"], 0, "left the group: {groups}");
}

#[test]
fn services_watch_survives_a_broker_restart() {
    let mut broker = Brokerd::start();
    let connections = |broker: &Brokerd| {
        json(&ok(ctl(broker, &["stats", "--json"])))["connections"]
            .as_u64()
            .unwrap()
    };
    let watch = Follower::start(broker.addr(), &["services", "watch"]);
    // The watch starts at the registry's end once connected: wait for its connection
    // (this `stats` is the other one).
    until("the watch is connected", || connections(&broker) >= 2);
    let register = |name: &str| {
        Follower::start(
            broker.addr(),
            &[
                "services",
                "register",
                name,
                "--addr",
                "10.0.0.1:80",
                "--id",
                name,
            ],
        )
    };
    let a = register("a");
    assert_eq!(a.next_line(), "registered a/a; heartbeating until stopped");
    assert_eq!(watch.next_line(), "registered a/a 10.0.0.1:80");

    broker.restart();
    let b = Follower::start(
        broker.addr(),
        &[
            "services",
            "register",
            "b",
            "--addr",
            "10.0.0.2:80",
            "--id",
            "b",
        ],
    );
    assert_eq!(b.next_line(), "registered b/b; heartbeating until stopped");
    assert_eq!(watch.next_line(), "registered b/b 10.0.0.2:80");

    let (status, _, stderr) = watch.terminate();
    assert_eq!(status.code(), Some(0), "{stderr}");
    for register in [a, b] {
        let (status, _, stderr) = register.terminate();
        assert_eq!(status.code(), Some(0), "{stderr}");
    }
}

#[test]
fn consume_one_partition_from_an_offset_through_a_format() {
    let broker = Brokerd::start();
    ok(ctl(
        &broker,
        &["topics", "create", "t", "--partitions", "2"],
    ));
    let args = [
        "produce",
        "t",
        "--partition",
        "1",
        "--key",
        "k1",
        "--header",
        "src=web",
    ];
    ok(ctl_at(broker.addr(), &args, "a\nb\nc\n"));
    ok(ctl_at(
        broker.addr(),
        &["produce", "t", "--partition", "0"],
        "x\n",
    ));

    let args = [
        "consume",
        "t",
        "--partition",
        "1",
        "--offset",
        "1",
        "--timeout-ms",
        "300",
    ];
    assert_eq!(ok(ctl(&broker, &args)), "b\nc\n");
    let args = [
        "consume",
        "t",
        "--partition",
        "1",
        "--timeout-ms",
        "300",
        "--format",
        "%t/%p@%o key=%k(%K) [%h] %s(%S)\\n",
    ];
    assert_eq!(
        ok(ctl(&broker, &args)),
        "t/1@0 key=k1(2) [src=web] a(1)\nt/1@1 key=k1(2) [src=web] b(1)\nt/1@2 key=k1(2) [src=web] c(1)\n"
    );
    let args = [
        "consume",
        "t",
        "--partition",
        "0",
        "--count",
        "1",
        "--format",
        "%k|%K|%s",
    ];
    assert_eq!(
        ok(ctl(&broker, &args)),
        "|-1|x",
        "no key; nothing added after"
    );

    let err = fails(ctl(
        &broker,
        &["consume", "t", "--partition", "9", "--count", "1"],
    ));
    assert!(
        err.contains("topic t has no partition 9 (it has 2"),
        "{err}"
    );
    let output = ctl(
        &broker,
        &["consume", "t", "--partition", "0", "--group", "g"],
    );
    assert_eq!(output.status.code(), Some(2), "a usage error");
    let output = ctl(&broker, &["consume", "t", "--format", "%s", "--json"]);
    assert_eq!(output.status.code(), Some(2));
    let output = ctl(&broker, &["consume", "t", "--format", "%x"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown directive %x"));
}

#[test]
fn produce_keys_per_line_and_json_lines_with_headers() {
    let broker = Brokerd::start();
    ok(ctl(
        &broker,
        &["topics", "create", "t", "--partitions", "1"],
    ));
    let input = "user-1:paid\nuser-2:shipped:fast\nno separator\n";
    let output = ctl_at(
        broker.addr(),
        &["produce", "t", "--key-separator", ":"],
        input,
    );
    assert_eq!(output.status.code(), Some(1), "one line was refused");
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(out, "acknowledged 2 of 3 message(s)\n");
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("line 3: no key separator \":\""), "{err}");
    let format = [
        "consume",
        "t",
        "--timeout-ms",
        "300",
        "--format",
        "%k|%s|%h\\n",
    ];
    assert_eq!(
        ok(ctl(&broker, &format)),
        "user-1|paid|\nuser-2|shipped:fast|\n"
    );

    let input = concat!(
        r#"{"key":"user-3","value":"refunded","headers":[{"key":"src","value":"api"},{"key":"n","value":"1"}]}"#,
        "\n",
        r#"{"value":"no key","headers":{"src":"cron"}}"#,
        "\n",
        r#"{"value":null,"key":"user-1"}"#,
        "\n",
    );
    let args = ["produce", "t", "--input", "json", "--header", "batch=7"];
    assert_eq!(
        ok(ctl_at(broker.addr(), &args, input)),
        "acknowledged 3 of 3 message(s)\n"
    );
    let args = [
        "consume",
        "t",
        "--offset",
        "2",
        "--timeout-ms",
        "300",
        "--format",
        "%k(%K)|%s(%S)|%h\\n",
    ];
    assert_eq!(
        ok(ctl(&broker, &args)),
        "user-3(6)|refunded(8)|batch=7,src=api,n=1\n(-1)|no key(6)|batch=7,src=cron\nuser-1(6)|(-1)|batch=7\n"
    );

    // What consume --json prints, produce --input json takes back: a copy.
    ok(ctl(
        &broker,
        &["topics", "create", "copy", "--partitions", "1"],
    ));
    let exported = ok(ctl(
        &broker,
        &["consume", "t", "--json", "--timeout-ms", "300"],
    ));
    ok(ctl_at(
        broker.addr(),
        &["produce", "copy", "--input", "json"],
        &exported,
    ));
    let copied = ok(ctl(
        &broker,
        &["consume", "copy", "--json", "--timeout-ms", "300"],
    ));
    let strip = |text: &str| -> Vec<Value> {
        text.lines()
            .map(|l| {
                let mut v = json(l);
                v.as_object_mut().unwrap().remove("timestamp");
                v
            })
            .collect()
    };
    assert_eq!(strip(&copied), strip(&exported));

    let output = ctl_at(
        broker.addr(),
        &["produce", "t", "--input", "json"],
        "not json\n",
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("line 1: the line is not JSON"));
    let args = ["produce", "t", "--input", "json", "--key-separator", ":"];
    assert_eq!(ctl_at(broker.addr(), &args, "").status.code(), Some(2));
}

#[test]
fn sigterm_while_the_reader_has_not_read_the_line_commits_nothing_and_exits_0() {
    let broker = Brokerd::start();
    ok(ctl(
        &broker,
        &["topics", "create", "t", "--partitions", "1"],
    ));
    ok(ctl_at(
        broker.addr(),
        &["produce", "t"],
        &lines_of("a", 1..=3),
    ));
    let mut child = Command::new(env!("CARGO_BIN_EXE_brokerctl"))
        .args(["consume", "t", "--group", "g"])
        .env("BROKER_ADDR", broker.addr())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn brokerctl");
    // Nobody reads: brokerctl writes a1 and waits for it to be taken.
    let stdout = child.stdout.take().expect("piped stdout");
    until("a line waits in the pipe", || {
        rustix::io::ioctl_fionread(&stdout).unwrap() > 0
    });
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let mut status = None;
    until("brokerctl exits", || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    let committed = committed(&broker, "g");
    assert!(
        matches!(committed[..], [None] | [Some(0)]),
        "a1 was never read: {committed:?}"
    );
    let mut unread = String::new();
    std::io::Read::read_to_string(&mut { stdout }, &mut unread).unwrap();
    assert_eq!(unread, "a1\n");
}
