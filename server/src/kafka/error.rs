//! brokerd's errors in Kafka's terms: the one table from a request-layer error to
//! the Kafka error code a client acts on (retry, refresh metadata, give up).

use kafka_protocol::ResponseError as K;

use crate::error::BrokerError;
use crate::partition::OutOfOrder;

/// The Kafka error code for an error of the request layer.
pub fn code(error: &BrokerError) -> i16 {
    kind(error).code()
}

fn kind(error: &BrokerError) -> K {
    match error {
        BrokerError::UnknownTopic(_) | BrokerError::InvalidPartition { .. } => {
            K::UnknownTopicOrPartition
        }
        BrokerError::TopicExists(_) => K::TopicAlreadyExists,
        BrokerError::NotAuthorized { .. }
        | BrokerError::AuthenticationRequired
        | BrokerError::AuthenticationFailed => K::TopicAuthorizationFailed,
        BrokerError::InvalidConfig(_) => K::InvalidConfig,
        BrokerError::InvalidRequest(_) => K::InvalidRequest,
        BrokerError::Timeout { .. } => K::RequestTimedOut,
        BrokerError::OutOfOrderSequence {
            why: OutOfOrder::StaleEpoch { .. },
            ..
        } => K::InvalidProducerEpoch,
        BrokerError::OutOfOrderSequence { .. } => K::OutOfOrderSequenceNumber,
        // Clients retry this one after refreshing metadata: right for a broker
        // that is going away.
        BrokerError::ShuttingDown => K::NotLeaderOrFollower,
        BrokerError::NotDurable { .. }
        | BrokerError::PartitionUnavailable { .. }
        | BrokerError::TopicDirectoryInTheWay { .. } => K::KafkaStorageError,
        BrokerError::Storage(e) => match e {
            storage::Error::OffsetOutOfRange { .. } => K::OffsetOutOfRange,
            storage::Error::BatchTooLarge { .. } => K::MessageTooLarge,
            storage::Error::InvalidBatch(_) => K::CorruptMessage,
            _ => K::KafkaStorageError,
        },
        _ => K::UnknownServerError,
    }
}
