//! Who a connection is, and what it may do: authentication (SASL SCRAM-SHA-256 and
//! PLAIN, or a verified client certificate), the users' verifiers on `__users`, the
//! ACLs on `__acls`, and the one authorization check every listener makes.
//!
//! The mechanisms themselves are the `auth` crate's (sans-IO, RustCrypto underneath);
//! this module keeps the broker's state and policy: which mechanisms are on, who is a
//! superuser, whether anonymous clients are admitted, how failures are slowed down.
//! It never logs a password, a proof or a key, and never stores a password.

pub mod acls;
pub mod authorize;
pub mod failures;
pub mod login;
pub mod users;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth::scram::{ScramServer, StoredCredential};
use protocol::ops::security::ANONYMOUS;
use protocol::Request;

use crate::clock::Clock;
use crate::config::ServerConfig;
use crate::error::BrokerError;
use crate::topics::Topics;
use acls::Acls;
use failures::Failures;
use users::Users;

/// The SASL mechanisms this broker can offer (`[security] mechanisms` picks).
pub const MECHANISMS: &[&str] = &[auth::scram::MECHANISM, auth::plain::MECHANISM];

/// How a principal was established (WhoAmI's `authenticated_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthenticatedBy {
    /// SASL SCRAM-SHA-256.
    Scram,
    /// SASL PLAIN, over TLS.
    Plain,
    /// A verified TLS client certificate.
    Certificate,
    /// Not at all: anonymous, or authentication is off.
    Nothing,
}

impl AuthenticatedBy {
    /// The name WhoAmI answers.
    pub fn name(self) -> &'static str {
        match self {
            AuthenticatedBy::Scram => auth::scram::MECHANISM,
            AuthenticatedBy::Plain => auth::plain::MECHANISM,
            AuthenticatedBy::Certificate => "TLS",
            AuthenticatedBy::Nothing => "NONE",
        }
    }
}

/// Who a connection acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The name ACLs are checked for.
    pub name: Arc<str>,
    /// How it was established.
    pub by: AuthenticatedBy,
}

impl Principal {
    /// The principal of a connection that did not authenticate.
    pub fn anonymous() -> Principal {
        Principal {
            name: Arc::from(ANONYMOUS),
            by: AuthenticatedBy::Nothing,
        }
    }
}

/// The broker's security state and policy.
pub struct Security {
    enabled: bool,
    allow_anonymous: bool,
    mechanisms: Vec<String>,
    failure_delay: Duration,
    authentication_timeout: Duration,
    /// The users' verifiers.
    pub users: Users,
    /// The ACL bindings.
    pub acls: Acls,
    scram: ScramServer,
    /// What a PLAIN login of an unknown user is checked against, so it costs what a
    /// known user's does.
    plain_decoy: StoredCredential,
    failures: Mutex<Failures>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("enabled", &self.enabled)
            .field("mechanisms", &self.mechanisms)
            .finish_non_exhaustive()
    }
}

impl Security {
    /// Opens `__users` and `__acls` (blocking I/O) with the policy of `config`.
    pub fn open(
        config: &ServerConfig,
        topics: &Arc<Topics>,
        clock: Arc<dyn Clock>,
    ) -> Result<Security, BrokerError> {
        let settings = &config.security;
        let users = Users::open(topics, clock.clone())?;
        let acls = Acls::open(topics, settings.superusers.clone(), clock.clone())?;
        Ok(Security {
            enabled: config.authentication_enabled(),
            allow_anonymous: settings.allow_anonymous,
            mechanisms: settings.mechanisms.clone(),
            failure_delay: Duration::from_millis(settings.failure_delay_ms),
            authentication_timeout: Duration::from_millis(settings.authentication_timeout_ms),
            users,
            acls,
            scram: ScramServer::new(&mut rand::thread_rng()),
            plain_decoy: decoy()?,
            failures: Mutex::new(Failures::new(settings.max_failures_per_minute)),
            clock,
        })
    }

    /// Whether connections must authenticate and requests pass the ACLs.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The principal of a connection that has not run an Authenticate exchange (or
    /// `None`: it must, before anything else). `certificate` is what its verified TLS
    /// client certificate names.
    pub fn initial_principal(&self, certificate: Option<Arc<str>>) -> Option<Principal> {
        if !self.enabled {
            return Some(Principal::anonymous());
        }
        if let Some(name) = certificate {
            return Some(Principal {
                name,
                by: AuthenticatedBy::Certificate,
            });
        }
        self.allow_anonymous.then(Principal::anonymous)
    }

    /// How long a connection may take to open and authenticate.
    pub fn authentication_timeout(&self) -> Duration {
        self.authentication_timeout
    }

    /// How long a failed authentication waits before its answer.
    pub fn failure_delay(&self) -> Duration {
        self.failure_delay
    }

    /// Whether `mechanism` is offered.
    pub fn offers(&self, mechanism: &str) -> bool {
        self.mechanisms.iter().any(|m| m == mechanism)
    }

    /// The SCRAM server (its unknown-user secret is per process).
    pub fn scram(&self) -> &ScramServer {
        &self.scram
    }

    /// The credential PLAIN logins of unknown users are checked against.
    pub fn plain_decoy(&self) -> &StoredCredential {
        &self.plain_decoy
    }

    /// Whether `address` has failed too often in the last minute.
    pub fn blocked(&self, address: IpAddr) -> bool {
        let now = self.clock.monotonic_ms();
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .blocked(address, now)
    }

    /// Counts a failed authentication of `address`.
    pub fn failed(&self, address: IpAddr) {
        let now = self.clock.monotonic_ms();
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(address, now);
    }

    /// The one authorization check: whether `principal` may make `request`. Free when
    /// authentication is off.
    pub fn authorize(
        &self,
        principal: &Principal,
        request: &Request,
        route_pattern: impl FnOnce(u64) -> Option<String>,
    ) -> Result<(), BrokerError> {
        if !self.enabled {
            return Ok(());
        }
        let needs = authorize::needs(request, route_pattern);
        authorize::check(&self.acls.authorizer(), &principal.name, &needs)
    }

    /// Whether `principal` has every permission of `needs` (for requests that are
    /// not native ones; native ones go through [`Security::authorize`]).
    pub fn permits(
        &self,
        principal: &Principal,
        needs: &authorize::Needs<'_>,
    ) -> Result<(), BrokerError> {
        if !self.enabled {
            return Ok(());
        }
        authorize::check(&self.acls.authorizer(), &principal.name, needs)
    }

    /// Whether `principal` may see that a resource exists (list filtering). Always
    /// when authentication is off.
    pub fn may_see(
        &self,
        principal: &Principal,
        resource: protocol::ops::security::ResourceType,
        name: &str,
    ) -> bool {
        !self.enabled
            || authorize::visible(&self.acls.authorizer(), &principal.name, resource, name)
    }

    /// Compacts `__users` and `__acls` if due (blocking I/O).
    pub fn compact(&self) -> Result<(), BrokerError> {
        self.users.compact()?;
        self.acls.compact()
    }
}

/// A verifier of a random password nobody knows, at the iteration count real users get.
fn decoy() -> Result<StoredCredential, BrokerError> {
    use rand::RngCore;
    let mut rng = rand::thread_rng();
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut secret);
    let password: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    StoredCredential::generate(&password, auth::scram::DEFAULT_ITERATIONS, &mut rng)
        .map_err(|e| BrokerError::Internal(format!("making the PLAIN decoy: {e}")))
}
