//! Kafka-style ACL evaluation: [`Authorizer`] answers "may this principal do this
//! operation on this resource?" from a set of [`AclBinding`]s and a list of superusers.
//!
//! The rules, in order:
//! 1. A superuser may do everything.
//! 2. A matching deny wins over any allow.
//! 3. Otherwise a matching allow allows; no match denies (deny by default).
//!
//! A binding matches when its principal is the caller's or [`ANY_PRINCIPAL`] (which
//! covers [`ANONYMOUS`](protocol::ops::security::ANONYMOUS) too), its resource type is
//! the resource's, its name matches (a literal name exactly, the literal [`ANY_NAME`]
//! every name, a prefix every name that starts with it, the empty prefix every name)
//! and its operation covers the one asked: `All` covers every operation, and an
//! *allow* of Read, Write, Delete or Alter also covers Describe (a deny of them does
//! not deny Describe), as in Kafka.
//!
//! This runs on every request, so bindings are indexed by resource type, principal
//! and name: a check costs a few hash lookups per principal (the caller's and `*`),
//! plus one per distinct length of prefix bindings, never a walk of every binding.
//!
//! ```
//! use auth::acl::{AclBinding, Authorizer, Decision, Operation, PatternType, Permission, ResourceType};
//!
//! let read_orders = AclBinding {
//!     principal: "alice".into(),
//!     resource: ResourceType::Topic,
//!     pattern: PatternType::Prefix,
//!     name: "orders.".into(),
//!     operation: Operation::Read,
//!     permission: Permission::Allow,
//! };
//! let acls = Authorizer::with_bindings(["admin".to_owned()], [read_orders])?;
//! assert_eq!(acls.authorize("alice", ResourceType::Topic, "orders.eu", Operation::Read), Decision::Allowed);
//! // Read implies Describe; nothing allows Write.
//! assert!(acls.authorize("alice", ResourceType::Topic, "orders.eu", Operation::Describe).is_allowed());
//! assert_eq!(acls.authorize("alice", ResourceType::Topic, "orders.eu", Operation::Write), Decision::NoMatchingAcl);
//! assert_eq!(acls.authorize("admin", ResourceType::Cluster, "cluster", Operation::Alter), Decision::Superuser);
//! # Ok::<(), auth::acl::AclError>(())
//! ```

mod index;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};

pub use protocol::ops::security::{
    AclBinding, AclFilter, Operation, PatternType, Permission, ResourceType, ANY_PRINCIPAL,
};
use thiserror::Error;

use index::{NameIndex, Verdict};

/// The literal name that matches every resource name of its type.
pub const ANY_NAME: &str = "*";

/// The most bindings one [`Authorizer`] holds, so that its memory (at most this many
/// times the name limits below) stays bounded whatever an administrator or `__acls`
/// holds.
pub const MAX_BINDINGS: usize = 100_000;

/// The longest principal a binding may name, in bytes (user names are shorter; a
/// certificate's subject may not be).
pub const MAX_PRINCIPAL_BYTES: usize = 1024;

/// The longest resource name or prefix a binding may hold, in bytes.
pub const MAX_ACL_NAME_BYTES: usize = 1024;

/// Why a binding could not be added.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AclError {
    /// The binding's principal is empty or longer than [`MAX_PRINCIPAL_BYTES`].
    #[error("an ACL principal must have 1 to {max} bytes (or be '*' for every principal)")]
    InvalidPrincipal {
        /// The limit.
        max: usize,
    },
    /// The binding's name is longer than [`MAX_ACL_NAME_BYTES`].
    #[error("an ACL resource name or prefix may have at most {max} bytes")]
    NameTooLong {
        /// The limit.
        max: usize,
    },
    /// The authorizer already holds [`MAX_BINDINGS`].
    #[error("too many ACL bindings: the limit is {max}; delete unused ones first")]
    TooManyBindings {
        /// The limit.
        max: usize,
    },
}

/// The answer to one check, with the reason (for logs and `not_authorized` errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The principal is a superuser.
    Superuser,
    /// A matching binding allows it and none denies it.
    Allowed,
    /// A matching binding denies it (whatever allows it).
    DeniedByAcl,
    /// No binding matches: denied by default.
    NoMatchingAcl,
}

impl Decision {
    /// Whether the operation may proceed.
    pub fn is_allowed(self) -> bool {
        matches!(self, Decision::Superuser | Decision::Allowed)
    }
}

/// The ACL bindings and superusers of a broker, indexed for checks. `Clone` so that
/// a holder can change a copy and swap it in whole.
#[derive(Debug, Clone, Default)]
pub struct Authorizer {
    superusers: HashSet<String>,
    /// Resource type, then principal, then name.
    index: HashMap<ResourceType, HashMap<String, NameIndex>>,
    len: usize,
}

impl Authorizer {
    /// An authorizer with these superusers and no bindings (so everyone else is
    /// denied everything).
    pub fn new(superusers: impl IntoIterator<Item = String>) -> Authorizer {
        Authorizer {
            superusers: superusers.into_iter().collect(),
            ..Authorizer::default()
        }
    }

    /// An authorizer with these superusers and bindings.
    pub fn with_bindings(
        superusers: impl IntoIterator<Item = String>,
        bindings: impl IntoIterator<Item = AclBinding>,
    ) -> Result<Authorizer, AclError> {
        let mut authorizer = Authorizer::new(superusers);
        for binding in bindings {
            authorizer.insert(&binding)?;
        }
        Ok(authorizer)
    }

    /// Replaces the superusers (a config reload).
    pub fn set_superusers(&mut self, superusers: impl IntoIterator<Item = String>) {
        self.superusers = superusers.into_iter().collect();
    }

    /// Whether `principal` is a superuser.
    pub fn is_superuser(&self, principal: &str) -> bool {
        self.superusers.contains(principal)
    }

    /// May `principal` do `op` on the resource of type `resource` named `name`?
    pub fn authorize(
        &self,
        principal: &str,
        resource: ResourceType,
        name: &str,
        op: Operation,
    ) -> Decision {
        if self.is_superuser(principal) {
            return Decision::Superuser;
        }
        let Some(by_principal) = self.index.get(&resource) else {
            return Decision::NoMatchingAcl;
        };
        let check = |who: &str| {
            by_principal
                .get(who)
                .map(|names| names.check(name, op))
                .unwrap_or_default()
        };
        let mut verdict: Verdict = check(principal);
        if principal != ANY_PRINCIPAL {
            verdict = verdict.merge(check(ANY_PRINCIPAL));
        }
        match (verdict.denied, verdict.allowed) {
            (true, _) => Decision::DeniedByAcl,
            (false, true) => Decision::Allowed,
            (false, false) => Decision::NoMatchingAcl,
        }
    }

    /// Adds a binding; `Ok(false)` if it was there already (adding is idempotent).
    pub fn insert(&mut self, binding: &AclBinding) -> Result<bool, AclError> {
        if binding.principal.is_empty() || binding.principal.len() > MAX_PRINCIPAL_BYTES {
            return Err(AclError::InvalidPrincipal {
                max: MAX_PRINCIPAL_BYTES,
            });
        }
        if binding.name.len() > MAX_ACL_NAME_BYTES {
            return Err(AclError::NameTooLong {
                max: MAX_ACL_NAME_BYTES,
            });
        }
        if self.len >= MAX_BINDINGS && !self.contains(binding) {
            return Err(AclError::TooManyBindings { max: MAX_BINDINGS });
        }
        let names = self
            .index
            .entry(binding.resource)
            .or_default()
            .entry(binding.principal.clone())
            .or_default();
        let added = names.insert(
            binding.pattern,
            &binding.name,
            binding.operation,
            binding.permission,
        );
        self.len += usize::from(added);
        debug_assert!(self.len <= MAX_BINDINGS);
        Ok(added)
    }

    /// Removes a binding; false if it was not there.
    pub fn remove(&mut self, binding: &AclBinding) -> bool {
        let Some(by_principal) = self.index.get_mut(&binding.resource) else {
            return false;
        };
        let Some(names) = by_principal.get_mut(&binding.principal) else {
            return false;
        };
        let removed = names.remove(
            binding.pattern,
            &binding.name,
            binding.operation,
            binding.permission,
        );
        if names.is_empty() {
            by_principal.remove(&binding.principal);
            if by_principal.is_empty() {
                self.index.remove(&binding.resource);
            }
        }
        self.len -= usize::from(removed);
        removed
    }

    /// Removes every binding `filter` selects and returns them, sorted.
    pub fn remove_matching(&mut self, filter: &AclFilter) -> Vec<AclBinding> {
        let removed = self.list(filter);
        for binding in &removed {
            self.remove(binding);
        }
        removed
    }

    /// Whether this exact binding is held.
    pub fn contains(&self, binding: &AclBinding) -> bool {
        self.index
            .get(&binding.resource)
            .and_then(|by_principal| by_principal.get(&binding.principal))
            .is_some_and(|names| {
                names.contains(
                    binding.pattern,
                    &binding.name,
                    binding.operation,
                    binding.permission,
                )
            })
    }

    /// The bindings `filter` selects, sorted (so listings are stable).
    pub fn list(&self, filter: &AclFilter) -> Vec<AclBinding> {
        let mut out = Vec::new();
        for (&resource, by_principal) in &self.index {
            if filter.resource.is_some_and(|r| r != resource) {
                continue;
            }
            for (principal, names) in by_principal {
                if filter.principal.as_ref().is_some_and(|p| p != principal) {
                    continue;
                }
                let selected = names
                    .bindings()
                    .map(|b| to_binding(resource, principal, b))
                    .filter(|b| filter.matches(b));
                out.extend(selected);
            }
        }
        out.sort();
        out
    }

    /// How many bindings are held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no binding is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

fn to_binding(
    resource: ResourceType,
    principal: &str,
    (pattern, name, operation, permission): (PatternType, &str, Operation, Permission),
) -> AclBinding {
    AclBinding {
        principal: principal.to_owned(),
        resource,
        pattern,
        name: name.to_owned(),
        operation,
        permission,
    }
}
