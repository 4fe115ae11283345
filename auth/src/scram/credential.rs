//! [`StoredCredential`]: the salted, iterated verifier a broker keeps instead of a
//! password, and its one-line text form for config files.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use protocol::ops::security::UserCredential;
use rand::{CryptoRng, RngCore};

use super::error::ScramError;
use super::message::parse_iterations;
use super::{DEFAULT_SALT_BYTES, MAX_ITERATIONS, MAX_SALT_BYTES, MIN_ITERATIONS};
use crate::crypto::{self, Key, KEY_BYTES};
use crate::MAX_PASSWORD_BYTES;

/// The mechanism name that starts the text form.
const TEXT_PREFIX: &str = "SCRAM-SHA-256";

/// What a server stores for one user (RFC 5802 section 3): the salt and iteration
/// count it announces, `StoredKey = H(HMAC(SaltedPassword, "Client Key"))`, against
/// which a ClientProof is checked, and `ServerKey = HMAC(SaltedPassword, "Server
/// Key")`, with which the server proves itself. The password cannot be recovered from
/// it short of a brute-force search costing `iterations` PBKDF2 rounds a guess.
///
/// The keys are still sensitive (with StoredKey and an observed exchange one can
/// impersonate the user; with ServerKey, the server), so `Debug` omits them; `Display`
/// writes the full text form, for config files and `__users`, on purpose.
///
/// Invariants, held by every constructor: `MIN_ITERATIONS <= iterations <=
/// MAX_ITERATIONS` and `1 <= salt.len() <= MAX_SALT_BYTES`.
#[derive(Clone)]
pub struct StoredCredential {
    salt: Vec<u8>,
    iterations: u32,
    stored_key: Key,
    server_key: Key,
}

impl StoredCredential {
    /// Derives the verifier of `password` with the given salt and iteration count
    /// (`iterations` PBKDF2-HMAC-SHA-256 rounds: milliseconds at the default).
    pub fn derive(
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Result<StoredCredential, ScramError> {
        check_password(password)?;
        check_parameters(salt, iterations)?;
        let keys = crypto::derive_keys(password.as_bytes(), salt, iterations);
        Ok(StoredCredential {
            salt: salt.to_vec(),
            iterations,
            stored_key: keys.stored_key,
            server_key: keys.server_key,
        })
    }

    /// Derives the verifier of `password` with a fresh random salt of
    /// [`DEFAULT_SALT_BYTES`] from `rng`.
    pub fn generate(
        password: &str,
        iterations: u32,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<StoredCredential, ScramError> {
        let mut salt = [0u8; DEFAULT_SALT_BYTES];
        rng.fill_bytes(&mut salt);
        StoredCredential::derive(password, &salt, iterations)
    }

    /// Rebuilds a verifier from its parts (as a `__users` record holds them), checking
    /// the invariants.
    pub fn from_parts(
        salt: Vec<u8>,
        iterations: u32,
        stored_key: [u8; KEY_BYTES],
        server_key: [u8; KEY_BYTES],
    ) -> Result<StoredCredential, ScramError> {
        check_parameters(&salt, iterations)?;
        Ok(StoredCredential {
            salt,
            iterations,
            stored_key,
            server_key,
        })
    }

    /// Reads a verifier from its wire and `__users` form (`CreateUser`, `AlterUser`,
    /// [`UserEvent`](protocol::ops::security::UserEvent)), checking the invariants and
    /// the keys' lengths: a record from the network is as untrusted as any input.
    pub fn from_user_credential(record: &UserCredential) -> Result<StoredCredential, ScramError> {
        let key = |bytes: &Bytes, what| {
            Key::try_from(bytes.as_ref()).map_err(|_| ScramError::InvalidCredential { what })
        };
        let stored_key = key(&record.stored_key, "the StoredKey must have 32 bytes")?;
        let server_key = key(&record.server_key, "the ServerKey must have 32 bytes")?;
        StoredCredential::from_parts(
            record.salt.to_vec(),
            record.iterations,
            stored_key,
            server_key,
        )
    }

    /// This verifier in its wire and `__users` form, for user `name`.
    pub fn to_user_credential(&self, name: &str) -> UserCredential {
        UserCredential {
            name: name.to_owned(),
            iterations: self.iterations,
            salt: Bytes::copy_from_slice(&self.salt),
            stored_key: Bytes::copy_from_slice(&self.stored_key),
            server_key: Bytes::copy_from_slice(&self.server_key),
        }
    }

    /// The salt the server announces.
    pub fn salt(&self) -> &[u8] {
        &self.salt
    }

    /// The PBKDF2 iteration count the server announces.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// `StoredKey`, against which client proofs are checked.
    pub fn stored_key(&self) -> &[u8; KEY_BYTES] {
        &self.stored_key
    }

    /// `ServerKey`, with which the server signs its final message.
    pub fn server_key(&self) -> &[u8; KEY_BYTES] {
        &self.server_key
    }

    /// Whether `password` is the one this verifier was derived from: derives with the
    /// stored salt and count and compares StoredKeys in constant time. Costs a full
    /// derivation, which is the point.
    pub fn verify_password(&self, password: &str) -> bool {
        if check_password(password).is_err() {
            return false;
        }
        let keys = crypto::derive_keys(password.as_bytes(), &self.salt, self.iterations);
        crypto::ct_eq(&keys.stored_key, &self.stored_key)
    }
}

fn check_password(password: &str) -> Result<(), ScramError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ScramError::PasswordTooLong {
            max: MAX_PASSWORD_BYTES,
        });
    }
    Ok(())
}

fn check_parameters(salt: &[u8], iterations: u32) -> Result<(), ScramError> {
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
    if salt.is_empty() || salt.len() > MAX_SALT_BYTES {
        return Err(ScramError::SaltLength {
            len: salt.len(),
            max: MAX_SALT_BYTES,
        });
    }
    Ok(())
}

impl PartialEq for StoredCredential {
    /// Compares the keys in constant time: equality of verifiers is never on a hot
    /// path, and it costs nothing to rule out a timing channel.
    fn eq(&self, other: &StoredCredential) -> bool {
        let keys = crypto::ct_eq(&self.stored_key, &other.stored_key)
            & crypto::ct_eq(&self.server_key, &other.server_key);
        keys && self.salt == other.salt && self.iterations == other.iterations
    }
}

impl Eq for StoredCredential {}

impl fmt::Debug for StoredCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredCredential")
            .field("salt", &STANDARD.encode(&self.salt))
            .field("iterations", &self.iterations)
            .field("stored_key", &"<redacted>")
            .field("server_key", &"<redacted>")
            .finish()
    }
}

impl fmt::Display for StoredCredential {
    /// `SCRAM-SHA-256:<iterations>:<base64 salt>:<base64 StoredKey>:<base64 ServerKey>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{TEXT_PREFIX}:{}:{}:{}:{}",
            self.iterations,
            STANDARD.encode(&self.salt),
            STANDARD.encode(self.stored_key),
            STANDARD.encode(self.server_key)
        )
    }
}

/// The longest text form: the prefix, ten digits, and three base64 fields.
const MAX_TEXT_BYTES: usize = TEXT_PREFIX.len() + 4 + 10 + MAX_SALT_BYTES.div_ceil(3) * 4 + 2 * 44;

impl FromStr for StoredCredential {
    type Err = ScramError;

    /// Parses the text form that `Display` writes.
    fn from_str(text: &str) -> Result<StoredCredential, ScramError> {
        let invalid = |what| ScramError::InvalidCredential { what };
        if text.len() > MAX_TEXT_BYTES {
            return Err(invalid("too long"));
        }
        let mut fields = text.split(':');
        if fields.next() != Some(TEXT_PREFIX) {
            return Err(invalid("it must start with SCRAM-SHA-256:"));
        }
        let iterations = fields.next().ok_or(invalid("no iteration count"))?;
        let iterations = parse_iterations(iterations)?;
        let salt = STANDARD
            .decode(fields.next().ok_or(invalid("no salt"))?)
            .map_err(|_| invalid("the salt is not base64"))?;
        let key = |field: Option<&str>, what| {
            let bytes = STANDARD
                .decode(field.ok_or(invalid(what))?)
                .map_err(|_| invalid(what))?;
            Key::try_from(bytes.as_slice()).map_err(|_| invalid(what))
        };
        let stored_key = key(fields.next(), "the StoredKey must be base64 of 32 bytes")?;
        let server_key = key(fields.next(), "the ServerKey must be base64 of 32 bytes")?;
        if fields.next().is_some() {
            return Err(invalid("too many fields"));
        }
        StoredCredential::from_parts(salt, iterations, stored_key, server_key)
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::scram::DEFAULT_ITERATIONS;

    #[test]
    fn text_form_round_trips() {
        let mut rng = StdRng::seed_from_u64(1);
        let credential =
            StoredCredential::generate("secret", DEFAULT_ITERATIONS, &mut rng).unwrap();
        let text = credential.to_string();
        assert!(text.starts_with("SCRAM-SHA-256:4096:"), "{text}");
        assert_eq!(text.parse::<StoredCredential>().unwrap(), credential);
    }

    #[test]
    fn text_form_refusals() {
        let good = StoredCredential::derive("p", b"saltsaltsaltsalt", 4096)
            .unwrap()
            .to_string();
        let fields: Vec<&str> = good.split(':').collect();
        let with = |i: usize, v: &str| {
            let mut f = fields.clone();
            f[i] = v;
            f.join(":")
        };
        let cases = [
            with(0, "SCRAM-SHA-1"),
            with(1, "4095"),
            with(1, "x"),
            with(2, ""),
            with(2, "!!"),
            with(3, "QQ=="),
            with(4, "not base64"),
            format!("{good}:extra"),
            fields[..4].join(":"),
            "x".repeat(MAX_TEXT_BYTES + 1),
        ];
        for case in cases {
            assert!(case.parse::<StoredCredential>().is_err(), "{case}");
        }
    }

    #[test]
    fn the_wire_form_round_trips_and_is_checked() {
        let credential = StoredCredential::derive("p", b"saltsalt", 4096).unwrap();
        let record = credential.to_user_credential("alice");
        assert_eq!(record.name, "alice");
        assert_eq!(
            StoredCredential::from_user_credential(&record).unwrap(),
            credential
        );

        let mut short_key = record.clone();
        short_key.stored_key = Bytes::from_static(&[0; 31]);
        assert!(matches!(
            StoredCredential::from_user_credential(&short_key),
            Err(ScramError::InvalidCredential { .. })
        ));
        let mut long_key = record.clone();
        long_key.server_key = Bytes::from_static(&[0; 33]);
        assert!(matches!(
            StoredCredential::from_user_credential(&long_key),
            Err(ScramError::InvalidCredential { .. })
        ));
        let mut cheap = record.clone();
        cheap.iterations = 1;
        assert!(matches!(
            StoredCredential::from_user_credential(&cheap),
            Err(ScramError::TooFewIterations { .. })
        ));
        let mut no_salt = record;
        no_salt.salt = Bytes::new();
        assert!(matches!(
            StoredCredential::from_user_credential(&no_salt),
            Err(ScramError::SaltLength { .. })
        ));
    }

    #[test]
    fn debug_redacts_the_keys() {
        let credential = StoredCredential::derive("p", b"salt", 4096).unwrap();
        let debug = format!("{credential:?}");
        assert!(debug.contains("redacted"), "{debug}");
        assert!(
            !debug.contains(&STANDARD.encode(credential.stored_key())),
            "{debug}"
        );
        assert!(
            !debug.contains(&STANDARD.encode(credential.server_key())),
            "{debug}"
        );
    }

    #[test]
    fn parameters_are_bounded() {
        assert!(matches!(
            StoredCredential::derive("p", b"s", 4095),
            Err(ScramError::TooFewIterations { .. })
        ));
        assert!(matches!(
            StoredCredential::derive("p", b"s", MAX_ITERATIONS + 1),
            Err(ScramError::TooManyIterations { .. })
        ));
        assert!(matches!(
            StoredCredential::derive("p", b"", 4096),
            Err(ScramError::SaltLength { .. })
        ));
        let long_password = "p".repeat(MAX_PASSWORD_BYTES + 1);
        assert!(matches!(
            StoredCredential::derive(&long_password, b"s", 4096),
            Err(ScramError::PasswordTooLong { .. })
        ));
    }

    #[test]
    fn verify_password_accepts_only_the_password() {
        let credential = StoredCredential::derive("pencil", b"salt", 4096).unwrap();
        assert!(credential.verify_password("pencil"));
        assert!(!credential.verify_password("pencil "));
        assert!(!credential.verify_password(""));
    }
}
