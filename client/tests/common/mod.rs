//! Starting and stopping a real `brokerd` for integration tests.

#![allow(dead_code)] // each test binary uses its own subset

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long brokerd may take to print its address.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The `brokerd` binary next to this test binary (`target/debug/deps/..`), built once
/// if it is missing.
pub fn brokerd_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let exe = std::env::current_exe().expect("test binary path");
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary lives in target/<profile>/deps");
        let path = dir.join(format!("brokerd{}", std::env::consts::EXE_SUFFIX));
        if !path.exists() {
            let status = Command::new(env!("CARGO"))
                .args(["build", "-p", "server", "--bin", "brokerd"])
                .status()
                .expect("run cargo build for brokerd");
            assert!(status.success(), "building brokerd failed");
        }
        assert!(path.exists(), "no brokerd at {}", path.display());
        path
    })
}

/// A running brokerd; killed on drop.
pub struct Broker {
    child: Child,
    pub addr: String,
    pub data_dir: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Broker {
    /// Starts brokerd on an OS-chosen port with a fresh data directory.
    pub fn start() -> Broker {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().to_path_buf();
        let mut broker = Broker::start_at(&data_dir, "127.0.0.1:0");
        broker._dir = Some(dir);
        broker
    }

    /// Starts brokerd on `listen` over an existing data directory.
    pub fn start_at(data_dir: &Path, listen: &str) -> Broker {
        let mut child = Command::new(brokerd_path())
            .args(["--listen", listen, "--data-dir"])
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn brokerd");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep draining so brokerd never blocks on a full pipe.
            for _ in lines {}
        });
        let line = rx
            .recv_timeout(STARTUP_TIMEOUT)
            .expect("brokerd printed no address");
        let addr = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .trim()
            .to_string();
        Broker {
            child,
            addr,
            data_dir: data_dir.to_path_buf(),
            _dir: None,
        }
    }

    /// Kills the process (keeping the data directory) and waits for it to exit.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Takes ownership of the temporary data directory, so it outlives this process.
    pub fn take_dir(&mut self) -> Option<tempfile::TempDir> {
        self._dir.take()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
