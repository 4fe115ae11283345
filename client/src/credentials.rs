//! [`Credentials`]: who a client authenticates as, and with which SASL mechanism.
//!
//! Set on a [`ClientConfig`](crate::ClientConfig) with
//! [`credentials`](crate::ClientConfig::credentials), they are used on every
//! connection the client opens, the first and every reconnect: after the handshake the
//! client runs the broker's Authenticate exchange (`docs/protocol.md`,
//! "Authenticate (2)"). The password stays in this value and goes nowhere else: `Debug`
//! shows the user and mechanism only, and no error message carries it. With
//! SCRAM-SHA-256 (the default) it never crosses the wire either; PLAIN sends it, so the
//! client only sends PLAIN over an encrypted connection.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// The environment variable [`Credentials::from_env`] reads the user name from.
pub const USER_ENV: &str = "BROKER_USER";
/// The environment variable [`Credentials::from_env`] reads the password from.
pub const PASSWORD_ENV: &str = "BROKER_PASSWORD";
/// The environment variable [`Credentials::from_env`] reads the mechanism from
/// (`SCRAM-SHA-256` if unset).
pub const MECHANISM_ENV: &str = "BROKER_SASL_MECHANISM";

/// A SASL mechanism the client can authenticate with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mechanism {
    /// SCRAM-SHA-256 (RFC 5802, RFC 7677): the password never leaves the client, and
    /// the broker proves that it holds the user's verifier. The default.
    #[default]
    ScramSha256,
    /// PLAIN (RFC 4616): the password itself is sent, so only over TLS (the broker
    /// refuses it otherwise, and this client does not send it otherwise).
    Plain,
}

impl Mechanism {
    /// Every mechanism, in the order they are listed in messages.
    pub const ALL: [Mechanism; 2] = [Mechanism::ScramSha256, Mechanism::Plain];

    /// The SASL name, as on the wire: `SCRAM-SHA-256` or `PLAIN`.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::ScramSha256 => auth::scram::MECHANISM,
            Mechanism::Plain => auth::plain::MECHANISM,
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Mechanism {
    type Err = CredentialsError;

    /// Parses a SASL name, ignoring ASCII case (`scram-sha-256` is accepted).
    fn from_str(name: &str) -> Result<Mechanism, CredentialsError> {
        Mechanism::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| CredentialsError::UnknownMechanism {
                given: name.to_string(),
            })
    }
}

/// Why credentials could not be read from the environment.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CredentialsError {
    /// The mechanism's name is not one this client speaks.
    #[error(
        "unknown SASL mechanism {given:?}: use SCRAM-SHA-256 (the default) or PLAIN \
         (set it with --sasl-mechanism or BROKER_SASL_MECHANISM)"
    )]
    UnknownMechanism {
        /// The name given.
        given: String,
    },
    /// A user name was given without a password.
    #[error(
        "user {user:?} is set but no password: set BROKER_PASSWORD (brokerctl also \
         takes --password-file)"
    )]
    MissingPassword {
        /// The user name.
        user: String,
    },
    /// A password was given without a user name. (Nothing of the password is shown.)
    #[error("BROKER_PASSWORD is set but no user: set BROKER_USER (brokerctl: --user)")]
    MissingUser,
}

/// A user name, its password and the mechanism to authenticate with.
///
/// ```
/// use client::{ClientConfig, Credentials, Mechanism};
///
/// let credentials = Credentials::scram_sha_256("alice", "correct horse battery staple");
/// assert_eq!(credentials.user(), "alice");
/// assert_eq!(credentials.mechanism(), Mechanism::ScramSha256);
/// // The password is never shown.
/// assert!(!format!("{credentials:?}").contains("horse"));
/// let config = ClientConfig::default().credentials(credentials);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    mechanism: Mechanism,
    user: String,
    password: String,
}

impl Credentials {
    /// Authenticate as `user` with SCRAM-SHA-256, the default mechanism.
    pub fn scram_sha_256(user: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials::new(Mechanism::ScramSha256, user, password)
    }

    /// Authenticate as `user` with PLAIN, which sends the password itself: only over
    /// TLS.
    pub fn plain(user: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials::new(Mechanism::Plain, user, password)
    }

    /// Authenticate as `user` with `mechanism`.
    pub fn new(
        mechanism: Mechanism,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Credentials {
        Credentials {
            mechanism,
            user: user.into(),
            password: password.into(),
        }
    }

    /// Reads [`USER_ENV`] (`BROKER_USER`), [`PASSWORD_ENV`] (`BROKER_PASSWORD`) and
    /// [`MECHANISM_ENV`] (`BROKER_SASL_MECHANISM`, default `SCRAM-SHA-256`). `None` if
    /// neither the user nor the password is set (an empty variable counts as unset);
    /// an error if only one is, or if the mechanism is unknown.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use client::{Client, ClientConfig, Credentials};
    ///
    /// let mut config = ClientConfig::default();
    /// if let Some(credentials) = Credentials::from_env()? {
    ///     config = config.credentials(credentials);
    /// }
    /// let client = Client::connect_with("127.0.0.1:7171", config).await?;
    /// # Ok(()) }
    /// ```
    pub fn from_env() -> Result<Option<Credentials>, CredentialsError> {
        Credentials::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) over any lookup of variables by name (for tests,
    /// and programs with their own configuration source).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Credentials>, CredentialsError> {
        let mechanism = match lookup(MECHANISM_ENV) {
            Some(name) if !name.trim().is_empty() => name.parse()?,
            _ => Mechanism::default(),
        };
        // An empty variable counts as unset (`BROKER_USER= cmd` clears it).
        let set = |name| lookup(name).filter(|value: &String| !value.is_empty());
        match (set(USER_ENV), set(PASSWORD_ENV)) {
            (None, None) => Ok(None),
            (Some(user), None) => Err(CredentialsError::MissingPassword { user }),
            (None, Some(_)) => Err(CredentialsError::MissingUser),
            (Some(user), Some(password)) => Ok(Some(Credentials::new(mechanism, user, password))),
        }
    }

    /// The user name: the principal the broker checks ACLs for.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The mechanism.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The password, for the authentication exchange only.
    pub(crate) fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("mechanism", &self.mechanism)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<Option<Credentials>, CredentialsError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Credentials::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn nothing_set_means_no_credentials() {
        assert_eq!(from(&[]), Ok(None));
        // A mechanism alone asks for nothing.
        assert_eq!(from(&[(MECHANISM_ENV, "PLAIN")]), Ok(None));
    }

    #[test]
    fn user_and_password_default_to_scram() {
        let credentials = from(&[(USER_ENV, "alice"), (PASSWORD_ENV, "s3cret")])
            .unwrap()
            .unwrap();
        assert_eq!(credentials, Credentials::scram_sha_256("alice", "s3cret"));
        assert_eq!(credentials.password(), "s3cret");
    }

    #[test]
    fn the_mechanism_is_read_in_any_case() {
        for (name, expected) in [
            ("PLAIN", Mechanism::Plain),
            ("plain", Mechanism::Plain),
            ("scram-sha-256", Mechanism::ScramSha256),
            (" SCRAM-SHA-256 ", Mechanism::ScramSha256),
            ("", Mechanism::ScramSha256),
        ] {
            let credentials = from(&[
                (USER_ENV, "alice"),
                (PASSWORD_ENV, "pw"),
                (MECHANISM_ENV, name),
            ])
            .unwrap()
            .unwrap();
            assert_eq!(credentials.mechanism(), expected, "{name:?}");
        }
    }

    #[test]
    fn half_set_credentials_are_refused() {
        assert_eq!(
            from(&[(USER_ENV, "alice")]),
            Err(CredentialsError::MissingPassword {
                user: "alice".into()
            })
        );
        assert_eq!(
            from(&[(PASSWORD_ENV, "hunter2")]),
            Err(CredentialsError::MissingUser)
        );
        // Empty counts as unset.
        assert_eq!(
            from(&[(USER_ENV, ""), (PASSWORD_ENV, "pw")]),
            Err(CredentialsError::MissingUser)
        );
        assert_eq!(
            from(&[(USER_ENV, "alice"), (PASSWORD_ENV, "")]),
            Err(CredentialsError::MissingPassword {
                user: "alice".into()
            })
        );
        assert_eq!(from(&[(USER_ENV, ""), (PASSWORD_ENV, "")]), Ok(None));
        let unknown = from(&[
            (USER_ENV, "alice"),
            (PASSWORD_ENV, "pw"),
            (MECHANISM_ENV, "SCRAM-SHA-1"),
        ])
        .unwrap_err();
        let text = unknown.to_string();
        assert!(text.contains("\"SCRAM-SHA-1\""), "{text}");
        assert!(
            text.contains("SCRAM-SHA-256") && text.contains("PLAIN"),
            "{text}"
        );
    }

    #[test]
    fn no_message_and_no_debug_shows_the_password() {
        let missing_user = from(&[(PASSWORD_ENV, "hunter2")]).unwrap_err();
        assert!(!missing_user.to_string().contains("hunter2"));
        for credentials in [
            Credentials::scram_sha_256("alice", "hunter2"),
            Credentials::plain("alice", "hunter2"),
        ] {
            let debug = format!("{credentials:?}");
            assert!(!debug.contains("hunter2"), "{debug}");
            assert!(
                debug.contains("alice") && debug.contains("redacted"),
                "{debug}"
            );
        }
    }

    #[test]
    fn mechanism_names_round_trip() {
        for mechanism in Mechanism::ALL {
            assert_eq!(mechanism.name().parse::<Mechanism>(), Ok(mechanism));
            assert_eq!(mechanism.to_string(), mechanism.name());
        }
    }
}
