//! Which error codes each operation may answer with: the "Errors:" line of every
//! operation in `docs/protocol.md`, as data. `tests/spec_errors.rs` checks the two
//! agree, and the server checks every error it sends against this table.

use super::OpCode;
use crate::ErrorCode;

/// Codes any request may be answered with, whatever its operation: a frame that does
/// not decode, a version or handshake problem, an authentication or authorization
/// refusal, a server limit (including the broker
/// shutting down), or a bug.
pub const ANY_REQUEST: &[ErrorCode] = &[
    ErrorCode::MalformedFrame,
    ErrorCode::FrameTooLarge,
    ErrorCode::UnsupportedVersion,
    ErrorCode::HandshakeRequired,
    ErrorCode::AuthenticationRequired,
    ErrorCode::NotAuthorized,
    ErrorCode::ResourceLimit,
    ErrorCode::Internal,
];

impl OpCode {
    /// The codes `docs/protocol.md` lists for this operation, beyond [`ANY_REQUEST`].
    pub fn errors(self) -> &'static [ErrorCode] {
        use ErrorCode::*;
        match self {
            OpCode::Handshake => &[
                UnsupportedVersion,
                HandshakeRequired,
                AuthenticationFailed,
                TooManyConnections,
            ],
            OpCode::Authenticate => &[AuthenticationFailed, InvalidRequest],
            OpCode::WhoAmI | OpCode::ListAcls | OpCode::ListUsers => &[],
            OpCode::CreateAcls | OpCode::DeleteAcls => {
                &[InvalidRequest, StorageError, Timeout, NotDurable]
            }
            OpCode::CreateUser => &[
                UserExists,
                InvalidRequest,
                StorageError,
                Timeout,
                NotDurable,
            ],
            OpCode::AlterUser | OpCode::DeleteUser => &[
                UnknownUser,
                InvalidRequest,
                StorageError,
                Timeout,
                NotDurable,
            ],
            OpCode::CreateTopic => &[TopicExists, InvalidConfig, InvalidRequest, StorageError],
            OpCode::DeleteTopic => &[UnknownTopic, InvalidRequest, StorageError],
            OpCode::AlterTopic => &[UnknownTopic, InvalidConfig, InvalidRequest, StorageError],
            OpCode::CreatePartitions => {
                &[UnknownTopic, InvalidConfig, InvalidRequest, StorageError]
            }
            OpCode::ListTopics => &[],
            OpCode::DescribeTopic => &[UnknownTopic],
            OpCode::DeleteRecords => {
                &[UnknownTopic, InvalidPartition, InvalidRequest, StorageError]
            }
            OpCode::Produce => &[
                UnknownTopic,
                InvalidPartition,
                InvalidRequest,
                CrcMismatch,
                InvalidBatch,
                Timeout,
                NotDurable,
                StorageError,
                OutOfOrderSequence,
            ],
            OpCode::InitProducer => &[StorageError],
            OpCode::Fetch => &[
                UnknownTopic,
                InvalidPartition,
                OffsetOutOfRange,
                StorageError,
            ],
            OpCode::ListOffsets => &[UnknownTopic, InvalidPartition, StorageError],
            OpCode::Subscribe => &[
                UnknownTopic,
                InvalidPartition,
                OffsetOutOfRange,
                UnknownGroup,
                UnknownMember,
            ],
            OpCode::Credit => &[UnknownSubscription, InvalidRequest],
            OpCode::Unsubscribe => &[UnknownSubscription],
            OpCode::Delivery => &[],
            OpCode::JoinGroup => &[
                UnknownTopic,
                UnknownMember,
                InvalidRequest,
                InvalidConfig,
                StorageError,
                Timeout,
                NotDurable,
            ],
            OpCode::DeleteGroup | OpCode::PurgeGroup => &[
                UnknownGroup,
                InvalidRequest,
                StorageError,
                Timeout,
                NotDurable,
            ],
            OpCode::ResetOffsets => &[
                UnknownGroup,
                UnknownTopic,
                InvalidPartition,
                InvalidRequest,
                StorageError,
                Timeout,
                NotDurable,
            ],
            OpCode::Heartbeat => &[UnknownGroup, UnknownMember],
            OpCode::LeaveGroup => &[UnknownGroup, UnknownMember],
            OpCode::CommitOffsets => &[
                UnknownGroup,
                UnknownMember,
                UnknownTopic,
                StaleGeneration,
                InvalidPartition,
                InvalidRequest,
                StorageError,
                Timeout,
                NotDurable,
            ],
            OpCode::FetchOffsets => &[UnknownTopic],
            OpCode::ListGroups => &[],
            OpCode::DescribeGroup => &[UnknownGroup, UnknownTopic],
            OpCode::Ack | OpCode::Nack => &[
                UnknownGroup,
                InvalidPartition,
                InvalidRequest,
                NotInFlight,
                StorageError,
                Timeout,
                NotDurable,
            ],
            OpCode::ExtendDeadline => {
                &[UnknownGroup, InvalidPartition, InvalidRequest, NotInFlight]
            }
            OpCode::ServerStats => &[],
            OpCode::TopicStats => &[UnknownTopic],
            OpCode::RegisterInstance => &[InvalidRequest, StorageError, Timeout, NotDurable],
            OpCode::InstanceHeartbeat => &[UnknownInstance, StorageError],
            OpCode::DeregisterInstance => &[UnknownInstance, StorageError, Timeout, NotDurable],
            OpCode::ListServices => &[],
            OpCode::DescribeService => &[],
            OpCode::AddRoute => &[
                InvalidRequest,
                UnknownTopic,
                StorageError,
                Timeout,
                NotDurable,
            ],
            OpCode::DeleteRoute => &[UnknownRoute, StorageError, Timeout, NotDurable],
            OpCode::ListRoutes => &[],
            OpCode::Publish => &[
                Unroutable,
                UnknownTopic,
                InvalidRequest,
                CrcMismatch,
                InvalidBatch,
                Timeout,
                NotDurable,
                StorageError,
            ],
        }
    }

    /// Whether a request of this operation may be answered with `code`.
    pub fn may_fail_with(self, code: ErrorCode) -> bool {
        ANY_REQUEST.contains(&code) || self.errors().contains(&code)
    }
}
