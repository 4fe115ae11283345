//! The one way the workspace starts a real `brokerd`: for the black-box tests here
//! and in `client/`, `brokerctl/` and `bench/`, and for `broker-bench` at run time.
//!
//! Owns: finding and building the workspace's binaries ([`binaries`]), and a brokerd
//! child process on a loopback port the OS picks, in a temporary data directory,
//! that can be stopped gently, killed with SIGKILL, restarted over the same data,
//! and is killed when dropped ([`brokerd`]). Those return [`LaunchError`]s; on top of
//! them sit the panicking shorthands a test wants ([`Brokerd::start`],
//! [`brokerd_bin`], [`brokerctl`]), which build `brokerd` and `brokerctl` on first
//! use with the same cargo, profile and dependency features as the test run
//! ([`FeatureSet::Tested`]: a no-op but for linking brokerd when
//! `cargo test --workspace` built the rest).
//!
//! Must never: depend on `client` or `server` (except as dev-dependencies of its own
//! tests), so that `client`, `brokerctl` and `bench` can use it without a cycle and it
//! only ever drives brokerd from outside, as a user would; or leave a brokerd running
//! after its handle is gone.

// Production code must not unwrap data it did not create; tests may. The shorthands
// below panic on purpose, with the error's whole story, because that is how a test
// reports a broker that would not start.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod binaries;
pub mod brokerd;
pub mod raw;

use std::error::Error;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

pub use binaries::{BinDir, BuildOutput, FeatureSet};
pub use brokerd::{Brokerd, Launch, LaunchError, HTTP_LISTENING_PREFIX, LISTENING_PREFIX};

/// The binaries the tests run, built (quietly) once per test process.
fn test_bin_dir() -> &'static BinDir {
    static DIR: OnceLock<BinDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = BinDir::of_current_exe().unwrap_or_else(|e| fail("finding brokerd", &e));
        dir.build(
            &["brokerd", "brokerctl"],
            FeatureSet::Tested,
            BuildOutput::Quiet,
        )
        .unwrap_or_else(|e| fail("building brokerd and brokerctl", &e));
        dir
    })
}

/// Path of the `brokerd` binary of the test's profile, built if needed.
///
/// # Panics
/// If it cannot be built.
pub fn brokerd_bin() -> PathBuf {
    test_bin_dir().binary("brokerd")
}

/// Path of the `brokerctl` binary of the test's profile, built if needed.
///
/// # Panics
/// If it cannot be built.
pub fn brokerctl_bin() -> PathBuf {
    test_bin_dir().binary("brokerctl")
}

/// Test shorthands: each panics with the [`LaunchError`] where the methods in
/// [`brokerd`] return it.
impl Brokerd {
    /// Starts [`brokerd_bin`] on 127.0.0.1:0 in a new temporary directory.
    ///
    /// # Panics
    /// If brokerd cannot be built or started.
    pub fn start() -> Brokerd {
        Self::start_with(&[])
    }

    /// Starts [`brokerd_bin`] with extra command-line arguments.
    ///
    /// # Panics
    /// If brokerd cannot be built or started.
    pub fn start_with(extra_args: &[&str]) -> Brokerd {
        Launch::new(brokerd_bin())
            .args(extra_args)
            .start()
            .unwrap_or_else(|e| fail("starting brokerd", &e))
    }

    /// SIGTERM and wait; returns whether brokerd exited successfully (`true` if it
    /// was not running).
    ///
    /// # Panics
    /// If it could not be signalled or did not exit in time.
    pub fn stop(&mut self) -> bool {
        match self.terminate() {
            Ok(None) => true,
            Ok(Some(status)) => status.success(),
            Err(e) => fail("stopping brokerd", &e),
        }
    }

    /// [`Brokerd::try_restart`]: kill, then start again on the same data directory
    /// and address.
    ///
    /// # Panics
    /// If it does not come back.
    pub fn restart(&mut self) {
        self.try_restart()
            .unwrap_or_else(|e| fail("restarting brokerd", &e));
    }
}

/// Runs brokerctl against `addr` with `args` and `stdin`; returns (status, stdout, stderr).
///
/// # Panics
/// If brokerctl cannot be built or run.
pub fn brokerctl(addr: &str, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(brokerctl_bin())
        .arg("--addr")
        .arg(addr)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning brokerctl: {e}"));
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin.as_bytes())
            .unwrap_or_else(|e| panic!("writing brokerctl's stdin: {e}"));
    }
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("reading brokerctl's output: {e}"));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Panics with what was being done and the error with all its causes.
pub(crate) fn fail(doing: &str, error: &dyn Error) -> ! {
    let mut message = format!("{doing}: {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    panic!("{message}")
}
