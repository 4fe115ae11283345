//! Starting a private `brokerd` for a run without `--addr`. Only the policy is here:
//! which binary (`--brokerd`, else the one next to broker-bench, else a release
//! build of this workspace's) and where its data goes (a new `broker-bench-*`
//! directory under `--data-parent`, or the system temporary directory). Starting it
//! on an OS-chosen loopback port, reading its address, and killing it (and removing
//! its data) when the run is over is `integration_tests::brokerd`, the one launcher the
//! tests use too.

use std::path::{Path, PathBuf};

use integration_tests::{BinDir, BuildOutput, FeatureSet, Launch, LaunchError};
use thiserror::Error;

pub use integration_tests::Brokerd;

/// How the data directory's name starts.
const DATA_DIR_PREFIX: &str = "broker-bench-";

/// Why the benchmark's own brokerd is not running. The message is the launcher's,
/// which already names the cause, plus what to do instead.
#[derive(Debug, Error)]
pub enum StartError {
    /// There is no brokerd next to broker-bench, and building one failed.
    #[error("no brokerd binary next to broker-bench, and building one failed: {0}; pass --brokerd PATH or --addr of a running broker")]
    Build(LaunchError),
    /// Its data directory could not be made.
    #[error("{0}; pass --data-parent DIR of a writable directory")]
    DataDir(LaunchError),
    /// The binary did not start, or did not announce its address.
    #[error("{0}; pass --brokerd PATH of a working binary or --addr of a running broker")]
    Start(LaunchError),
}

/// Starts `binary` (or the one [`find_brokerd`] finds) with its data in a new
/// directory under `data_parent` (the system temporary directory if `None`), reading
/// `config` (a brokerd TOML file, say with `[tls]`) if given, with `admin` (name and
/// password) made by `brokerd --init-admin` first if given (for a config with
/// `[security]`), and with its Kafka listener too if `kafka` (on a port the OS
/// picks: [`Brokerd::kafka_addr`]).
pub fn start(
    binary: Option<&Path>,
    data_parent: Option<&Path>,
    config: Option<&Path>,
    admin: Option<(&str, &str)>,
    kafka: bool,
) -> Result<Brokerd, StartError> {
    let path = match binary {
        Some(path) => path.to_path_buf(),
        None => find_brokerd().map_err(StartError::Build)?,
    };
    let mut launch = Launch::new(path).data_prefix(DATA_DIR_PREFIX);
    if let Some(parent) = data_parent {
        launch = launch.data_parent(parent);
    }
    if let Some(config) = config {
        launch = launch.args([std::ffi::OsStr::new("--config"), config.as_os_str()]);
    }
    if let Some((name, password)) = admin {
        launch = launch.init_admin(name, password);
    }
    if kafka {
        launch = launch.with_kafka();
    }
    launch.start().map_err(|e| match e {
        LaunchError::DataDir { .. } => StartError::DataDir(e),
        e => StartError::Start(e),
    })
}

/// `brokerd` next to the running broker-bench (same target directory and profile);
/// else builds it in release mode in this workspace, showing cargo's progress, and
/// returns that one.
pub fn find_brokerd() -> Result<PathBuf, LaunchError> {
    if let Ok(here) = BinDir::of_current_exe() {
        let sibling = here.binary("brokerd");
        if sibling.is_file() {
            return Ok(sibling);
        }
    }
    let release = BinDir::release();
    release.build(&["brokerd"], FeatureSet::Shipped, BuildOutput::Progress)?;
    Ok(release.binary("brokerd"))
}
