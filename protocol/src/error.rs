//! Error types: the status codes that travel on the wire ([`ErrorCode`]) and the local
//! errors of decoding ([`DecodeError`]) and encoding ([`EncodeError`]).
//!
//! Every way a body can be malformed has its own [`DecodeError`] variant, so tests and
//! fuzzers can tell them apart, and each maps to the [`ErrorCode`] a server answers
//! with ([`DecodeError::code`]). `docs/protocol.md` ("Error codes") says when each code
//! is used; keep the two in step.

use thiserror::Error;

use crate::batch::BatchError;

macro_rules! error_codes {
    ($($(#[$doc:meta])* $name:ident = $value:literal, $wire:literal, since $since:literal $(else $fallback:ident)?;)*) => {
        /// A response status other than success. The numeric values are part of the
        /// protocol and never change meaning; new codes get new numbers.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[cfg_attr(test, derive(proptest_derive::Arbitrary))]
        #[repr(u16)]
        pub enum ErrorCode {
            $($(#[$doc])* $name = $value,)*
        }

        impl ErrorCode {
            /// Every code, in numeric order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name,)*];

            /// The code for a wire value; `None` for 0 (success) and unknown values.
            pub fn from_u16(value: u16) -> Option<ErrorCode> {
                match value {
                    $($value => Some(ErrorCode::$name),)*
                    _ => None,
                }
            }

            /// The snake_case name used in `docs/protocol.md` and in logs.
            pub fn name(self) -> &'static str {
                match self {
                    $(ErrorCode::$name => $wire,)*
                }
            }

            /// The protocol version that introduced the code.
            pub fn since(self) -> u16 {
                match self {
                    $(ErrorCode::$name => $since,)*
                }
            }

            /// The code a peer speaking `version` is sent in place of this one: the
            /// code itself if `version` defines it, else the older code the table
            /// names for it (which a peer of that version understands).
            pub fn for_version(self, version: u16) -> ErrorCode {
                if version >= self.since() {
                    return self;
                }
                #[allow(unreachable_code)]
                match self {
                    $(ErrorCode::$name => { $(return ErrorCode::$fallback.for_version(version);)? self })*
                }
            }
        }
    };
}

error_codes! {
    /// The client speaks no protocol version the server does, or a frame's header
    /// carries a version other than the negotiated one.
    UnsupportedVersion = 1, "unsupported_version", since 1;
    /// The frame could not be decoded: truncated body, trailing bytes, bad UTF-8,
    /// absurd count, invalid enum value or flags.
    MalformedFrame = 2, "malformed_frame", since 1;
    /// The frame's length prefix exceeds the receiver's maximum frame size.
    FrameTooLarge = 3, "frame_too_large", since 1;
    /// The header names an operation code this version does not define.
    UnknownOperation = 4, "unknown_operation", since 1;
    /// A request arrived before a successful handshake, or a second handshake arrived.
    HandshakeRequired = 5, "handshake_required", since 1;
    /// The credentials were rejected or the mechanism is not supported.
    AuthenticationFailed = 6, "authentication_failed", since 1;
    /// Well-formed but semantically invalid request (zero partitions, empty name, ...).
    InvalidRequest = 7, "invalid_request", since 1;
    /// A produced batch's CRC does not match its contents.
    CrcMismatch = 8, "crc_mismatch", since 1;
    /// A produced batch's CRC matches but its structure is invalid.
    InvalidBatch = 9, "invalid_batch", since 1;
    /// The named topic does not exist.
    UnknownTopic = 10, "unknown_topic", since 1;
    /// CreateTopic for a name that already exists.
    TopicExists = 11, "topic_exists", since 1;
    /// The partition does not exist in the topic.
    InvalidPartition = 12, "invalid_partition", since 1;
    /// A topic config key is unknown or its value does not parse.
    InvalidConfig = 13, "invalid_config", since 1;
    /// The offset is outside `[log start offset, high watermark]`.
    OffsetOutOfRange = 14, "offset_out_of_range", since 1;
    /// The principal may not do this operation on this resource (the message names
    /// both). Nothing changed.
    NotAuthorized = 15, "not_authorized", since 3 else AuthenticationFailed;
    /// The broker needs the connection to authenticate (Authenticate) before this.
    AuthenticationRequired = 16, "authentication_required", since 3 else HandshakeRequired;
    /// CreateUser for a name that already exists.
    UserExists = 17, "user_exists", since 3 else InvalidRequest;
    /// AlterUser or DeleteUser for a user that does not exist.
    UnknownUser = 18, "unknown_user", since 3 else InvalidRequest;
    /// The named consumer group does not exist.
    UnknownGroup = 20, "unknown_group", since 1;
    /// The member id is not (or no longer) a member of the group.
    UnknownMember = 21, "unknown_member", since 1;
    /// The request carries a generation older than the group's current one.
    StaleGeneration = 22, "stale_generation", since 1;
    /// The group is rebalancing; heartbeat to learn the new assignment, then retry.
    RebalanceInProgress = 23, "rebalance_in_progress", since 1;
    /// The subscription id is not open on this connection.
    UnknownSubscription = 24, "unknown_subscription", since 1;
    /// InstanceHeartbeat or DeregisterInstance for an instance that is not registered
    /// (never was, expired, or deregistered): register again.
    UnknownInstance = 26, "unknown_instance", since 1;
    /// Publish with a routing key that no rule matches (and no unroutable topic is set).
    Unroutable = 27, "unroutable", since 1;
    /// DeleteRoute for a rule id that does not exist.
    UnknownRoute = 28, "unknown_route", since 1;
    /// Ack, Nack or ExtendDeadline for an offset that is not in flight for the group.
    NotInFlight = 25, "not_in_flight", since 1;
    /// The append happened but could not be made durable (fsync failed).
    NotDurable = 30, "not_durable", since 1;
    /// The storage layer failed (I/O error, full disk).
    StorageError = 31, "storage_error", since 1;
    /// An idempotent producer's batch out of sequence for its partition: it skips a
    /// sequence (a batch in between is missing), or it is older than the batches the
    /// broker remembers for the producer. Never stored.
    OutOfOrderSequence = 36, "out_of_order_sequence", since 2 else InvalidRequest;
    /// The request's timeout passed before it could complete.
    Timeout = 32, "timeout", since 1;
    /// The server refuses the connection: too many open.
    TooManyConnections = 40, "too_many_connections", since 1;
    /// A server limit was hit (subscriptions per connection, in-flight requests, ...).
    ResourceLimit = 41, "resource_limit", since 1;
    /// A bug or unexpected condition in the server.
    Internal = 99, "internal", since 1;
}

impl ErrorCode {
    /// The wire value.
    pub fn as_u16(self) -> u16 {
        self as u16
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a frame body (or a frame header's fields) could not be decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The header's protocol version is not one this build speaks.
    #[error(
        "protocol version {version} is not supported (this build speaks {:?})",
        crate::SUPPORTED_VERSIONS
    )]
    UnsupportedVersion {
        /// The header's version.
        version: u16,
    },
    /// The header's operation code is not defined.
    #[error("unknown operation code {op}")]
    UnknownOperation {
        /// The header's op code.
        op: u16,
    },
    /// Undefined flag bits are set, or both RESPONSE and PUSH are.
    #[error("invalid frame flags {flags:#06x}")]
    InvalidFlags {
        /// The header's flags.
        flags: u16,
    },
    /// The operation cannot travel in this direction (a pushed Handshake, a Delivery
    /// request).
    #[error("operation {op} cannot be sent with flags {flags:#06x}")]
    WrongDirection {
        /// The header's op code.
        op: u16,
        /// The header's flags.
        flags: u16,
    },
    /// The body ended in the middle of a field.
    #[error("body truncated reading {what}: needed {needed} bytes, {remaining} remain")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes the field needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// Bytes remain after the last field of the body.
    #[error("{count} unexpected bytes after the end of the body")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// A string field is not valid UTF-8.
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 {
        /// The field.
        what: &'static str,
    },
    /// An array count larger than the remaining bytes could hold.
    #[error("{what} claims {count} elements but only {remaining} bytes remain (each element is at least {min_element_bytes})")]
    AbsurdCount {
        /// The array.
        what: &'static str,
        /// The declared count.
        count: u32,
        /// Bytes left in the body.
        remaining: usize,
        /// Smallest encoding of one element.
        min_element_bytes: usize,
    },
    /// An enum tag, bool or presence byte outside its defined values.
    #[error("invalid value {value} for {what}")]
    InvalidValue {
        /// The field.
        what: &'static str,
        /// The value found.
        value: u64,
    },
    /// A response status that is neither success nor a defined error code.
    #[error("unknown response status {code}")]
    UnknownErrorCode {
        /// The status found.
        code: u16,
    },
    /// A carried record batch is damaged; CRC mismatches land here as
    /// [`BatchError::CrcMismatch`].
    #[error("invalid record batch: {0}")]
    Batch(#[from] BatchError),
}

impl DecodeError {
    /// The status a server answers with when a request fails to decode this way.
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            DecodeError::UnknownOperation { .. } => ErrorCode::UnknownOperation,
            DecodeError::Batch(BatchError::CrcMismatch { .. }) => ErrorCode::CrcMismatch,
            DecodeError::Batch(_) => ErrorCode::InvalidBatch,
            DecodeError::InvalidFlags { .. }
            | DecodeError::WrongDirection { .. }
            | DecodeError::Truncated { .. }
            | DecodeError::TrailingBytes { .. }
            | DecodeError::InvalidUtf8 { .. }
            | DecodeError::AbsurdCount { .. }
            | DecodeError::InvalidValue { .. }
            | DecodeError::UnknownErrorCode { .. } => ErrorCode::MalformedFrame,
        }
    }
}

/// Why a message could not be encoded. Nothing is left in the output buffer when
/// encoding fails.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// A field is longer than its length prefix can describe.
    #[error("{what} is {len} bytes, the most its length prefix allows is {max}")]
    FieldTooLong {
        /// The field.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The largest allowed.
        max: usize,
    },
    /// The whole frame would exceed the maximum frame size the peer accepts.
    #[error("frame would be {len} bytes, the limit is {max}; send smaller batches")]
    FrameTooLarge {
        /// Bytes after the length prefix.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The message (an operation, a field or a value) needs a later protocol version
    /// than the connection negotiated.
    #[error("{what} needs protocol version {since}; this connection speaks version {version}")]
    NotInVersion {
        /// What needs the later version.
        what: &'static str,
        /// The version that introduced it.
        since: u16,
        /// The connection's version.
        version: u16,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reaches_a_peer_of_every_version_as_one_it_knows() {
        for &code in ErrorCode::ALL {
            for &version in crate::SUPPORTED_VERSIONS {
                let sent = code.for_version(version);
                assert!(
                    sent.since() <= version,
                    "{code} would reach a version-{version} peer as {sent}, which it does not know"
                );
                if code.since() <= version {
                    assert_eq!(sent, code, "a known code is sent as itself");
                }
            }
        }
    }

    #[test]
    fn codes_round_trip_and_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for &code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_u16(code.as_u16()), Some(code));
            assert!(seen.insert(code.as_u16()));
            assert_ne!(code.as_u16(), 0, "0 is success");
        }
        assert_eq!(ErrorCode::from_u16(0), None);
    }
}
