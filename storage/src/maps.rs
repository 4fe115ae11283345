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

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::error::{Error, Result};
use crate::segment::Maps;

/// Budget of the process-wide set that logs opened with default options share.
pub const DEFAULT_MAPPED_SEGMENTS: usize = 4096;

/// A budget of mapped sealed segments; clones share it.
#[derive(Clone)]
pub struct MappedSegments {
    inner: Arc<Inner>,
}

struct Inner {
    budget: usize,
    next_id: AtomicU64,
    /// A logical clock: each read of a sealed segment stamps its maps with the next
    /// value, and eviction closes the lowest stamps.
    clock: AtomicU64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    open: HashMap<u64, Arc<Maps>>,
    reopened: u64,
    evicted: u64,
    /// The first eviction is logged, once.
    told: bool,
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
            .field("budget", &self.inner.budget)
            .finish()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic under this lock leaves a map of maps, still consistent.
    state.lock().unwrap_or_else(|p| p.into_inner())
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
            inner: Arc::new(Inner {
                budget,
                next_id: AtomicU64::new(0),
                clock: AtomicU64::new(0),
                state: Mutex::new(State::default()),
            }),
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
        let state = lock(&self.inner.state);
        MappedSegmentStats {
            budget: self.inner.budget,
            open: state.open.len(),
            reopened: state.reopened,
            evicted: state.evicted,
        }
    }

    /// A new key for one segment.
    pub(crate) fn register(&self) -> u64 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The next stamp of the logical clock (a read's).
    pub(crate) fn tick(&self) -> u64 {
        self.inner.clock.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Counts `maps` as `id`'s (a segment just sealed, or reopened by a read: then
    /// `reopened`), closing the least recently read past the budget.
    pub(crate) fn insert(&self, id: u64, maps: Arc<Maps>, reopened: bool) {
        maps.touch(self.tick());
        let closed = {
            let mut state = lock(&self.inner.state);
            if reopened {
                state.reopened += 1;
            }
            state.open.insert(id, maps);
            self.evict(&mut state)
        };
        // Unmapped here, outside the lock (or when the last reader is done).
        drop(closed);
    }

    /// Stops counting `id` (its segment is gone).
    pub(crate) fn forget(&self, id: u64) {
        let closed = lock(&self.inner.state).open.remove(&id);
        drop(closed);
    }

    /// Past the budget, closes the least recently read eighth of it at once, so that
    /// the selection (linear in the segments mapped) is paid once per many inserts.
    fn evict(&self, state: &mut State) -> Vec<Arc<Maps>> {
        let budget = self.inner.budget;
        if state.open.len() <= budget {
            return Vec::new();
        }
        let target = budget - (budget / 8).min(budget - 1);
        let excess = state.open.len() - target;
        let mut by_use: Vec<(u64, u64)> = state
            .open
            .iter()
            .map(|(id, maps)| (maps.last_used(), *id))
            .collect();
        by_use.select_nth_unstable(excess - 1);
        let closed: Vec<Arc<Maps>> = by_use[..excess]
            .iter()
            .filter_map(|(_, id)| state.open.remove(id))
            .collect();
        state.evicted += closed.len() as u64;
        if !state.told {
            state.told = true;
            tracing::info!(
                budget,
                "mapped sealed segments reached their budget: the least recently read are \
                 unmapped and mapped again when next read (raise [storage] mapped_segments \
                 to keep more mapped)"
            );
        }
        debug_assert!(
            state.open.len() <= budget,
            "eviction leaves the budget's count within it"
        );
        closed
    }
}
