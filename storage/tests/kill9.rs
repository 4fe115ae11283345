//! A child process appends with `always` durability and prints every offset it was
//! told is durable; the parent kills it with SIGKILL mid-stream and checks that the
//! reopened log holds every acknowledged batch, intact and in order.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{batch, read_all, stored};
use storage::{Durability, Log, LogConfig};

const CHILD_ENV: &str = "STORAGE_KILL9_CHILD_DIR";
const ACKS_BEFORE_KILL: u64 = 300;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 * 1024,
        durability: Durability::Always,
        ..LogConfig::default()
    }
}

/// The child: only does anything when started by the parent test.
#[test]
fn child_writer() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let mut log = Log::open(&dir, config()).unwrap();
    let reader = log.reader();
    let stdout = std::io::stdout();
    for tag in 0.. {
        let info = log.append(&batch(tag, 3, 200, tag as i64)).unwrap();
        // Keep a few appends in flight between acknowledgements, as a server would.
        if tag % 4 == 3 {
            assert!(reader
                .wait_durable(info.next_offset, Duration::from_secs(30))
                .unwrap());
            let mut out = stdout.lock();
            writeln!(out, "durable {}", info.next_offset).unwrap();
            out.flush().unwrap();
        }
    }
}

#[test]
fn acknowledged_appends_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["child_writer", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acknowledged = 0u64;
    let mut acks = 0;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(offset) = line.strip_prefix("durable ") {
            acknowledged = acknowledged.max(offset.trim().parse().unwrap());
            acks += 1;
            if acks == ACKS_BEFORE_KILL {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(acks, ACKS_BEFORE_KILL, "the child stopped early");

    let log = Log::open(dir.path(), config()).unwrap();
    assert!(!log.recovery_report().clean);
    assert!(
        log.reader().end_offset() >= acknowledged,
        "lost acknowledged data"
    );
    let batches = read_all(&log.reader(), 0, 1 << 20).unwrap();
    for (tag, (base, bytes)) in batches.iter().enumerate() {
        assert_eq!(*base, tag as u64 * 3);
        assert_eq!(bytes, &stored(batch(tag as u64, 3, 200, tag as i64), *base));
    }
}
