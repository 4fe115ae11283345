//! Who an HTTP request is: the same principals, and so the same ACLs, as on the
//! native port.
//!
//! - Authentication off: every request is `ANONYMOUS`, allowed everything.
//! - An `Authorization: Basic` header: the user and password are checked against the
//!   user's SCRAM verifier on `__users`, as SASL PLAIN is ([`auth::plain`]), and only
//!   over TLS: on plaintext the header is refused without being checked (the password
//!   went over the wire in the clear; there is no loopback exception, as PLAIN has
//!   none). An unknown user is checked against the decoy verifier, so the time does
//!   not tell; a failure waits `security.failure_delay_ms`, is counted by the
//!   per-address limiter, and answers 401 `authentication failed` whatever went
//!   wrong. Verified logins are remembered ([`super::login_cache`]) so PBKDF2 runs
//!   once per TTL, not per request.
//! - No header, over mutual TLS: the verified client certificate's principal.
//! - Otherwise `ANONYMOUS` where `security.allow_anonymous` admits it, or 401.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderValue;
use base64::Engine;
use protocol::ErrorCode;
use tokio::time::Instant;

use super::error::ApiError;
use super::state::HttpState;
use crate::connection::Peer;
use crate::security::{AuthenticatedBy, Principal};

/// Longest `Authorization` header value read; a longer one fails like a wrong
/// password, unread.
pub const MAX_AUTHORIZATION_BYTES: usize = 4096;

/// Who made a request, and from where: what a [`crate::handlers::Context`] is built
/// from.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The principal ACLs are checked for.
    pub principal: Principal,
    /// The client's address.
    pub remote: std::net::SocketAddr,
}

impl FromRequestParts<Arc<HttpState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<HttpState>,
    ) -> Result<Caller, ApiError> {
        let Some(peer) = parts.extensions.get::<Arc<Peer>>().cloned() else {
            return Err(ApiError::new(
                ErrorCode::Internal,
                "the request arrived without its connection's peer",
            ));
        };
        let principal = authenticate(state, &peer, parts.headers.get(AUTHORIZATION)).await?;
        Ok(Caller {
            principal,
            remote: peer.remote,
        })
    }
}

/// What an `Authorization` header says, read without judging it.
#[derive(Debug, PartialEq, Eq)]
pub enum Credentials {
    /// `Basic` with a user and password.
    Basic {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
    /// Anything else: another scheme, bad base64, no colon, not UTF-8, too long.
    Unreadable,
}

/// Reads an `Authorization` header (pure).
pub fn parse_authorization(value: &HeaderValue) -> Credentials {
    let bytes = value.as_bytes();
    if bytes.len() > MAX_AUTHORIZATION_BYTES {
        return Credentials::Unreadable;
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Credentials::Unreadable;
    };
    let Some((scheme, encoded)) = text.trim().split_once(' ') else {
        return Credentials::Unreadable;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Credentials::Unreadable;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return Credentials::Unreadable;
    };
    let Ok(decoded) = String::from_utf8(decoded) else {
        return Credentials::Unreadable;
    };
    match decoded.split_once(':') {
        Some((user, password)) if !user.is_empty() => Credentials::Basic {
            user: user.to_string(),
            password: password.to_string(),
        },
        _ => Credentials::Unreadable,
    }
}

/// The principal of a request from `peer` carrying `authorization`.
pub async fn authenticate(
    state: &HttpState,
    peer: &Peer,
    authorization: Option<&HeaderValue>,
) -> Result<Principal, ApiError> {
    let security = &state.broker.security;
    if !security.enabled() {
        return Ok(Principal::anonymous());
    }
    if let Some(value) = authorization {
        if !peer.tls {
            return Err(ApiError::new(
                ErrorCode::AuthenticationFailed,
                "authentication failed: HTTP Basic is accepted only over TLS (https); the credentials were not checked",
            ));
        }
        return basic(state, peer, value).await;
    }
    if let Some(name) = peer.certificate_principal.clone() {
        return Ok(Principal {
            name,
            by: AuthenticatedBy::Certificate,
        });
    }
    match security.initial_principal(None) {
        Some(anonymous) => Ok(anonymous),
        None => Err(ApiError::new(
            ErrorCode::AuthenticationRequired,
            "authenticate first: send HTTP Basic credentials over https (or a client certificate)",
        )),
    }
}

/// Checks Basic credentials: the cache, else the verifier (on the blocking pool), and
/// the failure path every refusal takes.
async fn basic(state: &HttpState, peer: &Peer, value: &HeaderValue) -> Result<Principal, ApiError> {
    let security = &state.broker.security;
    let address = peer.remote.ip();
    let credentials = parse_authorization(value);
    let outcome = match credentials {
        _ if security.blocked(address) => Err("too many failures from this address"),
        Credentials::Unreadable => Err("unreadable Authorization header"),
        Credentials::Basic { user, password } => verify(state, user, password).await,
    };
    match outcome {
        Ok((user, fresh)) => {
            if fresh {
                tracing::info!(target: "audit", op = "Authenticate", principal = %user, mechanism = "HTTP Basic", remote = %peer.remote, "authenticated");
            }
            Ok(Principal {
                name: Arc::from(user.as_str()),
                by: AuthenticatedBy::Plain,
            })
        }
        Err(why) => {
            tracing::info!(target: "audit", op = "Authenticate", remote = %peer.remote, mechanism = "HTTP Basic", reason = why, "authentication failed");
            security.failed(address);
            tokio::time::sleep(security.failure_delay()).await;
            Err(ApiError::authentication_failed())
        }
    }
}

/// Whether `password` is `user`'s: `Ok((user, checked_now))`, `checked_now` false
/// when the cache vouched for it.
async fn verify(
    state: &HttpState,
    user: String,
    password: String,
) -> Result<(String, bool), &'static str> {
    let broker = &state.broker;
    let credential = broker.security.users.credential(&user);
    let stored_key = credential.as_ref().map(|c| *c.stored_key());
    if state.logins.check(
        &user,
        &password,
        stored_key.as_ref(),
        Instant::now().into_std(),
    ) {
        return Ok((user, false));
    }
    // PBKDF2 takes milliseconds: off the runtime's threads. An unknown user costs
    // the same, against the decoy.
    let security_broker = broker.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let verified = match &credential {
            Some(credential) => credential.verify_password(&password),
            None => security_broker
                .security
                .plain_decoy()
                .verify_password(&password),
        };
        (credential.is_some() & verified, user, password)
    })
    .await;
    let Ok((true, user, password)) = checked else {
        return Err("wrong user or password");
    };
    if let Some(stored_key) = &stored_key {
        state
            .logins
            .remember(&user, &password, stored_key, Instant::now().into_std());
    }
    Ok((user, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text: &str) -> HeaderValue {
        HeaderValue::from_str(text).unwrap()
    }

    fn basic(user_password: &str) -> HeaderValue {
        let encoded = base64::engine::general_purpose::STANDARD.encode(user_password);
        header(&format!("Basic {encoded}"))
    }

    #[test]
    fn basic_credentials_are_read() {
        assert_eq!(
            parse_authorization(&basic("alice:pw:with:colons")),
            Credentials::Basic {
                user: "alice".into(),
                password: "pw:with:colons".into()
            }
        );
        let lower = header(&format!(
            "basic {}",
            base64::engine::general_purpose::STANDARD.encode("bob:")
        ));
        assert_eq!(
            parse_authorization(&lower),
            Credentials::Basic {
                user: "bob".into(),
                password: String::new()
            }
        );
    }

    #[test]
    fn anything_else_is_unreadable() {
        for bad in [
            header("Bearer abc"),
            header("Basic !!!not-base64"),
            header("Basic"),
            basic("no-colon"),
            basic(":no-user"),
            header(&format!("Basic {}", "A".repeat(MAX_AUTHORIZATION_BYTES))),
        ] {
            assert_eq!(
                parse_authorization(&bad),
                Credentials::Unreadable,
                "{bad:?}"
            );
        }
    }
}
