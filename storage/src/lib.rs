//! The broker's storage: an append-only, segmented, memory-mapped log of record
//! batches, one per partition and per internal topic.
//!
//! This crate owns everything on disk: segment files and their sparse offset and time
//! indexes, durability (group-committed `fdatasync` and the persisted durable
//! watermark), crash recovery, corruption detection and retention. The byte layout is
//! specified in `docs/storage.md`; the batch layout itself is `protocol::batch`, shared
//! with the wire so the bytes a producer sends are the bytes on disk and the bytes a
//! consumer receives.
//!
//! It must never do network I/O, never hand out a batch that failed its CRC, never
//! report an append durable that is not, and never silently drop data below the
//! durable watermark.
//!
//! Entry points: [`Log`] (the single writer), [`LogReader`] (concurrent zero-copy
//! reads), [`LogConfig`] and [`Durability`].

#![warn(missing_docs)]
// Production code must not unwrap data it did not create; tests may.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod config;
mod error;
pub mod format;
mod handles;
mod index;
mod log;
mod lru;
mod maps;
pub mod producers;
mod recovery;
mod segment;
pub mod sim;
mod sync;
pub mod vfs;
mod workers;
mod zero;

pub use config::{
    Clock, Durability, LogConfig, ManualClock, SystemClock, DEFAULT_INDEX_INTERVAL_BYTES,
    DEFAULT_PREALLOCATE_BYTES, DEFAULT_SEGMENT_BYTES, MAX_SEGMENT_BYTES, MIN_SEGMENT_BYTES,
};
pub use error::{Error, Result};
pub use handles::{IndexHandleStats, IndexHandles, DEFAULT_INDEX_HANDLES, MIN_INDEX_HANDLES};
pub use log::{AppendInfo, Log, LogOptions, LogReader, RetentionOutcome, MAX_BATCHES_PER_WRITE};
pub use maps::{MappedSegmentStats, MappedSegments, DEFAULT_MAPPED_SEGMENTS};
pub use producers::{ProducerEntry, ProducerTag};
pub use recovery::RecoveryReport;
pub use segment::ReadChunk;
pub use sync::{DurableMark, SyncObserver, SyncRound};
pub use workers::{default_sync_workers, SyncWorkers, MAX_SYNC_WORKERS};
