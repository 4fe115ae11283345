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

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::error::{Error, Result};
use crate::vfs::{Vfs, VfsFile};

/// Fewest handles a budget may allow: the two indexes of one log.
pub const MIN_INDEX_HANDLES: usize = 2;

/// Budget of the process-wide cache that logs opened with default options share.
pub const DEFAULT_INDEX_HANDLES: usize = 1024;

/// A cache of index write handles under a budget; clones share it.
#[derive(Clone)]
pub struct IndexHandles {
    inner: Arc<Inner>,
}

struct Inner {
    budget: usize,
    next_id: AtomicU64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Bumped on every use; a handle's last use orders eviction.
    tick: u64,
    open: HashMap<u64, (u64, Arc<dyn VfsFile>)>,
    reopened: u64,
    evicted: u64,
    /// The first eviction is logged, once: it is when the budget, not the OS, starts
    /// to decide how many descriptors the broker holds.
    told: bool,
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
            .field("budget", &self.inner.budget)
            .finish()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic under this lock leaves a map of open files, still consistent.
    state.lock().unwrap_or_else(|p| p.into_inner())
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
        Ok(IndexHandles {
            inner: Arc::new(Inner {
                budget,
                next_id: AtomicU64::new(0),
                state: Mutex::new(State::default()),
            }),
        })
    }

    /// The process-wide cache ([`DEFAULT_INDEX_HANDLES`]) used by logs opened without
    /// one of their own.
    pub fn shared() -> IndexHandles {
        static SHARED: OnceLock<IndexHandles> = OnceLock::new();
        SHARED
            .get_or_init(|| IndexHandles {
                inner: Arc::new(Inner {
                    budget: DEFAULT_INDEX_HANDLES,
                    next_id: AtomicU64::new(0),
                    state: Mutex::new(State::default()),
                }),
            })
            .clone()
    }

    /// What the cache holds and has done.
    pub fn stats(&self) -> IndexHandleStats {
        let state = lock(&self.inner.state);
        IndexHandleStats {
            budget: self.inner.budget,
            open: state.open.len(),
            reopened: state.reopened,
            evicted: state.evicted,
        }
    }

    /// A new key for one index file's handle.
    pub(crate) fn register(&self) -> u64 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The handle for `id`, opening `path` if it was closed. The file is opened
    /// outside the lock, so that logs reopening at once do not wait on each other.
    pub(crate) fn get(&self, id: u64, vfs: &dyn Vfs, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        {
            let mut state = lock(&self.inner.state);
            state.tick += 1;
            let tick = state.tick;
            if let Some((used, file)) = state.open.get_mut(&id) {
                *used = tick;
                return Ok(file.clone());
            }
            state.reopened += 1;
        }
        let file = vfs.open(path)?;
        self.insert(id, file.clone());
        Ok(file)
    }

    /// Keeps `file` open as `id`'s handle (a file just created), closing the least
    /// recently used handles if that passes the budget.
    pub(crate) fn insert(&self, id: u64, file: Arc<dyn VfsFile>) {
        let closed = {
            let mut state = lock(&self.inner.state);
            state.tick += 1;
            let tick = state.tick;
            state.open.insert(id, (tick, file));
            self.evict(&mut state)
        };
        // The descriptors close here, outside the lock (or later, when a write still
        // using one finishes with it).
        drop(closed);
    }

    /// Closes `id`'s handle, if open (its index was sealed, pinned or dropped).
    pub(crate) fn forget(&self, id: u64) {
        let closed = lock(&self.inner.state).open.remove(&id);
        drop(closed);
    }

    /// Past the budget, closes the least recently used eighth of it at once, so that
    /// the selection (linear in the handles open) is paid once per many inserts.
    fn evict(&self, state: &mut State) -> Vec<Arc<dyn VfsFile>> {
        let budget = self.inner.budget;
        if state.open.len() <= budget {
            return Vec::new();
        }
        let target = budget - (budget / 8).max(1).min(budget - 1);
        let excess = state.open.len() - target;
        let mut by_use: Vec<(u64, u64)> = state.open.iter().map(|(id, (t, _))| (*t, *id)).collect();
        by_use.select_nth_unstable(excess - 1);
        let closed: Vec<Arc<dyn VfsFile>> = by_use[..excess]
            .iter()
            .filter_map(|(_, id)| state.open.remove(id).map(|(_, file)| file))
            .collect();
        state.evicted += closed.len() as u64;
        if !state.told {
            state.told = true;
            tracing::info!(
                budget,
                "index write handles reached their budget: the least recently used are \
                 closed and reopened on their next write (raise [storage] index_handles \
                 to keep more open)"
            );
        }
        debug_assert!(
            state.open.len() <= budget,
            "eviction leaves the cache within its budget"
        );
        closed
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
