//! Write handles of active index files: opened on demand, closed least recently used
//! past a budget, so that a broker's descriptors are bounded by configuration rather
//! than by its partitions.
//!
//! Readers never need a descriptor (they read through the maps), and a sealed index
//! is never written again, so only the active segment's two indexes are ever written:
//! a batch of entries every [`INDEX_FLUSH_ENTRIES`](crate::index::INDEX_FLUSH_ENTRIES)
//! entries, a reservation now and then, and the seal. Each asks this cache for its
//! file. While the active indexes of every log fit the budget, nothing is ever
//! reopened; past it, the least recently used handles are closed and reopened by path
//! on their next write (one `openat`, against the `pwrite` of dozens of entries).
//!
//! The cache is shared by logs through [`LogOptions`](crate::LogOptions): clones share
//! one budget. Reopening by path is only right while the path still names the file the
//! index maps; an index whose files a repair replaced pins its own descriptor instead
//! (`index.rs`), and never asks the cache again.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::error::{Error, Result};
use crate::lru::{Lru, Stamped};
use crate::vfs::{Vfs, VfsFile};

/// Fewest handles a budget may allow: the two indexes of one log.
pub const MIN_INDEX_HANDLES: usize = 2;

/// Budget of the process-wide cache that logs opened with default options share.
pub const DEFAULT_INDEX_HANDLES: usize = 1024;

/// What the budget logs the first time it closes a handle.
const TOLD: &str = "index write handles reached their budget: the least recently used are \
                    closed and reopened on their next write (raise [storage] index_handles \
                    to keep more open)";

/// A cache of index write handles under a budget; clones share it.
#[derive(Clone)]
pub struct IndexHandles {
    lru: Arc<Lru<Arc<Handle>>>,
}

/// One open index file and its last use.
#[derive(Debug)]
struct Handle {
    file: Arc<dyn VfsFile>,
    last_used: AtomicU64,
}

impl Stamped for Arc<Handle> {
    fn last_used(&self) -> u64 {
        self.last_used.load(Ordering::Relaxed)
    }

    fn touch(&self, tick: u64) {
        self.last_used.store(tick, Ordering::Relaxed);
    }
}

/// What a cache holds and has done, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexHandleStats {
    /// Most handles kept open.
    pub budget: usize,
    /// Handles open now.
    pub open: usize,
    /// Writes that found their handle closed and opened the file again.
    pub reopened: u64,
    /// Handles closed to stay within the budget.
    pub evicted: u64,
}

impl fmt::Debug for IndexHandles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IndexHandles")
            .field("budget", &self.lru.stats().budget)
            .finish()
    }
}

impl IndexHandles {
    /// A cache keeping at most `budget` handles open (at least
    /// [`MIN_INDEX_HANDLES`]).
    pub fn new(budget: usize) -> Result<IndexHandles> {
        if budget < MIN_INDEX_HANDLES {
            return Err(Error::Config(format!(
                "the index handle budget must be at least {MIN_INDEX_HANDLES}, not {budget}"
            )));
        }
        Ok(Self::with_budget(budget))
    }

    fn with_budget(budget: usize) -> IndexHandles {
        IndexHandles {
            lru: Arc::new(Lru::new(budget, TOLD)),
        }
    }

    /// The process-wide cache ([`DEFAULT_INDEX_HANDLES`]) used by logs opened without
    /// one of their own.
    pub fn shared() -> IndexHandles {
        static SHARED: OnceLock<IndexHandles> = OnceLock::new();
        SHARED
            .get_or_init(|| Self::with_budget(DEFAULT_INDEX_HANDLES))
            .clone()
    }

    /// What the cache holds and has done.
    pub fn stats(&self) -> IndexHandleStats {
        let stats = self.lru.stats();
        IndexHandleStats {
            budget: stats.budget,
            open: stats.kept,
            reopened: stats.reopened,
            evicted: stats.evicted,
        }
    }

    /// A new key for one index file's handle.
    pub(crate) fn register(&self) -> u64 {
        self.lru.register()
    }

    /// The handle for `id`, opening `path` if it was closed. The file is opened
    /// outside the lock, so that logs reopening at once do not wait on each other.
    pub(crate) fn get(&self, id: u64, vfs: &dyn Vfs, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        if let Some(handle) = self.lru.get(id) {
            return Ok(handle.file.clone());
        }
        let file = vfs.open(path)?;
        self.insert(id, file.clone());
        Ok(file)
    }

    /// Keeps `file` open as `id`'s handle (a file just created), closing the least
    /// recently used handles if that passes the budget.
    pub(crate) fn insert(&self, id: u64, file: Arc<dyn VfsFile>) {
        let handle = Arc::new(Handle {
            file,
            last_used: AtomicU64::new(0),
        });
        // The descriptors close here, outside the lock (or later, when a write still
        // using one finishes with it).
        drop(self.lru.insert(id, handle));
    }

    /// Closes `id`'s handle, if open (its index was sealed, pinned or dropped).
    pub(crate) fn forget(&self, id: u64) {
        drop(self.lru.forget(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::RealVfs;

    fn files(dir: &Path, n: usize) -> Vec<std::path::PathBuf> {
        (0..n)
            .map(|i| {
                let path = dir.join(format!("f{i}"));
                std::fs::write(&path, b"x").unwrap();
                path
            })
            .collect()
    }

    #[test]
    fn handles_stay_within_the_budget_and_reopen_on_demand() {
        let dir = tempfile::tempdir().unwrap();
        let paths = files(dir.path(), 40);
        let cache = IndexHandles::new(16).unwrap();
        let ids: Vec<u64> = paths.iter().map(|_| cache.register()).collect();
        for round in 0..3 {
            for (id, path) in ids.iter().zip(&paths) {
                let file = cache.get(*id, &RealVfs, path).unwrap();
                file.write_all_at(&[round], 0).unwrap();
                assert!(cache.stats().open <= 16);
            }
        }
        let stats = cache.stats();
        assert_eq!(stats.budget, 16);
        assert!(stats.evicted > 0);
        // Cycling through 40 files with room for 16 opens every file every round.
        assert_eq!(stats.reopened, 120);
        for path in &paths {
            assert_eq!(std::fs::read(path).unwrap(), [2]);
        }
    }

    #[test]
    fn the_most_recently_used_handles_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let paths = files(dir.path(), 9);
        let cache = IndexHandles::new(8).unwrap();
        let ids: Vec<u64> = paths.iter().map(|_| cache.register()).collect();
        for (id, path) in ids.iter().zip(&paths).take(8) {
            cache.get(*id, &RealVfs, path).unwrap();
        }
        // Touch the first: the second is now the least recently used.
        cache.get(ids[0], &RealVfs, &paths[0]).unwrap();
        cache.get(ids[8], &RealVfs, &paths[8]).unwrap();
        let before = cache.stats().reopened;
        cache.get(ids[0], &RealVfs, &paths[0]).unwrap();
        assert_eq!(cache.stats().reopened, before, "the first stayed open");
        cache.get(ids[1], &RealVfs, &paths[1]).unwrap();
        assert_eq!(cache.stats().reopened, before + 1, "the second was closed");
    }

    #[test]
    fn forgotten_handles_close_and_budgets_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let paths = files(dir.path(), 2);
        let cache = IndexHandles::new(4).unwrap();
        let id = cache.register();
        cache.get(id, &RealVfs, &paths[0]).unwrap();
        assert_eq!(cache.stats().open, 1);
        cache.forget(id);
        assert_eq!(cache.stats().open, 0);
        assert!(IndexHandles::new(1).is_err());
        let missing = cache.get(cache.register(), &RealVfs, &dir.path().join("none"));
        assert_eq!(missing.unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
