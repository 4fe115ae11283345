//! The client's side of SCRAM-SHA-256: [`ClientExchange`] writes the client-first
//! message and answers the server-first; [`ClientFinal`] checks the server-final.

use std::fmt;

use rand::{CryptoRng, RngCore};

use super::error::ScramError;
use super::message::{check_nonce, check_user_name, encode_base64, encode_saslname};
use super::message::{parse_server_final, parse_server_first, ServerFinal, GS2_HEADER_NO_BINDING};
use super::{MAX_CLIENT_NONCE_BYTES, NONCE_RANDOM_BYTES};
use crate::crypto::{self, Key};
use crate::MAX_PASSWORD_BYTES;

/// A client exchange between its client-first and server-first messages.
///
/// It holds the password until [`respond`](Self::respond) consumes it (the derivation
/// needs the server's salt); `Debug` never shows it.
pub struct ClientExchange {
    password: String,
    nonce: String,
    client_first_bare: String,
}

impl ClientExchange {
    /// Starts an exchange for `user` with a fresh nonce from `rng`, returning the
    /// client-first message to send. The client asks for no channel binding (`n,,`).
    pub fn new(
        user: &str,
        password: &str,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(ClientExchange, Vec<u8>), ScramError> {
        let mut random = [0u8; NONCE_RANDOM_BYTES];
        rng.fill_bytes(&mut random);
        ClientExchange::with_nonce(user, password, &encode_base64(&random))
    }

    /// [`new`](Self::new) with the nonce given. Only for reproducing test vectors: a
    /// real client's nonce must be fresh and unpredictable.
    pub fn with_nonce(
        user: &str,
        password: &str,
        nonce: &str,
    ) -> Result<(ClientExchange, Vec<u8>), ScramError> {
        check_user_name(user)?;
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(ScramError::PasswordTooLong {
                max: MAX_PASSWORD_BYTES,
            });
        }
        check_nonce(nonce, MAX_CLIENT_NONCE_BYTES)?;
        let client_first_bare = format!("n={},r={nonce}", encode_saslname(user));
        let client_first = format!("{GS2_HEADER_NO_BINDING}{client_first_bare}");
        let exchange = ClientExchange {
            password: password.to_owned(),
            nonce: nonce.to_owned(),
            client_first_bare,
        };
        Ok((exchange, client_first.into_bytes()))
    }

    /// Reads the server-first message and answers the client-final message with the
    /// proof. Refuses a server nonce that does not extend ours, and iteration counts
    /// outside [`MIN_ITERATIONS`](super::MIN_ITERATIONS)..=[`MAX_ITERATIONS`](super::MAX_ITERATIONS)
    /// (so a hostile server can neither weaken nor stall the derivation).
    pub fn respond(self, server_first: &[u8]) -> Result<(ClientFinal, Vec<u8>), ScramError> {
        let first = parse_server_first(server_first)?;
        if first.nonce.len() <= self.nonce.len() || !first.nonce.starts_with(&self.nonce) {
            return Err(ScramError::NonceMismatch);
        }
        let keys = crypto::derive_keys(self.password.as_bytes(), &first.salt, first.iterations);
        let binding = encode_base64(GS2_HEADER_NO_BINDING.as_bytes());
        let without_proof = format!("c={binding},r={}", first.nonce);
        let auth_message = [
            self.client_first_bare.as_bytes(),
            b",",
            server_first,
            b",",
            without_proof.as_bytes(),
        ];
        let client_signature = crypto::hmac(&keys.stored_key, &auth_message);
        let proof = crypto::xor(&keys.client_key, &client_signature);
        let server_signature = crypto::hmac(&keys.server_key, &auth_message);
        let client_final = format!("{without_proof},p={}", encode_base64(&proof));
        Ok((ClientFinal { server_signature }, client_final.into_bytes()))
    }
}

impl fmt::Debug for ClientExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientExchange")
            .field("client_first_bare", &self.client_first_bare)
            .finish_non_exhaustive()
    }
}

/// A client exchange waiting for the server-final message.
pub struct ClientFinal {
    server_signature: Key,
}

impl ClientFinal {
    /// Checks the server's signature (in constant time). Only after this succeeds has
    /// the server proven that it holds this user's verifier.
    pub fn verify(self, server_final: &[u8]) -> Result<(), ScramError> {
        match parse_server_final(server_final)? {
            ServerFinal::Error(reason) => Err(ScramError::ServerRejected {
                reason: printable_reason(&reason),
            }),
            ServerFinal::Verifier(signature)
                if crypto::ct_eq(&signature, &self.server_signature) =>
            {
                Ok(())
            }
            ServerFinal::Verifier(_) => Err(ScramError::ServerSignatureMismatch),
        }
    }
}

/// The most of a server's `e=` value kept: RFC 5802's values are short tokens.
const MAX_SERVER_ERROR_BYTES: usize = 64;

/// The server's error value, reduced to printable ASCII within
/// [`MAX_SERVER_ERROR_BYTES`], so that a hostile server cannot write control characters
/// or pages of text into the client's logs.
fn printable_reason(reason: &str) -> String {
    reason
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(MAX_SERVER_ERROR_BYTES)
        .collect()
}

impl fmt::Debug for ClientFinal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientFinal").finish_non_exhaustive()
    }
}
