//! [`Users`]: the users' SCRAM verifiers, on the internal topic `__users`.
//!
//! Only verifiers are stored (salt, iterations, StoredKey, ServerKey): the broker
//! never sees a password when a user is created over the wire, and a PLAIN login is
//! checked by deriving from the password it carries. Every change is a
//! [`UserEvent`] record, durable before it is acknowledged, replayed at start and
//! compacted like the other internal topics.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use auth::scram::{StoredCredential, MAX_ITERATIONS, MAX_SALT_BYTES, MIN_ITERATIONS};
use protocol::ops::security::{UserCredential, UserEvent, UserInfo, ANONYMOUS, ANY_PRINCIPAL};

use crate::clock::Clock;
use crate::error::BrokerError;
use crate::internal::InternalLog;
use crate::topics::{TopicConfig, Topics};

/// Users at most.
pub const MAX_USERS: usize = 100_000;
/// Shortest salt a stored verifier may have, bytes (RFC 5802 leaves it open; 16 is
/// what clients generate and what NIST asks of PBKDF2 salts).
pub const MIN_SALT_BYTES: usize = 16;

/// The users.
#[derive(Debug)]
pub struct Users {
    log: InternalLog<UserEvent>,
    table: RwLock<BTreeMap<String, UserCredential>>,
}

/// A user's verifier as the wire and `__users` carry it, checked: a valid name, an
/// iteration count and salt in range, keys of SHA-256's size.
pub fn validate(credential: &UserCredential) -> Result<StoredCredential, BrokerError> {
    validate_name(&credential.name)?;
    let invalid =
        |what: String| BrokerError::InvalidRequest(format!("user {:?}: {what}", credential.name));
    if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&credential.iterations) {
        return Err(invalid(format!(
            "iterations must be from {MIN_ITERATIONS} to {MAX_ITERATIONS}, not {}",
            credential.iterations
        )));
    }
    if !(MIN_SALT_BYTES..=MAX_SALT_BYTES).contains(&credential.salt.len()) {
        return Err(invalid(format!(
            "the salt must have {MIN_SALT_BYTES} to {MAX_SALT_BYTES} bytes, not {}",
            credential.salt.len()
        )));
    }
    StoredCredential::from_user_credential(credential).map_err(|e| invalid(e.to_string()))
}

/// A user name: 1 to 255 bytes, no control characters, and not a name with a
/// meaning of its own in ACLs.
pub fn validate_name(name: &str) -> Result<(), BrokerError> {
    if name.is_empty() || name.len() > auth::MAX_USER_NAME_BYTES {
        return Err(BrokerError::InvalidRequest(format!(
            "a user name has 1 to {} bytes",
            auth::MAX_USER_NAME_BYTES
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(BrokerError::InvalidRequest(
            "a user name may not contain control characters".into(),
        ));
    }
    if name == ANONYMOUS || name == ANY_PRINCIPAL {
        return Err(BrokerError::InvalidRequest(format!(
            "{name:?} is reserved: it names {} in ACLs",
            if name == ANONYMOUS {
                "unauthenticated clients"
            } else {
                "every principal"
            }
        )));
    }
    Ok(())
}

impl Users {
    /// Opens (creating if needed) `__users` and replays it (blocking I/O).
    pub fn open(topics: &Arc<Topics>, clock: Arc<dyn Clock>) -> Result<Users, BrokerError> {
        let mut table = BTreeMap::new();
        let log = InternalLog::open(
            topics,
            TopicConfig::internal_default(),
            clock,
            |event, _| apply(&mut table, event),
        )?;
        tracing::info!(users = table.len(), "restored users");
        Ok(Users {
            log,
            table: RwLock::new(table),
        })
    }

    /// The verifier of `name`, if it is a user.
    pub fn credential(&self, name: &str) -> Option<StoredCredential> {
        let table = self.table.read().unwrap_or_else(|p| p.into_inner());
        // Records were validated before they were written; one that no longer
        // validates (a hand-edited log) cannot log in.
        table.get(name).and_then(|c| validate(c).ok())
    }

    /// Creates a user (`create`) or replaces an existing user's verifier; durable on
    /// return.
    pub async fn put(&self, credential: UserCredential, create: bool) -> Result<(), BrokerError> {
        validate(&credential)?;
        let wait = {
            let mut table = self.table.write().unwrap_or_else(|p| p.into_inner());
            let exists = table.contains_key(&credential.name);
            if create && exists {
                return Err(BrokerError::UserExists(credential.name));
            }
            if !create && !exists {
                return Err(BrokerError::UnknownUser(credential.name));
            }
            if create && table.len() >= MAX_USERS {
                return Err(BrokerError::ResourceLimit {
                    what: "users",
                    limit: MAX_USERS as u64,
                });
            }
            let event = UserEvent::Put(credential);
            let wait = self.log.append(std::slice::from_ref(&event))?;
            apply(&mut table, event);
            wait
        };
        self.log.wait_durable(wait).await
    }

    /// Deletes a user; durable on return.
    pub async fn delete(&self, name: &str) -> Result<(), BrokerError> {
        let wait = {
            let mut table = self.table.write().unwrap_or_else(|p| p.into_inner());
            if !table.contains_key(name) {
                return Err(BrokerError::UnknownUser(name.to_string()));
            }
            let event = UserEvent::Deleted {
                name: name.to_string(),
            };
            let wait = self.log.append(std::slice::from_ref(&event))?;
            apply(&mut table, event);
            wait
        };
        self.log.wait_durable(wait).await
    }

    /// Every user, by name, without verifiers.
    pub fn list(&self) -> Vec<UserInfo> {
        let table = self.table.read().unwrap_or_else(|p| p.into_inner());
        table
            .values()
            .map(|c| UserInfo {
                name: c.name.clone(),
                mechanism: auth::scram::MECHANISM.into(),
                iterations: c.iterations,
            })
            .collect()
    }

    /// Compacts `__users` if the policy says so (blocking I/O): every live user is
    /// appended again and what came before is truncated, deleted users' verifiers
    /// with it.
    pub fn compact(&self) -> Result<(), BrokerError> {
        self.compact_if(true)
    }

    /// Compacts by the policy (`by_policy`) or now. The table's read lock is held
    /// throughout, so no change lands between the snapshot and the truncation
    /// (changes append under the write lock).
    fn compact_if(&self, by_policy: bool) -> Result<(), BrokerError> {
        let table = self.table.read().unwrap_or_else(|p| p.into_inner());
        let snapshot = || {
            let events: Vec<UserEvent> = table.values().cloned().map(UserEvent::Put).collect();
            self.log.append(&events).map(|_| ())
        };
        if by_policy {
            self.log.compact(table.len() as u64, snapshot).map(|_| ())
        } else {
            self.log.compact_now(snapshot)
        }
    }

    /// The log underneath (tests).
    #[cfg(test)]
    pub fn log(&self) -> &InternalLog<UserEvent> {
        &self.log
    }
}

fn apply(table: &mut BTreeMap<String, UserCredential>, event: UserEvent) {
    match event {
        UserEvent::Put(credential) => {
            table.insert(credential.name.clone(), credential);
        }
        UserEvent::Deleted { name } => {
            table.remove(&name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    /// A verifier of `password` at the fewest iterations SCRAM allows, so the test
    /// is quick.
    fn user(name: &str, password: &str) -> UserCredential {
        StoredCredential::generate(password, MIN_ITERATIONS, &mut rand::thread_rng())
            .unwrap()
            .to_user_credential(name)
    }

    #[tokio::test]
    async fn a_compacted_log_replays_to_the_same_users_and_deleted_ones_stay_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(1_800_000_000_000));
        let topics = Arc::new(Topics::open_with_clock(dir.path(), clock.clone()).unwrap());
        let users = Users::open(&topics, clock.clone()).unwrap();
        users.put(user("alice", "old"), true).await.unwrap();
        users.put(user("bob", "bob-pw"), true).await.unwrap();
        users.put(user("alice", "new"), false).await.unwrap();
        users.delete("bob").await.unwrap();
        assert_eq!(users.log().records(), 4);
        users.compact_if(false).unwrap();
        assert_eq!(
            users.log().records(),
            1,
            "only alice's latest verifier is left"
        );
        drop(users);

        let reopened = Users::open(&topics, clock).unwrap();
        let names: Vec<String> = reopened.list().into_iter().map(|u| u.name).collect();
        assert_eq!(names, ["alice"]);
        let alice = reopened.credential("alice").unwrap();
        assert!(alice.verify_password("new"));
        assert!(
            !alice.verify_password("old"),
            "the replaced verifier is gone"
        );
        assert!(
            reopened.credential("bob").is_none(),
            "a deleted user stays deleted"
        );
    }
}
