//! The broker's error type, and the one way an error reaches a client.
//!
//! Every failure a request can meet is a [`BrokerError`]; each variant maps to one
//! wire [`ErrorCode`] ([`BrokerError::code`]) and its message is what the user sees.
//! [`error_frame`] is the only place an error frame is built, whatever the listener:
//! protocol-level refusals (an unreadable frame, a missing handshake, too many
//! connections) are `BrokerError`s too.

use protocol::{ErrorCode, ErrorResponse, FrameError, Message, OpCode};
use thiserror::Error;

/// Anything a request can fail with. Each variant maps to one wire error code; the
/// message is what the user sees.
#[derive(Debug, Error)]
pub enum BrokerError {
    /// A frame that could not be read or decoded; the code says how.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A request before the handshake, or a second handshake.
    #[error("{0}")]
    HandshakeRequired(&'static str),
    /// The handshake offered no version this server speaks.
    #[error(
        "none of the offered protocol versions {offered:?} is supported; this server speaks {:?}",
        protocol::SUPPORTED_VERSIONS
    )]
    UnsupportedVersion {
        /// What the client offered.
        offered: Vec<u16>,
    },
    /// A frame carried a header version other than the negotiated one.
    #[error("this connection negotiated protocol version {negotiated}; the frame carries version {version}")]
    WrongVersion {
        /// The frame's version.
        version: u16,
        /// The connection's.
        negotiated: u16,
    },
    /// An Authenticate exchange failed. Deliberately says nothing else: which part
    /// failed (the user, the password, the message) would help an attacker.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// The broker needs the connection to authenticate first.
    #[error("authenticate first: this broker does not serve unauthenticated clients")]
    AuthenticationRequired,
    /// An ACL refuses the request; nothing changed.
    #[error("not authorized to {operation} {resource} {name:?}")]
    NotAuthorized {
        /// The operation refused (`read`, `write`, ...).
        operation: &'static str,
        /// The resource type (`topic`, `group`, ...).
        resource: &'static str,
        /// The resource's name.
        name: String,
    },
    /// CreateUser for a name that exists.
    #[error("user {0:?} already exists; change its password with 'brokerctl users passwd'")]
    UserExists(String),
    /// AlterUser or DeleteUser for a name that does not exist.
    #[error("user {0:?} does not exist")]
    UnknownUser(String),
    /// The broker is at its connection limit.
    #[error("the broker has too many connections; retry later")]
    TooManyConnections,
    /// No such topic.
    #[error("topic {0:?} does not exist")]
    UnknownTopic(String),
    /// The topic already exists.
    #[error("topic {0:?} already exists")]
    TopicExists(String),
    /// A directory without `topic.toml`, holding files, has the new topic's name.
    #[error("cannot create topic {topic:?}: the data directory holds a directory topics/{topic} without a topic.toml ({contents}; perhaps an earlier topic of that name). The broker does not delete it: restore its topic.toml and restart the broker to get that topic back, or move the directory out of the data directory and create the topic again")]
    TopicDirectoryInTheWay {
        /// The topic.
        topic: String,
        /// What the directory holds.
        contents: String,
    },
    /// No such partition.
    #[error("topic {topic:?} has {count} partitions; partition {partition} does not exist")]
    InvalidPartition {
        /// Topic name.
        topic: String,
        /// Requested partition.
        partition: u32,
        /// Partitions the topic has.
        count: u32,
    },
    /// Bad topic configuration.
    #[error("{0}")]
    InvalidConfig(String),
    /// A request that makes no sense.
    #[error("{0}")]
    InvalidRequest(String),
    /// No such group.
    #[error("consumer group {0:?} does not exist")]
    UnknownGroup(String),
    /// A change that needs a group without members, asked of one that has some.
    #[error("group {group:?} has {members} active member(s) and cannot be {change}; stop its consumers (or wait for their sessions to expire) and try again")]
    GroupNotEmpty {
        /// Group name.
        group: String,
        /// Its live members.
        members: usize,
        /// What was asked: "deleted", "reset", "purged".
        change: String,
    },
    /// Not a member (any more).
    #[error("member {member:?} is not in group {group:?}; join again")]
    UnknownMember {
        /// Group name.
        group: String,
        /// Member id.
        member: String,
    },
    /// The member's generation is old: a rebalance happened.
    #[error("generation {given} is stale, the group is at generation {current}; heartbeat to get the new assignment")]
    StaleGeneration {
        /// Generation in the request.
        given: u32,
        /// The group's.
        current: u32,
    },
    /// A commit for a partition the member does not own.
    #[error(
        "partition {partition} is not assigned to member {member:?} in generation {generation}"
    )]
    NotAssigned {
        /// The partition.
        partition: u32,
        /// The member.
        member: String,
        /// The group's generation.
        generation: u32,
    },
    /// Ack, nack or extension of a message that is not in flight.
    #[error("partition {partition} offset {offset} is not in flight for this group (never delivered, or already settled)")]
    NotInFlight {
        /// Partition.
        partition: u32,
        /// Offset.
        offset: u64,
    },
    /// Heartbeat or deregistration of an instance that is not registered.
    #[error("instance {instance:?} of service {service:?} is not registered (expired or deregistered); register it again")]
    UnknownInstance {
        /// Service.
        service: String,
        /// Instance id.
        instance: String,
    },
    /// No rule matches the routing key.
    #[error("no routing rule matches the routing key {0:?}; add one with 'brokerctl routes add'")]
    Unroutable(String),
    /// No such rule.
    #[error("routing rule {0} does not exist")]
    UnknownRoute(u64),
    /// A rule matching a publish sends it to a topic that does not exist (it did not
    /// open at startup); the publish is refused as a whole.
    #[error("routing rule {route_id} ({pattern} -> {topic}) targets topic {topic:?}, which does not exist; nothing was published. Delete the rule ('brokerctl routes delete {route_id}') or repair the topic")]
    DanglingRoute {
        /// The rule.
        route_id: u64,
        /// Its pattern.
        pattern: String,
        /// The missing topic.
        topic: String,
    },
    /// A topic was deleted but its routing rules could not be (durably) removed.
    #[error("topic {topic:?} was deleted, but deleting its routing rules failed ({reason}); they are deleted at the next start, or delete them with 'brokerctl routes delete'")]
    RoutesNotDeleted {
        /// The deleted topic.
        topic: String,
        /// What failed.
        reason: String,
    },
    /// No such subscription on this connection.
    #[error("subscription {0} is not open on this connection")]
    UnknownSubscription(u64),
    /// A server limit was reached.
    #[error("limit reached: at most {limit} {what}")]
    ResourceLimit {
        /// What is limited, e.g. "subscriptions per connection".
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// A wait passed its timeout.
    #[error("timed out after {timeout_ms} ms waiting for {waiting_for}")]
    Timeout {
        /// What was awaited.
        waiting_for: &'static str,
        /// How long.
        timeout_ms: u64,
    },
    /// An idempotent producer's batch out of sequence: not stored.
    #[error("producer {producer_id} sent sequence {sequence} to partition {partition}, {}", describe_out_of_order(*why))]
    OutOfOrderSequence {
        /// The partition.
        partition: u32,
        /// The producer.
        producer_id: u64,
        /// The batch's sequence.
        sequence: u64,
        /// What the broker expected instead.
        why: crate::partition::OutOfOrder,
    },
    /// Appended, but durability could not be confirmed.
    #[error("appended but not durable: {reason}")]
    NotDurable {
        /// Why (the log's failure).
        reason: String,
    },
    /// The broker is stopping.
    #[error("the broker is shutting down")]
    ShuttingDown,
    /// The partition's log refused to open at startup; the rest of the broker serves.
    #[error("partition {partition} is unavailable: its log refused to open ({reason}); repair or remove it and restart the broker")]
    PartitionUnavailable {
        /// The partition.
        partition: u32,
        /// Why its log refused to open.
        reason: String,
    },
    /// From the log.
    #[error(transparent)]
    Storage(#[from] storage::Error),
    /// A bug.
    #[error("internal error: {0}")]
    Internal(String),
}

fn describe_out_of_order(why: crate::partition::OutOfOrder) -> String {
    use crate::partition::OutOfOrder;
    match why {
        OutOfOrder::Gap { expected } => format!(
            "but expected {expected}: a batch in between is missing, so this one was not \
             stored; the producer must start over with a new producer id"
        ),
        OutOfOrder::TooOld { oldest } => format!(
            "older than the oldest batch the broker remembers for it ({oldest}; it keeps the \
             last {} per partition), so whether it was stored cannot be told: refused, \
             nothing was stored",
            crate::producers::table::WINDOW_BATCHES
        ),
        OutOfOrder::StaleEpoch { current } => format!(
            "from an older epoch than the {current} this partition last stored for the \
             producer: an older instance of it, fenced; nothing was stored"
        ),
    }
}

impl BrokerError {
    /// The wire error code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            BrokerError::Frame(e) => e.code(),
            BrokerError::HandshakeRequired(_) => ErrorCode::HandshakeRequired,
            BrokerError::UnsupportedVersion { .. } | BrokerError::WrongVersion { .. } => {
                ErrorCode::UnsupportedVersion
            }
            BrokerError::TooManyConnections => ErrorCode::TooManyConnections,
            BrokerError::AuthenticationFailed => ErrorCode::AuthenticationFailed,
            BrokerError::AuthenticationRequired => ErrorCode::AuthenticationRequired,
            BrokerError::NotAuthorized { .. } => ErrorCode::NotAuthorized,
            BrokerError::UserExists(_) => ErrorCode::UserExists,
            BrokerError::UnknownUser(_) => ErrorCode::UnknownUser,
            BrokerError::UnknownTopic(_) | BrokerError::DanglingRoute { .. } => {
                ErrorCode::UnknownTopic
            }
            BrokerError::TopicExists(_) => ErrorCode::TopicExists,
            BrokerError::InvalidPartition { .. } | BrokerError::NotAssigned { .. } => {
                ErrorCode::InvalidPartition
            }
            BrokerError::InvalidConfig(_) => ErrorCode::InvalidConfig,
            BrokerError::InvalidRequest(_) | BrokerError::GroupNotEmpty { .. } => {
                ErrorCode::InvalidRequest
            }
            BrokerError::UnknownGroup(_) => ErrorCode::UnknownGroup,
            BrokerError::UnknownMember { .. } => ErrorCode::UnknownMember,
            BrokerError::StaleGeneration { .. } => ErrorCode::StaleGeneration,
            BrokerError::UnknownSubscription(_) => ErrorCode::UnknownSubscription,
            BrokerError::NotInFlight { .. } => ErrorCode::NotInFlight,
            BrokerError::UnknownInstance { .. } => ErrorCode::UnknownInstance,
            BrokerError::Unroutable(_) => ErrorCode::Unroutable,
            BrokerError::UnknownRoute(_) => ErrorCode::UnknownRoute,
            BrokerError::ResourceLimit { .. } | BrokerError::ShuttingDown => {
                ErrorCode::ResourceLimit
            }
            BrokerError::Timeout { .. } => ErrorCode::Timeout,
            BrokerError::NotDurable { .. } => ErrorCode::NotDurable,
            BrokerError::OutOfOrderSequence { .. } => ErrorCode::OutOfOrderSequence,
            BrokerError::PartitionUnavailable { .. }
            | BrokerError::RoutesNotDeleted { .. }
            | BrokerError::TopicDirectoryInTheWay { .. } => ErrorCode::StorageError,
            BrokerError::Storage(e) => match e {
                storage::Error::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
                storage::Error::InvalidBatch(protocol::batch::BatchError::CrcMismatch {
                    ..
                }) => ErrorCode::CrcMismatch,
                storage::Error::InvalidBatch(_) | storage::Error::BatchTooLarge { .. } => {
                    ErrorCode::InvalidBatch
                }
                _ => ErrorCode::StorageError,
            },
            BrokerError::Internal(_) => ErrorCode::Internal,
        }
    }
}

/// The error frame answering request `correlation_id` of operation `op`: the only
/// place one is built. In debug builds it also checks that `docs/protocol.md` lists
/// the code for the operation, so a test that provokes an undocumented code fails.
pub fn error_frame(correlation_id: u32, op: u16, error: &BrokerError) -> Message {
    let code = error.code();
    // `unknown_operation` answers a code the connection's version does not define,
    // which may be one a later version does: the op's own list does not apply.
    let listed = OpCode::from_u16(op).filter(|_| code != ErrorCode::UnknownOperation);
    if let Some(known) = listed {
        debug_assert!(
            known.may_fail_with(code),
            "{} answered {} ({error}), which docs/protocol.md does not list for it",
            known.name(),
            code.name()
        );
    }
    Message::Error {
        correlation_id,
        op,
        error: ErrorResponse {
            code,
            message: redact_data_paths(&error.to_string()),
        },
    }
}

/// `message` with every path into the data directory cut to the part below `topics/`, so that a client learns which topic's file is damaged but not where the
/// broker keeps its data. The log keeps the full path for the operator.
pub fn redact_data_paths(message: &str) -> String {
    const MARK: &str = "/topics/";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(MARK) {
        let token_start = rest[..at]
            .rfind(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '(' | '='))
            .map_or(0, |i| i + 1);
        out.push_str(&rest[..token_start]);
        rest = &rest[at + MARK.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_of_a_later_version_is_answered_unknown_operation() {
        // A version-1 connection sending ListOffsets (version 2): the op is known to
        // this build but not to the connection, and its own error list does not apply.
        let op = OpCode::ListOffsets.as_u16();
        let error = BrokerError::Frame(FrameError::Invalid {
            correlation_id: 3,
            op,
            source: protocol::DecodeError::UnknownOperation { op },
        });
        let Message::Error { error, .. } = error_frame(3, op, &error) else {
            panic!("not an error frame")
        };
        assert_eq!(error.code, ErrorCode::UnknownOperation);
    }

    #[test]
    fn data_paths_are_cut_below_topics() {
        assert_eq!(
            redact_data_paths("corrupt data in /srv/broker/data/topics/orders/3/00000000000000000000.log at byte 61: bad"),
            "corrupt data in orders/3/00000000000000000000.log at byte 61: bad"
        );
        assert_eq!(
            redact_data_paths("lost data in \"/d/topics/a/0\" and /d/topics/b/1"),
            "lost data in \"a/0\" and b/1"
        );
        assert_eq!(redact_data_paths("no path here"), "no path here");
        assert_eq!(
            redact_data_paths("relative ./data/topics/x/0"),
            "relative x/0"
        );
    }
}
