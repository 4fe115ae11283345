//! What the two resource budgets share (`handles.rs`: index write descriptors,
//! `maps.rs`: mapped sealed segments): values kept by key under a budget, stamped by
//! a logical clock when used, and, past the budget, the least recently used eighth of
//! it dropped at once, so that the selection (linear in what is kept) is paid once per
//! many inserts. The first time it drops anything it logs, once, that the budget and
//! not the OS now decides how much is kept.
//!
//! Dropped values are handed back to the caller, to be released outside the lock
//! (closing a descriptor or unmapping is a system call).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// A value kept under a budget: it says when it was last used.
pub(crate) trait Stamped {
    /// The budget's clock at its last use.
    fn last_used(&self) -> u64;
    /// Records a use at `tick`.
    fn touch(&self, tick: u64);
}

/// Values by key under a budget.
#[derive(Debug)]
pub(crate) struct Lru<V> {
    budget: usize,
    /// What is logged the first time the budget drops values.
    told_message: &'static str,
    next_id: AtomicU64,
    clock: AtomicU64,
    state: Mutex<State<V>>,
}

#[derive(Debug)]
struct State<V> {
    kept: HashMap<u64, V>,
    reopened: u64,
    evicted: u64,
    told: bool,
}

/// What a budget holds and has done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LruStats {
    pub(crate) budget: usize,
    pub(crate) kept: usize,
    pub(crate) reopened: u64,
    pub(crate) evicted: u64,
}

impl<V: Stamped + Clone> Lru<V> {
    /// An empty budget of `budget` values (at least 1).
    pub(crate) fn new(budget: usize, told_message: &'static str) -> Lru<V> {
        debug_assert!(budget >= 1, "a budget keeps at least one value");
        Lru {
            budget,
            told_message,
            next_id: AtomicU64::new(0),
            clock: AtomicU64::new(0),
            state: Mutex::new(State {
                kept: HashMap::new(),
                reopened: 0,
                evicted: 0,
                told: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<V>> {
        // A panic under this lock leaves a map of values, still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new key.
    pub(crate) fn register(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The next stamp of the logical clock.
    pub(crate) fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// `id`'s value if kept, stamped as used; `None` (counted as a reopen, which the
    /// caller then makes and [`insert`](Self::insert)s) if not.
    pub(crate) fn get(&self, id: u64) -> Option<V> {
        let mut state = self.lock();
        match state.kept.get(&id) {
            Some(value) => {
                value.touch(self.tick());
                Some(value.clone())
            }
            None => {
                state.reopened += 1;
                None
            }
        }
    }

    /// Counts a reopen made without [`get`](Self::get) (one found by other means).
    pub(crate) fn count_reopen(&self) {
        self.lock().reopened += 1;
    }

    /// Keeps `value` as `id`'s, stamped now; returns what the budget dropped for it.
    #[must_use = "dropped values are to be released outside the lock"]
    pub(crate) fn insert(&self, id: u64, value: V) -> Vec<V> {
        value.touch(self.tick());
        let mut state = self.lock();
        state.kept.insert(id, value);
        if state.kept.len() <= self.budget {
            return Vec::new();
        }
        let budget = self.budget;
        let target = budget - (budget / 8).min(budget - 1);
        let excess = state.kept.len() - target;
        let mut by_use: Vec<(u64, u64)> = state
            .kept
            .iter()
            .map(|(id, value)| (value.last_used(), *id))
            .collect();
        by_use.select_nth_unstable(excess - 1);
        let dropped: Vec<V> = by_use[..excess]
            .iter()
            .filter_map(|(_, id)| state.kept.remove(id))
            .collect();
        state.evicted += dropped.len() as u64;
        if !state.told {
            state.told = true;
            tracing::info!(budget, "{}", self.told_message);
        }
        debug_assert!(
            state.kept.len() <= budget,
            "eviction leaves the budget within it"
        );
        dropped
    }

    /// Stops keeping `id`'s value; returns it, to be released outside the lock.
    pub(crate) fn forget(&self, id: u64) -> Option<V> {
        self.lock().kept.remove(&id)
    }

    /// What the budget holds and has done.
    pub(crate) fn stats(&self) -> LruStats {
        let state = self.lock();
        LruStats {
            budget: self.budget,
            kept: state.kept.len(),
            reopened: state.reopened,
            evicted: state.evicted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Debug, Clone)]
    struct Value(Arc<AtomicU64>);

    impl Stamped for Value {
        fn last_used(&self) -> u64 {
            self.0.load(Ordering::Relaxed)
        }
        fn touch(&self, tick: u64) {
            self.0.store(tick, Ordering::Relaxed);
        }
    }

    fn value() -> Value {
        Value(Arc::new(AtomicU64::new(0)))
    }

    #[test]
    fn past_the_budget_the_least_recently_used_eighth_goes() {
        let lru: Lru<Value> = Lru::new(16, "told");
        let ids: Vec<u64> = (0..17).map(|_| lru.register()).collect();
        for id in &ids[..16] {
            assert!(lru.insert(*id, value()).is_empty());
        }
        // Use the first two again: the next two are now the oldest.
        assert!(lru.get(ids[0]).is_some());
        assert!(lru.get(ids[1]).is_some());
        let dropped = lru.insert(ids[16], value());
        assert_eq!(dropped.len(), 3, "down to 16 - 16/8 = 14");
        assert!(lru.get(ids[0]).is_some() && lru.get(ids[1]).is_some());
        for id in &ids[2..5] {
            assert!(lru.get(*id).is_none(), "the oldest went");
        }
        let stats = lru.stats();
        assert_eq!((stats.kept, stats.evicted, stats.reopened), (14, 3, 3));
        assert!(lru.forget(ids[16]).is_some());
        assert_eq!(lru.stats().kept, 13);
    }

    #[test]
    fn a_budget_of_one_keeps_the_latest() {
        let lru: Lru<Value> = Lru::new(1, "told");
        let (a, b) = (lru.register(), lru.register());
        assert!(lru.insert(a, value()).is_empty());
        assert_eq!(lru.insert(b, value()).len(), 1);
        assert!(lru.get(a).is_none());
        assert!(lru.get(b).is_some());
    }
}
