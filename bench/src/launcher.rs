//! Starting a private `brokerd` for a run without `--addr`: a fresh data directory, an
//! OS-chosen port on loopback, and the address read from brokerd's first stdout line.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use thiserror::Error;

/// The line brokerd prints first, followed by its address.
pub const LISTENING_PREFIX: &str = "listening on ";

/// A problem starting brokerd.
#[derive(Debug, Error)]
pub enum LaunchError {
    /// No binary found and building one failed.
    #[error("no brokerd binary next to broker-bench and `cargo build --release -p server --bin brokerd` failed ({0}); pass --brokerd PATH or --addr of a running broker")]
    Build(String),
    /// The process would not start.
    #[error("cannot start {path}: {source}")]
    Spawn {
        /// The binary.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It started but did not announce its address.
    #[error("brokerd ({path}) exited or printed {line:?} instead of `listening on <addr>`")]
    NoAddress {
        /// The binary.
        path: PathBuf,
        /// What it printed.
        line: String,
    },
    /// The temporary data directory could not be made.
    #[error("cannot create a data directory under {parent}: {source}")]
    DataDir {
        /// Where.
        parent: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A brokerd started by the benchmark; killed, and its data removed, when dropped.
#[derive(Debug)]
pub struct Brokerd {
    child: Child,
    addr: String,
    data_dir: tempfile::TempDir,
}

impl Brokerd {
    /// Starts `binary` (or the one [`find_brokerd`] finds) with its data in a new
    /// directory under `data_parent` (the system temporary directory if `None`).
    pub fn start(
        binary: Option<&Path>,
        data_parent: Option<&Path>,
    ) -> Result<Brokerd, LaunchError> {
        let path = match binary {
            Some(path) => path.to_path_buf(),
            None => find_brokerd()?,
        };
        let parent = data_parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let data_dir = tempfile::Builder::new()
            .prefix("broker-bench-")
            .tempdir_in(&parent)
            .map_err(|source| LaunchError::DataDir {
                parent: parent.clone(),
                source,
            })?;
        let mut child = Command::new(&path)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| LaunchError::Spawn {
                path: path.clone(),
                source,
            })?;
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            // An error reading leaves `line` empty, reported below.
            let _ = BufReader::new(stdout).read_line(&mut line);
        }
        match line.trim().strip_prefix(LISTENING_PREFIX) {
            Some(addr) if !addr.is_empty() => Ok(Brokerd {
                child,
                addr: addr.to_string(),
                data_dir,
            }),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                Err(LaunchError::NoAddress { path, line })
            }
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Its data directory.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }
}

impl Drop for Brokerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `brokerd` next to the running broker-bench (same target directory and profile);
/// else builds it in release mode in this workspace and returns that one.
pub fn find_brokerd() -> Result<PathBuf, LaunchError> {
    if let Some(dir) = std::env::current_exe()
        .ok()
        .as_deref()
        .and_then(Path::parent)
    {
        let sibling = dir.join("brokerd");
        if sibling.is_file() {
            return Ok(sibling);
        }
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or_else(|| LaunchError::Build("the bench crate has no parent directory".into()))?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "server", "--bin", "brokerd"])
        .current_dir(workspace)
        .status()
        .map_err(|e| LaunchError::Build(e.to_string()))?;
    if !status.success() {
        return Err(LaunchError::Build(format!("cargo exited with {status}")));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), PathBuf::from);
    Ok(target.join("release").join("brokerd"))
}
