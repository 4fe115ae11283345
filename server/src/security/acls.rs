//! [`Acls`]: the ACL bindings, on the internal topic `__acls`, held as the evaluator
//! that checks them.
//!
//! Every change is an [`AclEvent`] record, durable before it is acknowledged, and
//! replayed at start. The one in-memory state is an [`auth::acl::Authorizer`]; a
//! change is made to a copy, which is then swapped in whole, so a request's check
//! reads one consistent set without holding a lock across it, and a change applies
//! from every connection's next request on.

use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use auth::acl::Authorizer;
use protocol::ops::security::{AclBinding, AclEvent, AclFilter};

use crate::clock::Clock;
use crate::error::BrokerError;
use crate::internal::InternalLog;
use crate::topics::{TopicConfig, Topics};

/// Bindings at most.
pub const MAX_ACLS: usize = 10_000;

/// The ACL bindings.
#[derive(Debug)]
pub struct Acls {
    log: InternalLog<AclEvent>,
    /// Held by every change from its check to its swap, so that the log's order is
    /// the order of the changes and none is lost to a concurrent one.
    changing: Mutex<()>,
    /// The evaluator of the current bindings; replaced whole on every change.
    current: RwLock<Arc<Authorizer>>,
}

/// Checks one binding before it is stored.
pub fn validate(binding: &AclBinding) -> Result<(), BrokerError> {
    for (what, value, max) in [
        (
            "principal",
            &binding.principal,
            auth::acl::MAX_PRINCIPAL_BYTES,
        ),
        ("name", &binding.name, auth::acl::MAX_ACL_NAME_BYTES),
    ] {
        if value.len() > max || value.chars().any(char::is_control) {
            return Err(BrokerError::InvalidRequest(format!(
                "an ACL's {what} has at most {max} bytes and no control characters"
            )));
        }
    }
    if binding.principal.is_empty() {
        return Err(BrokerError::InvalidRequest(
            "an ACL needs a principal (a user's name, or * for every principal)".into(),
        ));
    }
    if binding.name.is_empty() && binding.pattern == protocol::ops::security::PatternType::Literal {
        return Err(BrokerError::InvalidRequest(
            "a literal ACL needs a resource name (* for every name)".into(),
        ));
    }
    Ok(())
}

impl Acls {
    /// Opens (creating if needed) `__acls` and replays it (blocking I/O). `superusers`
    /// are allowed everything whatever the bindings say.
    pub fn open(
        topics: &Arc<Topics>,
        superusers: Vec<String>,
        clock: Arc<dyn Clock>,
    ) -> Result<Acls, BrokerError> {
        let mut authorizer = Authorizer::new(superusers);
        let log = InternalLog::open(
            topics,
            TopicConfig::internal_default(),
            clock,
            |event, _| {
                // Only a binding the broker would not have written fails (a hand-edited
                // log); like an unreadable record, it is skipped, and the others count.
                if let Err(error) = apply(&mut authorizer, &event) {
                    tracing::warn!(%error, "skipping an ACL record that does not index");
                }
            },
        )?;
        tracing::info!(acls = authorizer.len(), "restored ACLs");
        Ok(Acls {
            log,
            changing: Mutex::new(()),
            current: RwLock::new(Arc::new(authorizer)),
        })
    }

    /// The evaluator of the bindings as they are now.
    pub fn authorizer(&self) -> Arc<Authorizer> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn changing(&self) -> MutexGuard<'_, ()> {
        self.changing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `events` and swaps in `current` with them applied; the offset to wait on.
    fn change(&self, current: &Authorizer, events: &[AclEvent]) -> Result<u64, BrokerError> {
        let mut next = current.clone();
        for event in events {
            apply(&mut next, event)?;
        }
        let wait = self.log.append(events)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
        Ok(wait)
    }

    /// Adds bindings (those that exist change nothing); durable on return.
    pub async fn create(&self, new: Vec<AclBinding>) -> Result<(), BrokerError> {
        for binding in &new {
            validate(binding)?;
        }
        let wait = {
            let _changing = self.changing();
            let current = self.authorizer();
            let mut events: Vec<AclEvent> = new
                .into_iter()
                .filter(|b| !current.contains(b))
                .map(AclEvent::Added)
                .collect();
            events.sort_by(|a, b| a.binding().cmp(b.binding()));
            events.dedup();
            if current.len() + events.len() > MAX_ACLS {
                return Err(BrokerError::ResourceLimit {
                    what: "ACL bindings",
                    limit: MAX_ACLS as u64,
                });
            }
            self.change(&current, &events)?
        };
        self.log.wait_durable(wait).await
    }

    /// Deletes the bindings `filter` selects; durable on return. Returns them, sorted.
    pub async fn delete(&self, filter: &AclFilter) -> Result<Vec<AclBinding>, BrokerError> {
        let (deleted, wait) = {
            let _changing = self.changing();
            let current = self.authorizer();
            let deleted = current.list(filter);
            let events: Vec<AclEvent> = deleted.iter().cloned().map(AclEvent::Deleted).collect();
            (deleted, self.change(&current, &events)?)
        };
        self.log.wait_durable(wait).await?;
        Ok(deleted)
    }

    /// The bindings `filter` selects, sorted.
    pub fn list(&self, filter: &AclFilter) -> Vec<AclBinding> {
        self.authorizer().list(filter)
    }

    /// Compacts `__acls` if the policy says so (blocking I/O): an `Added` record per
    /// live binding, then what came before is truncated.
    pub fn compact(&self) -> Result<(), BrokerError> {
        self.compact_if(true)
    }

    fn compact_if(&self, by_policy: bool) -> Result<(), BrokerError> {
        let _changing = self.changing();
        let current = self.authorizer();
        let snapshot = || {
            let events: Vec<AclEvent> = current
                .list(&AclFilter::default())
                .into_iter()
                .map(AclEvent::Added)
                .collect();
            self.log.append(&events).map(|_| ())
        };
        if by_policy {
            self.log.compact(current.len() as u64, snapshot).map(|_| ())
        } else {
            self.log.compact_now(snapshot)
        }
    }
}

fn apply(authorizer: &mut Authorizer, event: &AclEvent) -> Result<(), BrokerError> {
    match event {
        AclEvent::Added(binding) => {
            authorizer
                .insert(binding)
                .map_err(|e| BrokerError::Internal(format!("indexing the ACLs: {e}")))?;
        }
        AclEvent::Deleted(binding) => {
            authorizer.remove(binding);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use protocol::ops::security::{Operation, PatternType, Permission, ResourceType};

    use super::*;
    use crate::clock::ManualClock;

    fn binding(principal: &str, name: &str) -> AclBinding {
        AclBinding {
            principal: principal.into(),
            resource: ResourceType::Topic,
            pattern: PatternType::Literal,
            name: name.into(),
            operation: Operation::Read,
            permission: Permission::Allow,
        }
    }

    #[tokio::test]
    async fn a_compacted_log_replays_to_the_same_bindings_and_deletes_stay_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(1_800_000_000_000));
        let topics = Arc::new(Topics::open_with_clock(dir.path(), clock.clone()).unwrap());
        let acls = Acls::open(&topics, vec![], clock.clone()).unwrap();
        acls.create(vec![
            binding("a", "t1"),
            binding("b", "t2"),
            binding("a", "t1"),
        ])
        .await
        .unwrap();
        let deleted = acls
            .delete(&AclFilter {
                principal: Some("b".into()),
                ..AclFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(deleted, vec![binding("b", "t2")]);
        acls.compact_if(false).unwrap();
        assert_eq!(acls.log.records(), 1, "only the live binding is left");
        drop(acls);

        let reopened = Acls::open(&topics, vec![], clock).unwrap();
        assert_eq!(
            reopened.list(&AclFilter::default()),
            vec![binding("a", "t1")]
        );
        let check = reopened.authorizer();
        assert!(check
            .authorize("a", ResourceType::Topic, "t1", Operation::Read)
            .is_allowed());
        assert!(!check
            .authorize("b", ResourceType::Topic, "t2", Operation::Read)
            .is_allowed());
    }
}
