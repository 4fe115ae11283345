//! The broker's security logic: how a connection proves who it is, and what that
//! principal may then do.
//!
//! This crate owns:
//! - [`scram`]: SASL SCRAM-SHA-256 (RFC 5802 and RFC 7677), both the server's and the
//!   client's side, as state machines over the bytes of each message, and
//!   [`StoredCredential`], the salted, iterated verifier that is all a broker keeps of a
//!   password.
//! - [`plain`]: SASL PLAIN (RFC 4616) messages, checked against the same verifiers.
//! - [`acl`]: Kafka-style ACL evaluation (principal, resource, pattern, operation, allow
//!   or deny), indexed so that a check on every request costs a few hash lookups.
//!
//! It is sans-IO, like `protocol`: callers hand it bytes and a random-number generator
//! and get typed values back. It must never:
//! - open a socket or file, read a clock, spawn a task or log anything (so a secret can
//!   never reach a log from here; callers decide what to log, and the errors here are
//!   written so that their `Display` never echoes a password, a proof or a key);
//! - store or return a password: only [`StoredCredential`]s (salt, iteration count,
//!   StoredKey, ServerKey) leave a derivation;
//! - hand-roll a primitive: PBKDF2, HMAC and SHA-256 come from RustCrypto, constant-time
//!   comparison from `subtle`, randomness from the caller's `rand` CSPRNG;
//! - panic or allocate unboundedly on input: every input size has a named limit.
//!
//! A full SCRAM exchange, both sides in one process:
//!
//! ```
//! use auth::scram::{ClientExchange, ScramServer, StoredCredential};
//!
//! let mut rng = rand::thread_rng();
//! let credential = StoredCredential::generate("pencil", 4096, &mut rng)?;
//! let server = ScramServer::new(&mut rng);
//!
//! let (client, client_first) = ClientExchange::new("user", "pencil", &mut rng)?;
//! let (exchange, server_first) =
//!     server.start(&client_first, |user| (user == "user").then(|| credential.clone()), &mut rng)?;
//! let (client, client_final) = client.respond(&server_first)?;
//! let (authenticated, server_final) = exchange.finish(&client_final)?;
//! client.verify(&server_final)?;
//! assert_eq!(authenticated.user, "user");
//! # Ok::<(), auth::scram::ScramError>(())
//! ```

//!
//! Fuzzing (cargo-fuzz; `auth/fuzz` is its own package, outside the workspace, like
//! `protocol/fuzz`, and CI does not run it): `scram` feeds random bytes to both sides'
//! state machines, `plain` to the PLAIN parser and check.
//!
//! ```text
//! cd auth && RUSTC_BOOTSTRAP=1 cargo fuzz run scram -- -max_total_time=120
//! cd auth && RUSTC_BOOTSTRAP=1 cargo fuzz run plain -- -max_total_time=120
//! ```

#![warn(missing_docs)]
// Production code must not unwrap data it did not create; tests may.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod acl;
mod crypto;
pub mod plain;
pub mod scram;

pub use scram::StoredCredential;

/// The longest user name, in bytes of UTF-8 after SCRAM's `saslname` unescaping, that
/// any mechanism accepts. Names are principals in ACLs and keys of `__users`.
pub const MAX_USER_NAME_BYTES: usize = 255;

/// The longest password, in bytes of UTF-8, that a client derives from or PLAIN
/// accepts. Long enough for any passphrase; short enough that PBKDF2's first HMAC
/// over it is cheap.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The outcome of a successful authentication: who the connection is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The authenticated user name, the principal that ACLs are evaluated for.
    pub user: String,
}
