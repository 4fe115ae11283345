//! The log's error type.

use std::io;
use std::path::PathBuf;

use protocol::batch::BatchError;
use thiserror::Error;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the log. Variants carry the file and position
/// they concern so that an operator can act on the message.
#[derive(Debug, Error)]
pub enum Error {
    /// An I/O call failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The disk is full; nothing was written. Free space or delete old data and retry.
    #[error("no space left on device while {op} {}", path.display())]
    NoSpace {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// The batch handed to `append` is malformed or fails its CRC.
    #[error("invalid batch: {0}")]
    InvalidBatch(#[from] BatchError),
    /// The batch is larger than the log's `max_batch_bytes`.
    #[error("batch of {len} bytes exceeds the limit of {max} bytes")]
    BatchTooLarge {
        /// Bytes in the batch.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// Data on disk failed its checks. Never handed to readers as valid data.
    #[error("corrupt data in {} at byte {position}: {reason}", path.display())]
    Corrupt {
        /// The segment or index file.
        path: PathBuf,
        /// Byte position of the damaged batch or entry.
        position: u64,
        /// What is wrong.
        reason: String,
    },
    /// Data that the log had reported durable is not on disk any more.
    #[error("the log was durable up to offset {durable_offset} but only {recovered_end} offsets survive in {}; the disk lost acknowledged data", dir.display())]
    DurableDataMissing {
        /// The persisted durable watermark.
        durable_offset: u64,
        /// The end of what was recovered.
        recovered_end: u64,
        /// The log directory.
        dir: PathBuf,
    },
    /// The requested offset is outside the log.
    #[error("offset {requested} is out of range: the log holds offsets {start}..{end}")]
    OffsetOutOfRange {
        /// The offset asked for.
        requested: u64,
        /// First offset held.
        start: u64,
        /// One past the last offset held.
        end: u64,
    },
    /// A write or sync failed earlier; the log refuses appends until it is reopened,
    /// because a failed fsync may have dropped data that a retry would report durable.
    #[error("log is failed after an earlier I/O error ({reason}); reopen it to recover")]
    Failed {
        /// The first error.
        reason: String,
    },
    /// The configuration is invalid.
    #[error("invalid log configuration: {0}")]
    Config(String),
    /// The log was closed.
    #[error("log is closed")]
    Closed,
}

impl Error {
    /// Wraps an I/O error, classifying a full disk as [`Error::NoSpace`].
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        let path = path.into();
        if source.raw_os_error() == Some(libc::ENOSPC) {
            Error::NoSpace { op, path }
        } else {
            Error::Io { op, path, source }
        }
    }
}
