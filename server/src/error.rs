//! The broker's error type, and how each error reaches a client.

use protocol::ErrorCode;
use thiserror::Error;

/// Anything a request can fail with. Each variant maps to one wire error code; the
/// message is what the user sees.
#[derive(Debug, Error)]
pub enum BrokerError {
    /// No such topic.
    #[error("topic {0:?} does not exist")]
    UnknownTopic(String),
    /// The topic already exists.
    #[error("topic {0:?} already exists")]
    TopicExists(String),
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
    /// No such subscription on this connection.
    #[error("subscription {0} is not open on this connection")]
    UnknownSubscription(u64),
    /// A per-connection or per-group limit.
    #[error("{0}")]
    ResourceLimit(String),
    /// Timed out.
    #[error("timed out {0}")]
    Timeout(String),
    /// Appended, but durability could not be confirmed.
    #[error("appended but not durable: {0}")]
    NotDurable(String),
    /// The broker is stopping.
    #[error("the broker is shutting down")]
    ShuttingDown,
    /// From the log.
    #[error(transparent)]
    Storage(#[from] storage::Error),
    /// A bug.
    #[error("internal error: {0}")]
    Internal(String),
}

impl BrokerError {
    /// The wire error code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            BrokerError::UnknownTopic(_) => ErrorCode::UnknownTopic,
            BrokerError::TopicExists(_) => ErrorCode::TopicExists,
            BrokerError::InvalidPartition { .. } | BrokerError::NotAssigned { .. } => {
                ErrorCode::InvalidPartition
            }
            BrokerError::InvalidConfig(_) => ErrorCode::InvalidConfig,
            BrokerError::InvalidRequest(_) => ErrorCode::InvalidRequest,
            BrokerError::UnknownGroup(_) => ErrorCode::UnknownGroup,
            BrokerError::UnknownMember { .. } => ErrorCode::UnknownMember,
            BrokerError::StaleGeneration { .. } => ErrorCode::StaleGeneration,
            BrokerError::UnknownSubscription(_) => ErrorCode::UnknownSubscription,
            BrokerError::NotInFlight { .. } => ErrorCode::NotInFlight,
            BrokerError::UnknownInstance { .. } => ErrorCode::UnknownInstance,
            BrokerError::Unroutable(_) => ErrorCode::Unroutable,
            BrokerError::UnknownRoute(_) => ErrorCode::UnknownRoute,
            BrokerError::ResourceLimit(_) | BrokerError::ShuttingDown => ErrorCode::ResourceLimit,
            BrokerError::Timeout(_) => ErrorCode::Timeout,
            BrokerError::NotDurable(_) => ErrorCode::NotDurable,
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
