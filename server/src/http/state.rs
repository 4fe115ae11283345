//! What every HTTP request reaches: the broker, and the gateway's own state (the
//! login cache).

use std::sync::Arc;
use std::time::Duration;

use super::login_cache::LoginCache;
use super::members::HttpMembers;
use crate::broker::Broker;

/// The gateway's shared state, one per listener.
#[derive(Debug)]
pub struct HttpState {
    /// The broker every endpoint serves.
    pub broker: Arc<Broker>,
    /// Verified HTTP Basic logins.
    pub logins: LoginCache,
    /// The group memberships held for stateless clients (queues, group reads).
    pub members: HttpMembers,
}

impl HttpState {
    /// The state of a gateway serving `broker`.
    pub fn new(broker: Arc<Broker>) -> HttpState {
        let http = &broker.config.http;
        let logins = LoginCache::new(
            http.login_cache_entries,
            Duration::from_millis(http.login_cache_ttl_ms),
        );
        let members = HttpMembers::new(&broker);
        HttpState {
            broker,
            logins,
            members,
        }
    }
}
