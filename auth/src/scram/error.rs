//! [`ScramError`], every way a SCRAM exchange or a stored credential can be refused.

use thiserror::Error;

/// Why a SCRAM message, exchange or stored credential was refused.
///
/// No variant's `Display` echoes the peer's bytes, a password, a proof or a key: a
/// server can log any of them. What a server *answers* is another matter: it should say
/// only "authentication failed" whatever the variant, so that a peer learns nothing
/// from the difference; [`ScramError::is_bad_credentials`] tells the one variant that
/// means "wrong password or no such user" from the peer's protocol mistakes, for logs
/// and failure counters.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScramError {
    /// The message is longer than [`MAX_MESSAGE_BYTES`](super::MAX_MESSAGE_BYTES).
    #[error("SCRAM message of {len} bytes is longer than the limit of {max}")]
    MessageTooLong {
        /// The message's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// SCRAM messages are UTF-8 text; this one is not.
    #[error("SCRAM message is not UTF-8")]
    NotUtf8,
    /// The message does not follow the grammar of RFC 5802 section 7.
    #[error("malformed SCRAM message: {what}")]
    Malformed {
        /// Which part of the grammar was broken (a fixed description, never the
        /// message's own bytes).
        what: &'static str,
    },
    /// An attribute that holds base64 (`s`, `c`, `p`, `v`) does not decode.
    #[error("the SCRAM attribute `{attribute}=` is not valid base64 of an acceptable length")]
    InvalidBase64 {
        /// The attribute's name.
        attribute: char,
    },
    /// The client asked for channel binding (`p=`), which needs the -PLUS mechanism this
    /// broker does not offer.
    #[error("channel binding (SCRAM-SHA-256-PLUS) is not offered: use the GS2 flag `n` or `y`")]
    ChannelBindingUnsupported,
    /// The client-final message's `c=` does not repeat the client-first GS2 header.
    #[error(
        "the channel-binding attribute does not repeat the GS2 header of the client-first message"
    )]
    ChannelBindingMismatch,
    /// The client asked to act as another user (`a=`); only the authenticated user's
    /// own identity (or none) is accepted.
    #[error("the authorization identity differs from the user name: acting as another user is not supported")]
    AuthzidMismatch,
    /// The peer sent a mandatory extension (`m=`), which this side does not support.
    #[error("a SCRAM mandatory extension (m=) was sent, and none is supported")]
    MandatoryExtension,
    /// The user name is empty or longer than
    /// [`MAX_USER_NAME_BYTES`](crate::MAX_USER_NAME_BYTES).
    #[error("a user name must have 1 to {max} bytes; this one has {len}")]
    UserNameLength {
        /// The name's length in bytes (after unescaping).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The password is longer than [`MAX_PASSWORD_BYTES`](crate::MAX_PASSWORD_BYTES).
    #[error("a password may have at most {max} bytes")]
    PasswordTooLong {
        /// The limit.
        max: usize,
    },
    /// A nonce is empty, too long, or has a character outside RFC 5802's `printable`.
    #[error("a nonce must be 1 to {max} printable ASCII characters other than ','")]
    InvalidNonce {
        /// The limit on this nonce, in bytes.
        max: usize,
    },
    /// The server's nonce does not extend the client's, or the client-final nonce is not
    /// the combined nonce of the server-first message.
    #[error("the nonce does not continue the exchange's nonce")]
    NonceMismatch,
    /// A salt is empty or longer than [`MAX_SALT_BYTES`](super::MAX_SALT_BYTES).
    #[error("a salt must have 1 to {max} bytes; this one has {len}")]
    SaltLength {
        /// The salt's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An iteration count below [`MIN_ITERATIONS`](super::MIN_ITERATIONS): too cheap to
    /// brute-force against, so refused on both sides.
    #[error("iteration count {iterations} is below the minimum of {min}")]
    TooFewIterations {
        /// The count offered.
        iterations: u32,
        /// The minimum.
        min: u32,
    },
    /// An iteration count above [`MAX_ITERATIONS`](super::MAX_ITERATIONS): refused so
    /// that a hostile server cannot make a client spin.
    #[error("iteration count above the limit of {max}")]
    TooManyIterations {
        /// The limit.
        max: u32,
    },
    /// Wrong password or unknown user: the two are deliberately one variant.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// The server answered `e=` in its final message.
    #[error("the server refused the authentication ({reason})")]
    ServerRejected {
        /// The server's `server-error-value`, reduced to at most 64 printable ASCII
        /// characters.
        reason: String,
    },
    /// The server's signature is wrong: it does not hold this user's verifier, so the
    /// client must not trust the connection.
    #[error("the server could not prove that it knows the credential (server signature mismatch)")]
    ServerSignatureMismatch,
    /// The text form of a [`StoredCredential`](super::StoredCredential) does not parse.
    #[error("malformed stored credential ({what}); expected SCRAM-SHA-256:<iterations>:<base64 salt>:<base64 StoredKey>:<base64 ServerKey>")]
    InvalidCredential {
        /// Which field was wrong.
        what: &'static str,
    },
}

impl ScramError {
    /// Whether this is the "wrong password or unknown user" outcome rather than a
    /// malformed or unsupported message. Either way a server answers only
    /// "authentication failed"; this is for its logs and failure counters.
    pub fn is_bad_credentials(&self) -> bool {
        matches!(self, ScramError::AuthenticationFailed)
    }

    pub(crate) fn malformed(what: &'static str) -> ScramError {
        ScramError::Malformed { what }
    }
}
