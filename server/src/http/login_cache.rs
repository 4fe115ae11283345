//! Verified HTTP Basic logins, remembered so that a client sending its password on
//! every request pays PBKDF2 once per [`LoginCache`] lifetime of an entry, not per
//! request.
//!
//! The password itself is never kept: an entry holds an HMAC-SHA-256 of it under a
//! key drawn at random when the process starts (so a memory dump gives nothing to
//! test guesses against offline without that key, and nothing survives a restart),
//! and the verifier's stored key it was checked against. A lookup is a hit only if
//! the user's current verifier still has that stored key: a changed password
//! (AlterUser) or a deleted user (DeleteUser) misses at once, with no hook into the
//! user store. Entries expire after the TTL; the cache holds at most its named
//! number of entries, evicting the oldest when full.
//!
//! Only successes are remembered: a wrong password always costs the full check (and
//! the failure delay), so the cache cannot be used to test guesses faster.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the per-process HMAC key.
const KEY_BYTES: usize = 32;

/// A remembered login.
#[derive(Debug, Clone)]
struct Entry {
    /// HMAC of the password under the process's key.
    password_mac: [u8; 32],
    /// The stored key of the verifier the password was checked against.
    stored_key: [u8; 32],
    verified_at: Instant,
}

/// A bounded, expiring cache of verified logins, keyed by user name.
pub struct LoginCache {
    key: [u8; KEY_BYTES],
    max_entries: usize,
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for LoginCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginCache")
            .field("max_entries", &self.max_entries)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl LoginCache {
    /// An empty cache of at most `max_entries` logins, each trusted for `ttl`.
    pub fn new(max_entries: usize, ttl: Duration) -> LoginCache {
        let mut key = [0u8; KEY_BYTES];
        rand::thread_rng().fill_bytes(&mut key);
        LoginCache {
            key,
            max_entries: max_entries.max(1),
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn mac(&self, password: &str) -> [u8; 32] {
        // HMAC accepts a key of any length; this one is fixed and never fails.
        let mut mac = match HmacSha256::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Whether `user` logged in with `password` within the TTL, against the verifier
    /// whose stored key is `current_stored_key` (the user's verifier now; `None` for
    /// a user that no longer exists, which never hits).
    pub fn check(
        &self,
        user: &str,
        password: &str,
        current_stored_key: Option<&[u8; 32]>,
        now: Instant,
    ) -> bool {
        let Some(current) = current_stored_key else {
            self.forget(user);
            return false;
        };
        let mac = self.mac(password);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = entries.get(user) else {
            return false;
        };
        let fresh = now.saturating_duration_since(entry.verified_at) < self.ttl;
        let same_verifier: bool = entry.stored_key.ct_eq(current).into();
        if !fresh || !same_verifier {
            entries.remove(user);
            return false;
        }
        entry.password_mac.ct_eq(&mac).into()
    }

    /// Remembers that `user` logged in with `password` against the verifier whose
    /// stored key is `stored_key`.
    pub fn remember(&self, user: &str, password: &str, stored_key: &[u8; 32], now: Instant) {
        let entry = Entry {
            password_mac: self.mac(password),
            stored_key: *stored_key,
            verified_at: now,
        };
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.max_entries && !entries.contains_key(user) {
            entries.retain(|_, e| now.saturating_duration_since(e.verified_at) < self.ttl);
            if entries.len() >= self.max_entries {
                // Full of live entries: the oldest goes. A scan, but only after a
                // PBKDF2 derivation, which costs far more.
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, e)| e.verified_at)
                    .map(|(name, _)| name.clone());
                if let Some(oldest) = oldest {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(user.to_string(), entry);
        debug_assert!(entries.len() <= self.max_entries);
    }

    /// Forgets `user`'s login.
    pub fn forget(&self, user: &str) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(user);
    }

    /// Logins remembered now.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no login is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: [u8; 32] = [1; 32];
    const KEY_B: [u8; 32] = [2; 32];

    #[test]
    fn a_remembered_login_hits_only_with_the_same_password() {
        let cache = LoginCache::new(8, Duration::from_secs(60));
        let now = Instant::now();
        assert!(!cache.check("alice", "pw", Some(&KEY_A), now), "empty");
        cache.remember("alice", "pw", &KEY_A, now);
        assert!(cache.check("alice", "pw", Some(&KEY_A), now));
        assert!(!cache.check("alice", "wrong", Some(&KEY_A), now));
        assert!(!cache.check("bob", "pw", Some(&KEY_A), now));
    }

    #[test]
    fn a_changed_or_deleted_credential_misses() {
        let cache = LoginCache::new(8, Duration::from_secs(60));
        let now = Instant::now();
        cache.remember("alice", "pw", &KEY_A, now);
        assert!(
            !cache.check("alice", "pw", Some(&KEY_B), now),
            "password changed"
        );
        assert!(cache.is_empty(), "and the stale entry is gone");
        cache.remember("alice", "pw", &KEY_A, now);
        assert!(!cache.check("alice", "pw", None, now), "user deleted");
        assert!(cache.is_empty());
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let ttl = Duration::from_secs(60);
        let cache = LoginCache::new(8, ttl);
        let now = Instant::now();
        cache.remember("alice", "pw", &KEY_A, now);
        assert!(cache.check(
            "alice",
            "pw",
            Some(&KEY_A),
            now + ttl - Duration::from_millis(1)
        ));
        assert!(!cache.check("alice", "pw", Some(&KEY_A), now + ttl));
    }

    #[test]
    fn the_cache_stays_within_its_bound_evicting_the_oldest() {
        let cache = LoginCache::new(3, Duration::from_secs(60));
        let start = Instant::now();
        for (i, user) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            cache.remember(user, "pw", &KEY_A, start + Duration::from_secs(i as u64));
            assert!(cache.len() <= 3);
        }
        let later = start + Duration::from_secs(10);
        assert!(!cache.check("a", "pw", Some(&KEY_A), later), "evicted");
        assert!(!cache.check("b", "pw", Some(&KEY_A), later), "evicted");
        for user in ["c", "d", "e"] {
            assert!(cache.check(user, "pw", Some(&KEY_A), later), "{user}");
        }
    }

    #[test]
    fn the_password_is_not_kept() {
        let cache = LoginCache::new(8, Duration::from_secs(60));
        cache.remember("alice", "hunter2-secret", &KEY_A, Instant::now());
        let entries = cache.entries.lock().unwrap();
        let entry = &entries["alice"];
        assert_ne!(&entry.password_mac[..14], b"hunter2-secret");
        assert!(!format!("{cache:?}").contains("hunter2"));
    }
}
