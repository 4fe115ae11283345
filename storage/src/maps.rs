//! The budget of mapped sealed segments: a sealed segment's maps (its data and two
//! indexes) open when it is first read and close, least recently read first, once
//! more segments than the budget are mapped, so that a broker's memory maps are
//! bounded by configuration rather than by how much data it retains.
//!
//! The budget owns the maps of every sealed segment it counts; a segment keeps only a
//! weak reference and reopens its files (by path, which for a sealed segment always
//! names the files it was sealed into) when that reference has died. A reader holds
//! its own strong reference for as long as it reads, and a zero-copy chunk holds the
//! data map for as long as the chunk lives, so closing never pulls a map from under a
//! reader: the budget is what is kept open *between* reads, and maps in use by readers
//! may add to it for as long as they are in use. The active segment is never counted:
//! its writer holds its maps until it is sealed.
//!
//! Clones share one budget; logs share it through [`LogOptions`](crate::LogOptions).

use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::error::{Error, Result};
use crate::lru::{Lru, Stamped};
use crate::segment::Maps;

/// Budget of the process-wide set that logs opened with default options share.
pub const DEFAULT_MAPPED_SEGMENTS: usize = 4096;

/// What the budget logs the first time it unmaps a segment.
const TOLD: &str = "mapped sealed segments reached their budget: the least recently read are \
                    unmapped and mapped again when next read (raise [storage] mapped_segments \
                    to keep more mapped)";

/// A budget of mapped sealed segments; clones share it.
#[derive(Clone)]
pub struct MappedSegments {
    lru: Arc<Lru<Arc<Maps>>>,
}

impl Stamped for Arc<Maps> {
    fn last_used(&self) -> u64 {
        Maps::last_used(self)
    }

    fn touch(&self, tick: u64) {
        Maps::touch(self, tick);
    }
}

/// What a budget holds and has done, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MappedSegmentStats {
    /// Most sealed segments kept mapped between reads.
    pub budget: usize,
    /// Sealed segments mapped now and counted.
    pub open: usize,
    /// Reads that found their segment closed and mapped it again.
    pub reopened: u64,
    /// Segments closed to stay within the budget.
    pub evicted: u64,
}

impl fmt::Debug for MappedSegments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MappedSegments")
            .field("budget", &self.lru.stats().budget)
            .finish()
    }
}

impl MappedSegments {
    /// A budget of `budget` sealed segments (at least 1).
    pub fn new(budget: usize) -> Result<MappedSegments> {
        if budget == 0 {
            return Err(Error::Config(
                "the mapped segment budget must be at least 1".into(),
            ));
        }
        Ok(Self::with_budget(budget))
    }

    fn with_budget(budget: usize) -> MappedSegments {
        MappedSegments {
            lru: Arc::new(Lru::new(budget, TOLD)),
        }
    }

    /// The process-wide budget ([`DEFAULT_MAPPED_SEGMENTS`]) used by logs opened
    /// without one of their own.
    pub fn shared() -> MappedSegments {
        static SHARED: OnceLock<MappedSegments> = OnceLock::new();
        SHARED
            .get_or_init(|| Self::with_budget(DEFAULT_MAPPED_SEGMENTS))
            .clone()
    }

    /// What the budget holds and has done.
    pub fn stats(&self) -> MappedSegmentStats {
        let stats = self.lru.stats();
        MappedSegmentStats {
            budget: stats.budget,
            open: stats.kept,
            reopened: stats.reopened,
            evicted: stats.evicted,
        }
    }

    /// A new key for one segment.
    pub(crate) fn register(&self) -> u64 {
        self.lru.register()
    }

    /// The next stamp of the logical clock (a read's).
    pub(crate) fn tick(&self) -> u64 {
        self.lru.tick()
    }

    /// Counts `maps` as `id`'s (a segment just sealed, or reopened by a read: then
    /// `reopened`), closing the least recently read past the budget.
    pub(crate) fn insert(&self, id: u64, maps: Arc<Maps>, reopened: bool) {
        if reopened {
            self.lru.count_reopen();
        }
        // Unmapped here, outside the lock (or when the last reader is done).
        drop(self.lru.insert(id, maps));
    }

    /// Stops counting `id` (its segment is gone).
    pub(crate) fn forget(&self, id: u64) {
        drop(self.lru.forget(id));
    }
}
