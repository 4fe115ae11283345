//! The client's error type.
//!
//! Every failure a caller can see is one [`ClientError`] variant, and each variant's
//! message says what to do about it. Errors are `Clone` because one failure often
//! reaches many waiters: a produce batch that fails fails every record in it, and a
//! dropped connection fails every request in flight on it.

use std::sync::Arc;

use protocol::ErrorCode;
use thiserror::Error;

use crate::credentials::Mechanism;

/// Anything a client call can fail with.
#[derive(Debug, Clone, Error)]
pub enum ClientError {
    /// The broker address is not `host:port`; nothing was tried.
    #[error(
        "{addr:?} is not a broker address: {reason}; give it as HOST:PORT, \
         e.g. 127.0.0.1:7171 (set it with --addr or BROKER_ADDR)"
    )]
    InvalidAddress {
        /// The address given.
        addr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A TLS file of the client's ([`TlsConfig`](crate::TlsConfig)) could not be used;
    /// nothing was tried.
    #[error(
        "cannot use the TLS {setting} file {path}: {reason} (set it with --tls-{setting} \
         or BROKER_TLS_{})",
        .setting.to_uppercase()
    )]
    TlsFile {
        /// Which file: `ca`, `cert` or `key`.
        setting: &'static str,
        /// The file.
        path: String,
        /// What is wrong, in words (never the file's content).
        reason: String,
    },
    /// TLS with the broker failed in a way retrying cannot mend: its certificate is
    /// not trusted, has expired or names another host; it refused this client's
    /// certificate; or one side does not speak TLS. Not retried.
    #[error("TLS with the broker at {addr} failed: {reason}")]
    Tls {
        /// The address connected to.
        addr: String,
        /// What failed, and what to do about it.
        reason: String,
    },
    /// No connection could be opened, even after retrying with backoff. The message's
    /// advice depends on how the last attempt failed ([`connect_hint`]).
    #[error(
        "cannot connect to the broker at {addr} after {attempts} attempt(s): {cause}; {}",
        connect_hint(.addr, .cause)
    )]
    Connect {
        /// The address tried.
        addr: String,
        /// How many connection attempts were made.
        attempts: u32,
        /// The last attempt's error (part of the message, so not also a `source`).
        cause: Arc<std::io::Error>,
    },
    /// The connection dropped (or failed) while this request was waiting for its
    /// answer. The request may or may not have taken effect on the broker.
    #[error(
        "the connection to the broker at {addr} was lost before the answer arrived; \
         the request may or may not have been applied (the next request reconnects)"
    )]
    ConnectionLost {
        /// The broker's address.
        addr: String,
    },
    /// The broker answered with an error status.
    #[error("the broker refused the request ({code}): {message}")]
    Server {
        /// The wire error code.
        code: ErrorCode,
        /// The broker's explanation.
        message: String,
    },
    /// No answer arrived in time.
    #[error(
        "no answer to {op} within {timeout_ms} ms; the broker may be overloaded or \
         unreachable (raise ClientConfig::request_timeout if this is expected)"
    )]
    Timeout {
        /// The operation that timed out.
        op: &'static str,
        /// How long the client waited.
        timeout_ms: u64,
    },
    /// Something listens at the address, but what it answered the handshake with is
    /// not the broker protocol: another service's port. Not retried.
    #[error(
        "{addr} is not a brokerd: it answered the handshake with bytes that are not the \
         broker protocol ({detail}); check the host and port (set the address with \
         --addr or BROKER_ADDR)"
    )]
    NotABroker {
        /// The address connected to.
        addr: String,
        /// What was wrong with the answer.
        detail: String,
    },
    /// The broker sent something this client cannot make sense of: a frame that does
    /// not decode, or a response of the wrong kind. Usually a version mismatch.
    #[error("protocol error: {0}; the broker and this client may be different versions")]
    Protocol(String),
    /// A fetched batch failed its checksum or structure check.
    #[error("a fetched batch from partition {partition} is damaged: {cause}")]
    CorruptBatch {
        /// The partition it came from.
        partition: u32,
        /// What is wrong with it.
        cause: protocol::batch::BatchError,
    },
    /// The broker answered a read of `offset` with batches that do not hold it (the
    /// first starts past it, or one does not follow on from the one before): using
    /// them would skip records, so they are refused.
    #[error("a read of partition {partition} at offset {offset} returned batches starting at {first}: records would be skipped")]
    MisplacedBatch {
        /// The partition read.
        partition: u32,
        /// The offset asked for (or expected next).
        offset: u64,
        /// Where the batch that was returned starts.
        first: u64,
    },
    /// A caller-supplied value is unusable (no such partition, record too large, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The request needs a later protocol version than the broker speaks (an older
    /// brokerd): it was not sent.
    #[error("not supported by this broker: {0}")]
    Unsupported(String),
    /// The producer, consumer or subscription was closed, or its background task
    /// ended.
    #[error("{0} is closed; create a new one")]
    Closed(&'static str),
    /// Authenticating as `user` failed. Not retried: another attempt with the same
    /// credentials would fail the same way. A wrong password and an unknown user give
    /// the same error, as the broker does not say which it was.
    #[error("authentication failed for user {user:?} ({mechanism}) at {addr}: {reason}")]
    Authentication {
        /// The broker's address.
        addr: String,
        /// The user the client tried to authenticate as.
        user: String,
        /// The mechanism it used.
        mechanism: Mechanism,
        /// What went wrong.
        reason: AuthFailure,
    },
    /// The broker needs clients to authenticate before anything else, and this client
    /// was given no credentials.
    #[error(
        "the broker at {addr} requires authentication and this client has no credentials: \
         configure them (ClientConfig::credentials or Credentials::from_env; for brokerctl, \
         --user or BROKER_USER with BROKER_PASSWORD or --password-file)"
    )]
    AuthenticationRequired {
        /// The broker's address.
        addr: String,
    },
}

/// Why an authentication failed ([`ClientError::Authentication`]). No variant's
/// message shows the password or anything derived from it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthFailure {
    /// The broker refused (`authentication_failed`). It answers so for a wrong
    /// password, an unknown user, a mechanism it does not accept and a broker with
    /// authentication off alike, on purpose.
    #[error(
        "the broker refused the credentials: wrong user name or password, a mechanism it \
         does not accept, or authentication is off there (it does not say which)"
    )]
    Refused,
    /// The broker's SCRAM signature is wrong: it does not hold the user's verifier, so
    /// it is not the broker the user was created on, or something between is
    /// impersonating it. The connection is dropped.
    #[error(
        "the broker could not prove that it knows the user's credential (wrong SCRAM \
         server signature): it may not be the broker you meant to reach, so the \
         connection was dropped"
    )]
    ServerNotVerified,
    /// PLAIN would send the password in the clear on an unencrypted connection; the
    /// client refuses before sending anything.
    #[error(
        "PLAIN would send the password in the clear on this unencrypted connection: use \
         SCRAM-SHA-256, or connect with TLS"
    )]
    PlainWithoutTls,
    /// The broker speaks a protocol version from before authentication (3).
    #[error("the broker speaks protocol version {version}; authentication needs version 3 (upgrade brokerd)")]
    BrokerTooOld {
        /// The version the broker chose.
        version: u16,
    },
    /// The user name or password cannot be used (empty, or too long).
    #[error("{0}")]
    InvalidCredentials(String),
    /// The broker's messages did not follow the mechanism (malformed, a nonce that does
    /// not continue ours, too few or too many PBKDF2 iterations).
    #[error("the exchange broke off: {0}")]
    Exchange(String),
    /// The broker answered an Authenticate with another error than
    /// `authentication_failed`.
    #[error("the broker answered {code}: {message}")]
    Server {
        /// The wire error code.
        code: ErrorCode,
        /// The broker's explanation.
        message: String,
    },
}

/// The advice of a [`ClientError::Connect`], from how its last attempt failed.
fn connect_hint(addr: &str, cause: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match cause.kind() {
        ErrorKind::ConnectionRefused => {
            format!("is brokerd running at {addr}? (set the address with --addr or BROKER_ADDR)")
        }
        ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::UnexpectedEof
        | ErrorKind::BrokenPipe => format!(
            "something at {addr} accepts connections but closed them during the handshake: \
             a brokerd that is shutting down or overloaded (see its log), or a proxy or \
             service that is not a brokerd"
        ),
        ErrorKind::TimedOut => format!(
            "nothing at {addr} completed the handshake in time: check that the address is \
             reachable and that brokerd runs there"
        ),
        _ => format!(
            "check that brokerd is running at {addr} (set the address with --addr or BROKER_ADDR)"
        ),
    }
}

impl ClientError {
    /// The broker's error code, if the broker refused the request.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Server { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True for failures of the connection itself (as opposed to refusals by the
    /// broker): trying again later may succeed.
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. }
                | ClientError::ConnectionLost { .. }
                | ClientError::Timeout { .. }
        )
    }

    pub(crate) fn unexpected(op: &'static str, got: &protocol::Response) -> ClientError {
        ClientError::Protocol(format!(
            "the answer to {op} was a {} response",
            got.op_code().name()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_tell_the_user_what_to_do() {
        let e = ClientError::Connect {
            addr: "127.0.0.1:1".into(),
            attempts: 3,
            cause: Arc::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        };
        let text = e.to_string();
        assert!(text.contains("127.0.0.1:1"), "{text}");
        assert!(
            text.contains("is brokerd running at 127.0.0.1:1?"),
            "{text}"
        );
        assert!(text.contains("BROKER_ADDR"), "{text}");
        assert!(e.is_connection_error());
        let e = ClientError::Server {
            code: ErrorCode::UnknownTopic,
            message: "topic \"x\" does not exist".into(),
        };
        assert_eq!(e.code(), Some(ErrorCode::UnknownTopic));
        assert!(e.to_string().contains("unknown_topic"));
        assert!(!e.is_connection_error());
    }
}
