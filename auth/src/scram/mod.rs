//! SASL SCRAM-SHA-256 (RFC 5802, RFC 7677) without channel binding: the server's side
//! ([`ScramServer`], [`ServerExchange`]), the client's ([`ClientExchange`],
//! [`ClientFinal`]) and the verifier a server stores ([`StoredCredential`]).
//!
//! Each side is a state machine that consumes itself at every step, so a message can
//! be answered only once and only in order:
//!
//! ```text
//! client                                   server
//! ClientExchange::new ── client-first ──▶ ScramServer::start      (looks the user up)
//! ClientExchange::respond ◀── server-first ── ServerExchange
//! ClientFinal ────────────── client-final ──▶ ServerExchange::finish (checks the proof)
//! ClientFinal::verify ◀──── server-final ──── Authenticated
//! ```
//!
//! What is deliberately left out: channel binding (`-PLUS`; a `p=` flag is refused,
//! `y` and `n` accepted), authorization identities other than the user's own, and
//! SASLprep (names and passwords are compared as the UTF-8 bytes given; both our sides
//! agree, and a client that normalises differently fails closed).

mod client;
mod credential;
mod error;
mod message;
mod server;

#[cfg(test)]
mod tests;

pub use client::{ClientExchange, ClientFinal};
pub use credential::StoredCredential;
pub use error::ScramError;
pub use server::{ScramServer, ServerExchange, MAX_SERVER_NONCE_BYTES};

/// The SASL name of the mechanism.
pub const MECHANISM: &str = "SCRAM-SHA-256";

/// The fewest PBKDF2 iterations accepted anywhere (RFC 7677 section 4's floor): a
/// credential with fewer is not made, and a client refuses a server that offers fewer.
pub const MIN_ITERATIONS: u32 = 4096;

/// The iteration count for new credentials unless the operator picks another.
pub const DEFAULT_ITERATIONS: u32 = 4096;

/// The most PBKDF2 iterations accepted anywhere, so that a hostile server cannot make
/// a client spin (about a second of one core at this count).
pub const MAX_ITERATIONS: u32 = 1_000_000;

/// The length of the salt [`StoredCredential::generate`] draws, and of the salts
/// announced to unknown users.
pub const DEFAULT_SALT_BYTES: usize = 16;

/// The longest salt accepted, in bytes once decoded.
pub const MAX_SALT_BYTES: usize = 128;

/// The longest SCRAM message accepted by either side, in bytes. A client-first message
/// with the longest escaped user name and nonce fits; it is well under the pre-auth
/// frame cap.
pub const MAX_MESSAGE_BYTES: usize = 2048;

/// The longest client nonce a server accepts.
pub const MAX_CLIENT_NONCE_BYTES: usize = 128;

/// The longest combined nonce (client's and server's) either side accepts.
pub const MAX_NONCE_BYTES: usize = 256;

/// Random bytes in each side's nonce (base64-encoded, so 32 characters on the wire).
const NONCE_RANDOM_BYTES: usize = 24;
