//! Support for the black-box tests: start the real `brokerd` binary on port 0 in a
//! temporary directory, stop it gently or with SIGKILL, restart it on the same data,
//! and find the `brokerctl` binary.
//!
//! The binaries are built on first use with the same cargo and profile that built the
//! tests (a no-op when `cargo test --workspace` already built them).

// Test support: a binary that cannot be built or started is the test's failure,
// and a panic with the reason is how a test reports it.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The directory holding the workspace's binaries for this profile.
fn bin_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // target/<profile>/deps/<test binary>
        let exe = std::env::current_exe().expect("test binary path");
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>")
            .to_path_buf();
        let profile = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("debug")
            .to_string();
        let profile = if profile == "debug" {
            "dev".to_string()
        } else {
            profile
        };
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root");
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "--profile",
                &profile,
                "--bin",
                "brokerd",
                "--bin",
                "brokerctl",
            ])
            .current_dir(workspace)
            .status()
            .expect("running cargo build for brokerd and brokerctl");
        assert!(status.success(), "building brokerd and brokerctl failed");
        dir
    })
    .clone()
}

/// Path of the `brokerd` binary.
pub fn brokerd_bin() -> PathBuf {
    bin_dir().join("brokerd")
}

/// Path of the `brokerctl` binary.
pub fn brokerctl_bin() -> PathBuf {
    bin_dir().join("brokerctl")
}

/// A running brokerd with its own data directory. Killed when dropped.
pub struct Brokerd {
    child: Option<Child>,
    /// `host:port` it listens on.
    pub addr: String,
    dir: tempfile::TempDir,
    extra_args: Vec<String>,
}

impl Brokerd {
    /// Starts brokerd on 127.0.0.1:0 in a new temporary directory.
    pub fn start() -> Brokerd {
        Self::start_with(&[])
    }

    /// Starts brokerd with extra command-line arguments.
    pub fn start_with(extra_args: &[&str]) -> Brokerd {
        let dir = tempfile::tempdir().expect("temp dir");
        let extra_args: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        let (child, addr) = spawn(dir.path(), "127.0.0.1:0", &extra_args);
        Brokerd {
            child: Some(child),
            addr,
            dir,
            extra_args,
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// SIGKILL: no shutdown, no flushing; the page cache survives.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait; returns whether brokerd exited successfully.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait().map(|s| s.success()).unwrap_or(false)
    }

    /// Starts brokerd again on the same data directory and address.
    pub fn restart(&mut self) {
        self.kill9();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // The old port may linger briefly; retry until it binds.
            match try_spawn(self.dir.path(), &self.addr, &self.extra_args) {
                Some((child, addr)) => {
                    self.child = Some(child);
                    self.addr = addr;
                    return;
                }
                None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                None => panic!("brokerd did not restart on {}", self.addr),
            }
        }
    }
}

impl Drop for Brokerd {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn spawn(dir: &Path, listen: &str, extra: &[String]) -> (Child, String) {
    try_spawn(dir, listen, extra).expect("brokerd started and printed its address")
}

fn try_spawn(dir: &Path, listen: &str, extra: &[String]) -> Option<(Child, String)> {
    let mut child = Command::new(brokerd_bin())
        .args(["--listen", listen, "--data-dir"])
        .arg(dir)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning brokerd");
    let mut line = String::new();
    let read = match child.stdout.take() {
        Some(stdout) => BufReader::new(stdout).read_line(&mut line).unwrap_or(0),
        None => 0,
    };
    match line.trim().strip_prefix("listening on ") {
        Some(addr) if read > 0 => Some((child, addr.to_string())),
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            None
        }
    }
}

/// Runs brokerctl against `addr` with `args` and `stdin`; returns (status, stdout, stderr).
pub fn brokerctl(addr: &str, args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(brokerctl_bin())
        .arg("--addr")
        .arg(addr)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning brokerctl");
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin.as_bytes())
            .expect("writing brokerctl stdin");
    }
    let output = child.wait_with_output().expect("brokerctl output");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
