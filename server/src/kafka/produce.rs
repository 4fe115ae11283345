//! Produce: each partition's Kafka record batches become one brokerd batch
//! ([`super::records::kafka_to_batch`], CRC32C checked, nothing appended from a batch
//! that fails) and one native Produce to that partition. `acks` 0 / 1 / -1 are the
//! native ack levels none / appended / durable; with `acks = 0` Kafka expects no
//! response at all, and gets none.
//!
//! An idempotent producer's batch goes into the native sequenced append with its
//! producer id, epoch and base sequence ([`crate::producers::kafka`]), so a retry is
//! answered, as Kafka 3.x answers it, with no error and the offset it got the first
//! time, and is not stored again; a batch out of step is OUT_OF_ORDER_SEQUENCE_NUMBER
//! and one from a fenced epoch INVALID_PRODUCER_EPOCH, nothing appended.

use std::future::Future;

use kafka_protocol::messages::produce_request::ProduceRequest as KafkaProduce;
use kafka_protocol::messages::produce_response::{
    PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use protocol::ops::produce::{AckLevel, PartitionSelector, ProduceRequest, ProducerSequence};
use protocol::{Request, Response};

use super::error;
use super::records::{kafka_to_batch, RecordsError};
use super::session::{unexpected, Session};
use crate::handlers::{Answer, Pending};

/// The native ack level for Kafka's `acks`; `None` for a value Kafka does not define.
pub fn ack_level(acks: i16) -> Option<AckLevel> {
    match acks {
        0 => Some(AckLevel::None),
        1 => Some(AckLevel::Appended),
        -1 => Some(AckLevel::Durable),
        _ => None,
    }
}

/// Starts a Produce: every partition's batch is checked, converted and appended (in
/// the request's order) before this returns; the future gives the response once
/// each append is acknowledged at the asked level. `None` when the client asked for
/// no response (`acks = 0`). The connection reads and starts its next requests
/// while this one waits, so pipelined durable produces share their syncs.
pub fn start(
    s: &mut Session,
    request: KafkaProduce,
) -> Option<impl Future<Output = ProduceResponse> + Send + 'static> {
    let ack = ack_level(request.acks);
    let timeout_ms = u32::try_from(request.timeout_ms).unwrap_or(0);
    let mut topics = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for data in topic.partition_data {
            let started = match (ack, request.transactional_id.is_some()) {
                (_, true) => Err((
                    ResponseError::TransactionalIdAuthorizationFailed.code(),
                    "transactions are not supported".to_owned(),
                )),
                (None, _) => Err((
                    ResponseError::InvalidRequiredAcks.code(),
                    format!("acks {} is not 0, 1 or -1", request.acks),
                )),
                (Some(ack), false) => {
                    begin_append(s, &topic.name.0, data.index, data.records, ack, timeout_ms)
                }
            };
            partitions.push((data.index, started));
        }
        // The decoded name is a slice of the request's frame, and the answer lives
        // until it is written: a copy lets the read buffer's allocation be reused
        // for the next requests meanwhile instead of a fresh one faulting in.
        let name = TopicName(StrBytes::from_string(topic.name.0.to_string()));
        topics.push((name, partitions));
    }
    if ack == Some(AckLevel::None) {
        return None;
    }
    Some(async move {
        let mut responses = Vec::with_capacity(topics.len());
        for (name, partitions) in topics {
            let mut answers = Vec::with_capacity(partitions.len());
            for (index, started) in partitions {
                let outcome = match started {
                    Ok(pending) => finish_append(pending.await),
                    Err(refused) => Err(refused),
                };
                let answer = PartitionProduceResponse::default()
                    .with_index(index)
                    .with_base_offset(-1)
                    .with_log_append_time_ms(-1)
                    .with_log_start_offset(-1);
                answers.push(match outcome {
                    Ok(base_offset) => answer.with_base_offset(base_offset),
                    Err((code, message)) => answer
                        .with_error_code(code)
                        .with_error_message(Some(StrBytes::from_string(message))),
                });
            }
            responses.push(
                TopicProduceResponse::default()
                    .with_name(name)
                    .with_partition_responses(answers),
            );
        }
        ProduceResponse::default().with_responses(responses)
    })
}

/// Starts one partition's append: the answer to come, or the Kafka error code and
/// message of a batch refused before it reached the log.
fn begin_append(
    s: &mut Session,
    topic: &str,
    partition: i32,
    records: Option<bytes::Bytes>,
    ack: AckLevel,
    timeout_ms: u32,
) -> Result<Pending, (i16, String)> {
    let corrupt = |e: RecordsError| {
        let code = match e {
            RecordsError::Unsupported(_) => ResponseError::UnsupportedForMessageFormat.code(),
            RecordsError::Corrupt(_) | RecordsError::Batch(_) => {
                ResponseError::CorruptMessage.code()
            }
            RecordsError::Invalid(_) => ResponseError::InvalidRecord.code(),
            RecordsError::TooLarge(_) => ResponseError::MessageTooLarge.code(),
            RecordsError::UnknownProducer(_) => ResponseError::UnknownProducerId.code(),
        };
        (code, e.to_string())
    };
    let Ok(partition) = u32::try_from(partition) else {
        return Err((
            ResponseError::UnknownTopicOrPartition.code(),
            format!("partition {partition}"),
        ));
    };
    let records = records.unwrap_or_default();
    let converted = kafka_to_batch(
        &records,
        s.broker.clock.wall_ms(),
        s.broker.config.limits.max_frame_bytes,
        s.buffers.take(records.len()),
    )
    .map_err(corrupt)?;
    let producer = match converted.sequenced {
        Some(tag) if !s.broker.producer_ids.issued(tag.producer.producer_id) => {
            let id = tag.producer.producer_id as i64;
            return Err(corrupt(RecordsError::UnknownProducer(id)));
        }
        Some(tag) => Some(ProducerSequence {
            producer_id: tag.producer.native_id(),
            sequence: tag.base_sequence,
        }),
        None => None,
    };
    Ok(s.begin(Request::Produce(ProduceRequest {
        topic: topic.to_owned(),
        partition: PartitionSelector::Partition(partition),
        ack,
        timeout_ms,
        producer,
        batch: s.buffers.keep(converted.batch),
    })))
}

/// The base offset a native Produce answer gives, or its Kafka error.
fn finish_append(answer: Answer) -> Result<i64, (i16, String)> {
    match answer {
        Ok(Response::Produce(done)) => Ok(done.base_offset.map_or(-1, |o| o as i64)),
        Ok(other) => {
            let e = unexpected(&other);
            Err((error::code(&e), e.to_string()))
        }
        Err(e) => Err((error::code(&e), e.to_string())),
    }
}
