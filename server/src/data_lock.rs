//! The data directory's lock: one brokerd per `--data-dir`, taken before anything in
//! it is read, recovered or written.
//!
//! A second broker on a live directory would run crash recovery on the first one's
//! active segments (cutting what it takes for torn tails, dropping its disk
//! reservations) before it noticed anything. So `brokerd` takes an exclusive `flock`
//! on `<data>/LOCK` first and refuses to start, naming the holder's pid, when another
//! process holds it. The kernel drops the lock when the holder exits, however it
//! exits (kill -9 included), so a crashed broker never leaves a stale lock behind;
//! the file itself stays (deleting it would let two brokers lock two different
//! files of the same name).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "LOCK";

/// The longest holder record read back from a lock file (a pid and a newline).
const MAX_HOLDER_BYTES: u64 = 64;

/// Why the data directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock.
    #[error(
        "the data directory {} is in use by another brokerd{}; stop it, or give this one \
         another --data-dir",
        dir.display(),
        holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
    )]
    Held {
        /// The data directory.
        dir: PathBuf,
        /// The holder's pid, as it wrote it, if it could be read.
        holder: Option<u32>,
    },
    /// The directory or its lock file could not be created, opened or locked.
    #[error("cannot lock the data directory {}: {what}: {source}", dir.display())]
    Io {
        /// The data directory.
        dir: PathBuf,
        /// The step that failed.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
}

/// The held lock; dropping it (or exiting) releases it.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Creates `dir` if needed and takes its lock without waiting, recording this
    /// process's pid in it.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, LockError> {
        let io = |what: &'static str| {
            move |source| LockError::Io {
                dir: dir.to_path_buf(),
                what,
                source,
            }
        };
        std::fs::create_dir_all(dir).map_err(io("creating it"))?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))
            .map_err(io("opening LOCK"))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    dir: dir.to_path_buf(),
                    holder: read_holder(&mut file),
                })
            }
            Err(TryLockError::Error(source)) => return Err(io("locking LOCK")(source)),
        }
        // Ours now: say who holds it, for the message a second broker prints.
        file.set_len(0).map_err(io("writing LOCK"))?;
        file.seek(SeekFrom::Start(0)).map_err(io("writing LOCK"))?;
        writeln!(file, "{}", std::process::id()).map_err(io("writing LOCK"))?;
        Ok(DataDirLock { _file: file })
    }
}

/// The pid recorded in a lock file someone else holds, if it reads as one.
fn read_holder(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.take(MAX_HOLDER_BYTES).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let held = DataDirLock::acquire(&data).unwrap();
        match DataDirLock::acquire(&data) {
            Err(LockError::Held { holder, .. }) => {
                assert_eq!(holder, Some(std::process::id()))
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        drop(held);
        let again = DataDirLock::acquire(&data);
        assert!(again.is_ok(), "released on drop: {again:?}");
    }

    #[test]
    fn the_message_names_the_directory_and_the_pid() {
        let error = LockError::Held {
            dir: PathBuf::from("/srv/broker"),
            holder: Some(4242),
        };
        let text = error.to_string();
        assert!(
            text.contains("/srv/broker") && text.contains("pid 4242"),
            "{text}"
        );
    }
}
