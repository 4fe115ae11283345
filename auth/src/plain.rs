//! SASL PLAIN (RFC 4616): `[authzid] NUL authcid NUL passwd`, checked against the same
//! [`StoredCredential`]s SCRAM uses.
//!
//! PLAIN sends the password itself, so a server must accept it only over TLS; that is
//! the caller's rule to keep (this crate does not know the transport). The password is
//! borrowed from the caller's buffer and never copied or kept here.

use std::fmt;

use thiserror::Error;

use crate::{Authenticated, StoredCredential, MAX_PASSWORD_BYTES, MAX_USER_NAME_BYTES};

/// The SASL name of the mechanism.
pub const MECHANISM: &str = "PLAIN";

/// The longest PLAIN message accepted: two names, a password and two NULs.
pub const MAX_MESSAGE_BYTES: usize = 2 * MAX_USER_NAME_BYTES + MAX_PASSWORD_BYTES + 2;

/// Why a PLAIN message or authentication was refused. No variant's `Display` echoes
/// the message; a server answers "authentication failed" whatever the variant.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlainError {
    /// The message is longer than [`MAX_MESSAGE_BYTES`].
    #[error("PLAIN message of {len} bytes is longer than the limit of {max}")]
    MessageTooLong {
        /// The message's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The message does not have exactly two NUL separators.
    #[error("malformed PLAIN message: expected [authzid] NUL authcid NUL password")]
    Malformed,
    /// A field is not UTF-8.
    #[error("PLAIN message fields must be UTF-8")]
    NotUtf8,
    /// The user name (authcid) is empty or too long.
    #[error("a user name must have 1 to {max} bytes")]
    UserNameLength {
        /// The limit.
        max: usize,
    },
    /// The password is empty or too long.
    #[error("a password must have 1 to {max} bytes")]
    PasswordLength {
        /// The limit.
        max: usize,
    },
    /// The client asked to act as another user; only its own identity (or none) is
    /// accepted.
    #[error("the authorization identity differs from the user name: acting as another user is not supported")]
    AuthzidMismatch,
    /// Wrong password or unknown user: deliberately one variant.
    #[error("authentication failed")]
    AuthenticationFailed,
}

impl PlainError {
    /// Whether this is "wrong password or unknown user" rather than a malformed
    /// message; for logs and failure counters, not for the answer.
    pub fn is_bad_credentials(&self) -> bool {
        matches!(self, PlainError::AuthenticationFailed)
    }
}

/// A parsed PLAIN message, borrowing the caller's buffer. `Debug` omits the password.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PlainMessage<'a> {
    /// The user to act as, if the client named one (it must equal `authcid`).
    pub authzid: Option<&'a str>,
    /// The user name whose password this is.
    pub authcid: &'a str,
    /// The password.
    pub password: &'a str,
}

impl fmt::Debug for PlainMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainMessage")
            .field("authzid", &self.authzid)
            .field("authcid", &self.authcid)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Parses a PLAIN message, checking every field's length and that the authzid, if
/// any, is the authcid itself.
pub fn parse(message: &[u8]) -> Result<PlainMessage<'_>, PlainError> {
    if message.len() > MAX_MESSAGE_BYTES {
        return Err(PlainError::MessageTooLong {
            len: message.len(),
            max: MAX_MESSAGE_BYTES,
        });
    }
    let mut fields = message.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(PlainError::Malformed);
    };
    let text = |bytes| std::str::from_utf8(bytes).map_err(|_| PlainError::NotUtf8);
    let (authzid, authcid, password) = (text(authzid)?, text(authcid)?, text(password)?);
    if authcid.is_empty() || authcid.len() > MAX_USER_NAME_BYTES {
        return Err(PlainError::UserNameLength {
            max: MAX_USER_NAME_BYTES,
        });
    }
    if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
        return Err(PlainError::PasswordLength {
            max: MAX_PASSWORD_BYTES,
        });
    }
    let authzid = (!authzid.is_empty()).then_some(authzid);
    if authzid.is_some_and(|a| a != authcid) {
        return Err(PlainError::AuthzidMismatch);
    }
    Ok(PlainMessage {
        authzid,
        authcid,
        password,
    })
}

/// Parses a PLAIN message, looks its user up and checks the password against the
/// stored verifier.
///
/// An unknown user costs the same PBKDF2 derivation as a known one (against `decoy`,
/// a credential with the iteration count real ones use) and fails with the same
/// [`PlainError::AuthenticationFailed`], so neither the answer nor its time tells
/// whether the user exists.
pub fn authenticate(
    message: &[u8],
    lookup: impl FnOnce(&str) -> Option<StoredCredential>,
    decoy: &StoredCredential,
) -> Result<Authenticated, PlainError> {
    let parsed = parse(message)?;
    let (known, verified) = match lookup(parsed.authcid) {
        Some(credential) => (true, credential.verify_password(parsed.password)),
        None => (false, decoy.verify_password(parsed.password)),
    };
    if !(known & verified) {
        return Err(PlainError::AuthenticationFailed);
    }
    Ok(Authenticated {
        user: parsed.authcid.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(password: &str) -> StoredCredential {
        StoredCredential::derive(password, b"0123456789abcdef", crate::scram::MIN_ITERATIONS)
            .unwrap()
    }

    #[test]
    fn parses_with_and_without_authzid() {
        let parsed = parse(b"\0user\0pencil").unwrap();
        assert_eq!(
            parsed,
            PlainMessage {
                authzid: None,
                authcid: "user",
                password: "pencil"
            }
        );
        let parsed = parse(b"user\0user\0pencil").unwrap();
        assert_eq!(parsed.authzid, Some("user"));
    }

    #[test]
    fn refusals_are_typed() {
        let cases: &[(&[u8], PlainError)] = &[
            (b"", PlainError::Malformed),
            (b"\0user", PlainError::Malformed),
            (b"\0user\0pw\0", PlainError::Malformed),
            (
                b"\0\0pw",
                PlainError::UserNameLength {
                    max: MAX_USER_NAME_BYTES,
                },
            ),
            (
                b"\0user\0",
                PlainError::PasswordLength {
                    max: MAX_PASSWORD_BYTES,
                },
            ),
            (b"other\0user\0pw", PlainError::AuthzidMismatch),
            (b"\0us\xffer\0pw", PlainError::NotUtf8),
        ];
        for (message, expected) in cases {
            assert_eq!(parse(message).unwrap_err(), *expected, "{message:?}");
        }
        let long_name = [b"\0".as_slice(), &[b'u'; MAX_USER_NAME_BYTES + 1], b"\0pw"].concat();
        assert_eq!(
            parse(&long_name).unwrap_err(),
            PlainError::UserNameLength {
                max: MAX_USER_NAME_BYTES
            }
        );
        let huge = vec![b'x'; MAX_MESSAGE_BYTES + 1];
        assert!(matches!(
            parse(&huge),
            Err(PlainError::MessageTooLong { .. })
        ));
    }

    #[test]
    fn debug_omits_the_password() {
        let debug = format!("{:?}", parse(b"\0user\0hunter2").unwrap());
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn authenticate_accepts_the_password_only() {
        let stored = credential("pencil");
        let decoy = credential("decoy");
        let lookup = |user: &str| (user == "user").then(|| stored.clone());
        assert_eq!(
            authenticate(b"\0user\0pencil", lookup, &decoy)
                .unwrap()
                .user,
            "user"
        );
        assert_eq!(
            authenticate(b"\0user\0pencil!", lookup, &decoy),
            Err(PlainError::AuthenticationFailed)
        );
    }

    #[test]
    fn an_unknown_user_fails_like_a_wrong_password_even_with_the_decoys_password() {
        let decoy = credential("decoy");
        let wrong =
            authenticate(b"\0user\0nope", |_| Some(credential("pencil")), &decoy).unwrap_err();
        let unknown = authenticate(b"\0ghost\0decoy", |_| None, &decoy).unwrap_err();
        assert_eq!(wrong, unknown);
        assert!(unknown.is_bad_credentials());
    }
}
