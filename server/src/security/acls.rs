//! [`Acls`]: the ACL bindings, on the internal topic `__acls`, and the evaluator built
//! from them.
//!
//! Every change is an [`AclEvent`] record, durable before it is acknowledged, and
//! replayed at start. The evaluator ([`auth::acl::Authorizer`]) is rebuilt on every
//! change and swapped in whole, so a request's check reads one consistent set without
//! holding a lock, and a change applies from every connection's next request on.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

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
    superusers: Vec<String>,
    bindings: RwLock<BTreeSet<AclBinding>>,
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
        let mut bindings = BTreeSet::new();
        let log = InternalLog::open(
            topics,
            TopicConfig::internal_default(),
            clock,
            |event, _| apply(&mut bindings, event),
        )?;
        tracing::info!(acls = bindings.len(), "restored ACLs");
        let current = Arc::new(index(&superusers, &bindings)?);
        Ok(Acls {
            log,
            superusers,
            bindings: RwLock::new(bindings),
            current: RwLock::new(current),
        })
    }

    /// The evaluator of the bindings as they are now.
    pub fn authorizer(&self) -> Arc<Authorizer> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Adds bindings (those that exist change nothing); durable on return.
    pub async fn create(&self, new: Vec<AclBinding>) -> Result<(), BrokerError> {
        for binding in &new {
            validate(binding)?;
        }
        let wait = {
            let mut bindings = self.bindings.write().unwrap_or_else(|p| p.into_inner());
            let events: Vec<AclEvent> = new
                .into_iter()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .filter(|b| !bindings.contains(b))
                .map(AclEvent::Added)
                .collect();
            if bindings.len() + events.len() > MAX_ACLS {
                return Err(BrokerError::ResourceLimit {
                    what: "ACL bindings",
                    limit: MAX_ACLS as u64,
                });
            }
            let wait = self.log.append(&events)?;
            for event in events {
                apply(&mut bindings, event);
            }
            self.rebuild(&bindings)?;
            wait
        };
        self.log.wait_durable(wait).await
    }

    /// Deletes the bindings `filter` selects; durable on return. Returns them, sorted.
    pub async fn delete(&self, filter: &AclFilter) -> Result<Vec<AclBinding>, BrokerError> {
        let (deleted, wait) = {
            let mut bindings = self.bindings.write().unwrap_or_else(|p| p.into_inner());
            let deleted: Vec<AclBinding> = bindings
                .iter()
                .filter(|b| filter.matches(b))
                .cloned()
                .collect();
            let events: Vec<AclEvent> = deleted.iter().cloned().map(AclEvent::Deleted).collect();
            let wait = self.log.append(&events)?;
            for event in events {
                apply(&mut bindings, event);
            }
            self.rebuild(&bindings)?;
            (deleted, wait)
        };
        self.log.wait_durable(wait).await?;
        Ok(deleted)
    }

    /// The bindings `filter` selects, sorted.
    pub fn list(&self, filter: &AclFilter) -> Vec<AclBinding> {
        let bindings = self.bindings.read().unwrap_or_else(|p| p.into_inner());
        bindings
            .iter()
            .filter(|b| filter.matches(b))
            .cloned()
            .collect()
    }

    /// Swaps in the evaluator of `bindings`. Rebuilt whole (at most [`MAX_ACLS`]
    /// bindings, on an administrator's request) so that a check never sees a set
    /// half changed.
    fn rebuild(&self, bindings: &BTreeSet<AclBinding>) -> Result<(), BrokerError> {
        let authorizer = Arc::new(index(&self.superusers, bindings)?);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = authorizer;
        Ok(())
    }

    /// Compacts `__acls` if the policy says so (blocking I/O).
    pub fn compact(&self) -> Result<(), BrokerError> {
        let bindings = self.bindings.read().unwrap_or_else(|p| p.into_inner());
        self.log
            .compact(bindings.len() as u64, || {
                let events: Vec<AclEvent> = bindings.iter().cloned().map(AclEvent::Added).collect();
                self.log.append(&events).map(|_| ())
            })
            .map(|_| ())
    }
}

fn apply(bindings: &mut BTreeSet<AclBinding>, event: AclEvent) {
    match event {
        AclEvent::Added(binding) => {
            bindings.insert(binding);
        }
        AclEvent::Deleted(binding) => {
            bindings.remove(&binding);
        }
    }
}

fn index(
    superusers: &[String],
    bindings: &BTreeSet<AclBinding>,
) -> Result<Authorizer, BrokerError> {
    Authorizer::with_bindings(superusers.iter().cloned(), bindings.iter().cloned())
        .map_err(|e| BrokerError::Internal(format!("indexing the ACLs: {e}")))
}
