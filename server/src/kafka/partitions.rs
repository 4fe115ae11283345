//! CreatePartitions and DeleteRecords, a topic's partitions as the native
//! CreatePartitions (grow a topic, its groups' offsets committed on the new
//! partitions) and DeleteRecords (move a partition's log start forward) change them.
//! Kafka's checks come first, from one native DescribeTopic per topic: a count that
//! does not grow the topic is INVALID_PARTITIONS, an offset past the high watermark
//! OFFSET_OUT_OF_RANGE (natively it would be clamped), -1 the high watermark.

use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsRequest as KafkaCreatePartitions, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_partitions_response::{
    CreatePartitionsResponse, CreatePartitionsTopicResult,
};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsRequest as KafkaDeleteRecords, DeleteRecordsTopic,
};
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsResponse, DeleteRecordsTopicResult,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use protocol::ops::topic::{CreatePartitionsRequest, DeleteRecordsRequest};
use protocol::{Request, Response};

use super::configs::describe_topic;
use super::error;
use super::session::{unexpected, Session};

/// DeleteRecords' "up to the high watermark".
pub const HIGH_WATERMARK: i64 = -1;

/// Serves a CreatePartitions, topic by topic.
pub async fn create_partitions(
    s: &mut Session,
    request: KafkaCreatePartitions,
) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
        results.push(match grow(s, &topic, request.validate_only).await {
            Ok(()) => result,
            Err((code, message)) => result
                .with_error_code(code)
                .with_error_message(Some(StrBytes::from_string(message))),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}

async fn grow(
    s: &mut Session,
    topic: &CreatePartitionsTopic,
    validate_only: bool,
) -> Result<(), (i16, String)> {
    let failed = |e: crate::error::BrokerError| (error::code(&e), e.to_string());
    if topic.assignments.as_ref().is_some_and(|a| !a.is_empty()) {
        return Err((
            ResponseError::InvalidReplicaAssignment.code(),
            "brokerd is a single node: replica assignments are not taken".into(),
        ));
    }
    let described = describe_topic(s, &topic.name.0).await.map_err(failed)?;
    let current = described.partitions.len();
    let count = match u32::try_from(topic.count) {
        Ok(count) if count as usize > current => count,
        _ => {
            return Err((
                ResponseError::InvalidPartitions.code(),
                format!(
                    "topic {:?} has {current} partitions; the new count {} must be more",
                    described.name, topic.count
                ),
            ))
        }
    };
    if validate_only {
        return Ok(());
    }
    let request = Request::CreatePartitions(CreatePartitionsRequest {
        name: described.name,
        count,
    });
    match s.call(request).await {
        Ok(Response::CreatePartitions(_)) => Ok(()),
        Ok(other) => Err(failed(unexpected(&other))),
        Err(e) => Err(failed(e)),
    }
}

/// Serves a DeleteRecords, partition by partition.
pub async fn delete_records(s: &mut Session, request: KafkaDeleteRecords) -> DeleteRecordsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let partitions = delete_in(s, &topic).await;
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}

async fn delete_in(
    s: &mut Session,
    topic: &DeleteRecordsTopic,
) -> Vec<DeleteRecordsPartitionResult> {
    let refused = |index: i32, code: i16| {
        DeleteRecordsPartitionResult::default()
            .with_partition_index(index)
            .with_low_watermark(-1)
            .with_error_code(code)
    };
    let described = match describe_topic(s, &topic.name.0).await {
        Ok(described) => described,
        Err(e) => {
            let code = error::code(&e);
            return topic
                .partitions
                .iter()
                .map(|p| refused(p.partition_index, code))
                .collect();
        }
    };
    let mut results = Vec::with_capacity(topic.partitions.len());
    for p in &topic.partitions {
        let index = p.partition_index;
        let info = usize::try_from(index)
            .ok()
            .and_then(|i| described.partitions.get(i));
        let Some(info) = info else {
            results.push(refused(
                index,
                ResponseError::UnknownTopicOrPartition.code(),
            ));
            continue;
        };
        let before = match p.offset {
            HIGH_WATERMARK => info.end_offset,
            o => match u64::try_from(o) {
                Ok(o) if o <= info.end_offset => o,
                _ => {
                    results.push(refused(index, ResponseError::OffsetOutOfRange.code()));
                    continue;
                }
            },
        };
        let request = Request::DeleteRecords(DeleteRecordsRequest {
            topic: described.name.clone(),
            partition: info.partition,
            before_offset: before,
        });
        results.push(match s.call(request).await {
            Ok(Response::DeleteRecords(done)) => DeleteRecordsPartitionResult::default()
                .with_partition_index(index)
                .with_low_watermark(i64::try_from(done.log_start_offset).unwrap_or(i64::MAX)),
            Ok(other) => refused(index, error::code(&unexpected(&other))),
            Err(e) => refused(index, error::code(&e)),
        });
    }
    results
}
