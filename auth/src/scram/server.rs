//! The server's side of SCRAM-SHA-256: [`ScramServer`] (per-process state) starts a
//! [`ServerExchange`] from a client-first message, which finishes on the client-final.

use std::fmt;

use rand::{CryptoRng, RngCore};

use super::credential::StoredCredential;
use super::error::ScramError;
use super::message::{check_nonce, encode_base64, parse_client_final, parse_client_first};
use super::{
    DEFAULT_ITERATIONS, DEFAULT_SALT_BYTES, MAX_ITERATIONS, MIN_ITERATIONS, NONCE_RANDOM_BYTES,
};
use crate::crypto::{self, Key, KEY_BYTES};
use crate::Authenticated;

/// Longest server part of a nonce passed to [`ScramServer::start_with_nonce`]: the
/// combined nonce must stay within [`MAX_NONCE_BYTES`](super::MAX_NONCE_BYTES).
pub const MAX_SERVER_NONCE_BYTES: usize = super::MAX_NONCE_BYTES - super::MAX_CLIENT_NONCE_BYTES;

/// What one broker process holds for SCRAM: a random secret from which the replies to
/// unknown users are derived, so that they look like a real user's (the same salt on
/// every attempt for one name, the same shape as any other) and a client cannot tell
/// "no such user" from "wrong password" until the final message, where both fail alike.
///
/// Make one per process and share it between connections. With a fresh secret per
/// process, an unknown name's salt changes at a restart while a real user's does not,
/// which tells the two apart to someone watching across restarts; a broker that
/// minds keeps a secret ([`ScramServer::from_secret`]) in its data directory.
pub struct ScramServer {
    secret: Key,
    unknown_user_iterations: u32,
}

impl ScramServer {
    /// A server with a fresh secret from `rng`, announcing [`DEFAULT_ITERATIONS`] to
    /// unknown users.
    pub fn new(rng: &mut (impl RngCore + CryptoRng)) -> ScramServer {
        let mut secret = [0u8; KEY_BYTES];
        rng.fill_bytes(&mut secret);
        ScramServer {
            secret,
            unknown_user_iterations: DEFAULT_ITERATIONS,
        }
    }

    /// A server with a secret kept from before (32 random bytes, as secret as a key),
    /// so that unknown users see the same salts after a restart.
    pub fn from_secret(secret: [u8; KEY_BYTES]) -> ScramServer {
        ScramServer {
            secret,
            unknown_user_iterations: DEFAULT_ITERATIONS,
        }
    }

    /// Announces `iterations` to unknown users: set it to what real credentials use, so
    /// that the count does not tell them apart.
    pub fn with_unknown_user_iterations(
        mut self,
        iterations: u32,
    ) -> Result<ScramServer, ScramError> {
        if iterations < MIN_ITERATIONS {
            return Err(ScramError::TooFewIterations {
                iterations,
                min: MIN_ITERATIONS,
            });
        }
        if iterations > MAX_ITERATIONS {
            return Err(ScramError::TooManyIterations {
                max: MAX_ITERATIONS,
            });
        }
        self.unknown_user_iterations = iterations;
        Ok(self)
    }

    /// Reads a client-first message, looks its user up and answers the server-first
    /// message, with a fresh nonce from `rng`.
    ///
    /// `lookup` is called once, with the unescaped user name, and only if the message
    /// is well formed. An unknown user (`None`) gets a plausible server-first and fails
    /// at [`ServerExchange::finish`] exactly like a wrong password.
    pub fn start(
        &self,
        client_first: &[u8],
        lookup: impl FnOnce(&str) -> Option<StoredCredential>,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<(ServerExchange, Vec<u8>), ScramError> {
        let mut random = [0u8; NONCE_RANDOM_BYTES];
        rng.fill_bytes(&mut random);
        self.start_with_nonce(client_first, lookup, &encode_base64(&random))
    }

    /// [`start`](Self::start) with the server's part of the nonce given. Only for
    /// reproducing test vectors: a real server's nonce must be fresh and unpredictable.
    pub fn start_with_nonce(
        &self,
        client_first: &[u8],
        lookup: impl FnOnce(&str) -> Option<StoredCredential>,
        server_nonce: &str,
    ) -> Result<(ServerExchange, Vec<u8>), ScramError> {
        check_nonce(server_nonce, MAX_SERVER_NONCE_BYTES)?;
        let first = parse_client_first(client_first)?;
        let (known, credential) = match lookup(&first.user) {
            Some(credential) => (true, credential),
            None => (false, self.unknown_user_credential(&first.user)),
        };
        let nonce = format!("{}{server_nonce}", first.nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            encode_base64(credential.salt()),
            credential.iterations()
        );
        let auth_message_prefix = format!("{},{server_first},", first.bare);
        let exchange = ServerExchange {
            user: first.user,
            known,
            credential,
            gs2_header: first.gs2_header.to_owned(),
            client_nonce_bytes: first.nonce.len(),
            nonce,
            auth_message_prefix,
            repeated_client_nonce: false,
        };
        Ok((exchange, server_first.into_bytes()))
    }

    /// A credential for a user that does not exist: its salt depends only on the name
    /// and the secret, so repeated attempts see the same one; its keys match no proof
    /// anyone can compute without the secret (and `known == false` refuses it anyway).
    fn unknown_user_credential(&self, user: &str) -> StoredCredential {
        let salt = crypto::hmac(&self.secret, &[b"unknown-user salt\0", user.as_bytes()]);
        let stored_key = crypto::hmac(
            &self.secret,
            &[b"unknown-user stored key\0", user.as_bytes()],
        );
        let server_key = crypto::hmac(
            &self.secret,
            &[b"unknown-user server key\0", user.as_bytes()],
        );
        let salt = salt[..DEFAULT_SALT_BYTES].to_vec();
        match StoredCredential::from_parts(
            salt,
            self.unknown_user_iterations,
            stored_key,
            server_key,
        ) {
            Ok(credential) => credential,
            // The salt has DEFAULT_SALT_BYTES and the count was checked when it was set.
            Err(_) => unreachable!("the unknown-user parameters are within the limits"),
        }
    }
}

impl fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramServer")
            .field("secret", &"<redacted>")
            .field("unknown_user_iterations", &self.unknown_user_iterations)
            .finish()
    }
}

/// A server exchange between its server-first and client-final messages.
pub struct ServerExchange {
    user: String,
    known: bool,
    credential: StoredCredential,
    gs2_header: String,
    nonce: String,
    /// How much of `nonce` is the client's.
    client_nonce_bytes: usize,
    /// `client-first-message-bare "," server-first-message ","`: the AuthMessage up to
    /// the client-final part.
    auth_message_prefix: String,
    /// Whether a client-final nonce of the client's nonce followed by the combined
    /// one is accepted too (see [`ServerExchange::accept_repeated_client_nonce`]).
    repeated_client_nonce: bool,
}

impl ServerExchange {
    /// Also accepts a client-final whose nonce is the client's nonce followed by the
    /// combined nonce, which is what librdkafka (through 2.x, so kcat and every
    /// client built on it) sends, and what Kafka's broker accepts (it checks that
    /// the client's nonce ends with the combined one). The server's fresh part is
    /// still required, so replay protection is unchanged, and the proof covers the
    /// message as sent. For the Kafka listener only; the native one stays strict.
    pub fn accept_repeated_client_nonce(&mut self) {
        self.repeated_client_nonce = true;
    }

    fn nonce_matches(&self, given: &str) -> bool {
        if given == self.nonce {
            return true;
        }
        let client = &self.nonce[..self.client_nonce_bytes];
        self.repeated_client_nonce
            && given.len() == client.len() + self.nonce.len()
            && given.starts_with(client)
            && given.ends_with(self.nonce.as_str())
    }

    /// The user name the client claimed (not yet proven).
    pub fn claimed_user(&self) -> &str {
        &self.user
    }

    /// Checks the client-final message's proof (in constant time) and answers the
    /// server-final message that proves the server, too, holds the verifier.
    ///
    /// A wrong proof and an unknown user both fail with
    /// [`ScramError::AuthenticationFailed`]; a malformed message with its own variant.
    pub fn finish(self, client_final: &[u8]) -> Result<(Authenticated, Vec<u8>), ScramError> {
        let last = parse_client_final(client_final)?;
        if last.channel_binding != self.gs2_header.as_bytes() {
            return Err(ScramError::ChannelBindingMismatch);
        }
        if !self.nonce_matches(last.nonce) {
            return Err(ScramError::NonceMismatch);
        }
        let auth_message = [
            self.auth_message_prefix.as_bytes(),
            last.without_proof.as_bytes(),
        ];
        let client_signature = crypto::hmac(self.credential.stored_key(), &auth_message);
        let client_key = crypto::xor(&last.proof, &client_signature);
        let proof_matches =
            crypto::ct_eq(&crypto::sha256(&client_key), self.credential.stored_key());
        // `&`, not `&&`: an unknown user costs the same work as a known one.
        if !(proof_matches & self.known) {
            return Err(ScramError::AuthenticationFailed);
        }
        let server_signature = crypto::hmac(self.credential.server_key(), &auth_message);
        let server_final = format!("v={}", encode_base64(&server_signature));
        Ok((Authenticated { user: self.user }, server_final.into_bytes()))
    }
}

impl fmt::Debug for ServerExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Whether the user exists is exactly what must not leak, into logs either.
        f.debug_struct("ServerExchange")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}
