//! Queue consumption over HTTP, SQS-like, on the queue groups native consumers use:
//! receive up to N messages with a lease, then ack (one or many), nack (a reason and
//! an optional delay) or extend the lease, each by the message's delivery id.
//!
//! A receive is the request layer's pull ([`handlers::queue::receive`]) for the
//! member the gateway holds for the caller in that group ([`super::members`]); acks,
//! nacks and extensions are the native Ack, Nack and ExtendDeadline through
//! [`call`]. So attempts, backoff, leases that run out and dead letters are exactly
//! those of native consumers, and a message leased to an HTTP client and never
//! settled is redelivered after its lease.
//!
//! A delivery id ([`DeliveryId`]) names the partition, offset and attempt of one
//! delivered message, as 23 URL-safe characters; the topic and group are in the path.
//! Like a native ack by offset, an id of an earlier attempt still settles the message.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use protocol::ops::ack::{AckRequest, ExtendDeadlineRequest, NackRequest};
use protocol::{ErrorCode, Request};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::body::{ApiPath, ApiQuery, JsonBody};
use super::call::{authorize, call};
use super::error::{ApiError, ErrorBody};
use super::records::{self, FetchedRecord};
use super::state::HttpState;
use crate::handlers::queue::{receive as pull, ReceiveRequest};

/// Messages a receive takes unless told (`max_messages`).
pub const DEFAULT_RECEIVE_MESSAGES: u32 = 10;
/// Messages one receive may take at most.
pub const MAX_RECEIVE_MESSAGES: u32 = 1000;
/// Bytes of batches a receive reads unless told (`max_bytes`).
pub const DEFAULT_RECEIVE_BYTES: u64 = 1024 * 1024;
/// Bytes of batches one receive may read at most.
pub const MAX_RECEIVE_BYTES: u64 = 16 * 1024 * 1024;
/// Delivery ids one batch ack may carry at most.
pub const MAX_ACKS_PER_REQUEST: usize = 10_000;

/// One delivered message: partition, offset and attempt, as an opaque, URL-safe
/// text of 23 characters (unpadded base64url of a version byte, then the partition,
/// offset and attempt big-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryId {
    /// The message's partition.
    pub partition: u32,
    /// Its offset.
    pub offset: u64,
    /// The delivery's attempt (1 for the first).
    pub attempt: u32,
}

/// The layout version of a delivery id.
const DELIVERY_ID_VERSION: u8 = 1;
/// Bytes of a delivery id before encoding.
const DELIVERY_ID_BYTES: usize = 1 + 4 + 8 + 4;
/// Characters of an encoded delivery id.
pub const DELIVERY_ID_CHARS: usize = 23;

impl DeliveryId {
    /// The id as text.
    pub fn encode(&self) -> String {
        let mut raw = [0u8; DELIVERY_ID_BYTES];
        raw[0] = DELIVERY_ID_VERSION;
        raw[1..5].copy_from_slice(&self.partition.to_be_bytes());
        raw[5..13].copy_from_slice(&self.offset.to_be_bytes());
        raw[13..17].copy_from_slice(&self.attempt.to_be_bytes());
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Reads an id; the error never repeats the text.
    pub fn decode(text: &str) -> Result<DeliveryId, ApiError> {
        let bad =
            || ApiError::invalid("not a delivery id (give one exactly as a receive answered it)");
        if text.len() != DELIVERY_ID_CHARS {
            return Err(bad());
        }
        let mut raw = [0u8; DELIVERY_ID_BYTES];
        match URL_SAFE_NO_PAD.decode_slice(text, &mut raw) {
            Ok(DELIVERY_ID_BYTES) => {}
            _ => return Err(bad()),
        }
        if raw[0] != DELIVERY_ID_VERSION {
            return Err(bad());
        }
        let u32_at =
            |at: usize| u32::from_be_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]]);
        let mut offset = [0u8; 8];
        offset.copy_from_slice(&raw[5..13]);
        let attempt = u32_at(13);
        if attempt == 0 {
            return Err(bad());
        }
        Ok(DeliveryId {
            partition: u32_at(1),
            offset: u64::from_be_bytes(offset),
            attempt,
        })
    }
}

/// A queue group of a topic in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct QueuePath {
    /// The topic.
    pub topic: String,
    /// The queue group.
    pub group: String,
}

/// One message of a queue group in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MessagePath {
    /// The topic.
    pub topic: String,
    /// The queue group.
    pub group: String,
    /// The delivery id a receive answered.
    pub delivery_id: String,
}

/// Receive parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReceiveParams {
    /// Messages to take at most (default 10, at most 1000).
    #[serde(default)]
    pub max_messages: Option<u32>,
    /// If no message is ready, wait up to this long for one, ms (default 0: answer
    /// at once; capped by `limits.max_fetch_wait_ms`).
    #[serde(default)]
    pub max_wait_ms: u32,
    /// Bytes of record batches to read at most (default 1 MiB, at most 16 MiB; at
    /// least one batch is read).
    #[serde(default)]
    pub max_bytes: Option<u64>,
    /// Each message's lease from now, ms; absent: the group's `ack_deadline_ms`.
    /// Unsettled when it runs out, a message is redelivered (or dead-lettered).
    #[serde(default)]
    pub lease_ms: Option<u32>,
}

/// A message received from a queue group.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueMessage {
    /// What ack, nack and extend name it by.
    pub delivery_id: String,
    /// Its partition.
    pub partition: u32,
    /// Which delivery of the message this is (1 for the first).
    pub attempt: u32,
    /// The record.
    pub record: FetchedRecord,
}

/// Received messages.
#[derive(Debug, Serialize, ToSchema)]
pub struct Received {
    /// The messages, in order within each partition (perhaps none, after
    /// `max_wait_ms`).
    pub messages: Vec<QueueMessage>,
}

/// Receives messages from a queue group.
#[utoipa::path(post, path = "/v1/topics/{topic}/queues/{group}/receive", tag = "queues",
    params(QueuePath, ReceiveParams),
    responses(
        (status = 200, description = "Messages leased to the caller (perhaps none).", body = Received),
        (status = 400, description = "Bad parameters, or the group is not this topic's queue group.", body = ErrorBody),
        (status = 404, description = "No such topic.", body = ErrorBody),
        (status = 409, description = "The group is a stream group.", body = ErrorBody),
        (status = 429, description = "The gateway holds its limit of memberships.", body = ErrorBody),
        (status = "4XX", description = "Refused.", body = ErrorBody),
    ))]
pub async fn receive(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<QueuePath>,
    ApiQuery(params): ApiQuery<ReceiveParams>,
) -> Result<Json<Received>, ApiError> {
    let max_messages = params.max_messages.unwrap_or(DEFAULT_RECEIVE_MESSAGES);
    if max_messages == 0 || max_messages > MAX_RECEIVE_MESSAGES {
        return Err(ApiError::invalid(format!(
            "max_messages must be from 1 to {MAX_RECEIVE_MESSAGES}"
        )));
    }
    let max_bytes = params.max_bytes.unwrap_or(DEFAULT_RECEIVE_BYTES);
    if max_bytes == 0 || max_bytes > MAX_RECEIVE_BYTES {
        return Err(ApiError::invalid(format!(
            "max_bytes must be from 1 to {MAX_RECEIVE_BYTES}"
        )));
    }
    let broker = &state.broker;
    let member = state
        .members
        .member(broker, &caller, &path.topic, &path.group, true)
        .await?;
    let request = ReceiveRequest {
        group: path.group,
        topic: path.topic,
        member_id: member.member_id,
        max_messages,
        max_bytes,
        max_wait_ms: params.max_wait_ms,
        lease_ms: params.lease_ms,
    };
    authorize(broker, &caller, &request.authorized_as())?;
    // As its own task, like every waiting answer: a client that hangs up does not
    // cancel a pull whose hand-out is being recorded.
    let deliveries = tokio::spawn(pull(broker.clone(), request))
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("a receive task failed: {e}")))??;
    let mut messages = Vec::new();
    for delivery in deliveries {
        let count = (delivery.to_offset - delivery.from_offset) as usize;
        let (records, _) = records::fetched(&delivery.batches, delivery.from_offset, count)
            .map_err(|e| {
                ApiError::new(
                    ErrorCode::StorageError,
                    format!("a stored batch did not read back: {e}"),
                )
            })?;
        for record in records {
            let id = DeliveryId {
                partition: delivery.partition,
                offset: record.offset,
                attempt: delivery.attempt,
            };
            messages.push(QueueMessage {
                delivery_id: id.encode(),
                partition: delivery.partition,
                attempt: delivery.attempt,
                record,
            });
        }
    }
    Ok(Json(Received { messages }))
}

/// A batch ack.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckBody {
    /// The delivery ids to ack (at most 10000).
    pub delivery_ids: Vec<String>,
}

/// Settled messages.
#[derive(Debug, Serialize, ToSchema)]
pub struct Acked {
    /// How many delivery ids were acked.
    pub acked: usize,
}

/// Acks messages, each durably settled before the answer. Acks are idempotent: an
/// id already acked is acked again without error, so a client may repeat a batch
/// that failed part way.
#[utoipa::path(post, path = "/v1/topics/{topic}/queues/{group}/acks", tag = "queues",
    params(QueuePath), request_body = AckBody,
    responses(
        (status = 200, description = "All acked.", body = Acked),
        (status = 400, description = "A bad delivery id.", body = ErrorBody),
        (status = 404, description = "No such group or partition.", body = ErrorBody),
        (status = 409, description = "A message is not in flight (`not_in_flight`: never delivered, or dead-lettered).", body = ErrorBody),
        (status = "4XX", description = "Refused.", body = ErrorBody),
    ))]
pub async fn ack_many(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<QueuePath>,
    JsonBody(body): JsonBody<AckBody>,
) -> Result<Json<Acked>, ApiError> {
    if body.delivery_ids.len() > MAX_ACKS_PER_REQUEST {
        return Err(ApiError::invalid(format!(
            "at most {MAX_ACKS_PER_REQUEST} delivery ids per request"
        )));
    }
    let mut by_partition: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for text in &body.delivery_ids {
        let id = DeliveryId::decode(text)?;
        by_partition
            .entry(id.partition)
            .or_default()
            .push(id.offset);
    }
    for (partition, offsets) in by_partition {
        let request = Request::Ack(AckRequest {
            group: path.group.clone(),
            topic: path.topic.clone(),
            partition,
            offsets,
        });
        call(&state.broker, &caller, request).await?;
    }
    touch(&state, &caller, &path.topic, &path.group).await;
    Ok(Json(Acked {
        acked: body.delivery_ids.len(),
    }))
}

/// Settles through the request layer (an Ack, Nack or ExtendDeadline), then counts
/// it as the caller's member being alive.
async fn settle(
    state: &Arc<HttpState>,
    caller: &Caller,
    topic: &str,
    group: &str,
    request: Request,
) -> Result<(), ApiError> {
    call(&state.broker, caller, request).await?;
    touch(state, caller, topic, group).await;
    Ok(())
}

/// Heartbeats the queue member the gateway holds for `caller`, if it holds one.
async fn touch(state: &Arc<HttpState>, caller: &Caller, topic: &str, group: &str) {
    state
        .members
        .touch(&state.broker, caller, topic, group, true)
        .await;
}

/// Acks one message (SQS's DeleteMessage).
#[utoipa::path(delete, path = "/v1/topics/{topic}/queues/{group}/messages/{delivery_id}", tag = "queues",
    params(MessagePath),
    responses(
        (status = 200, description = "Acked.", body = Acked),
        (status = 400, description = "A bad delivery id.", body = ErrorBody),
        (status = 404, description = "No such group or partition.", body = ErrorBody),
        (status = 409, description = "Not in flight (`not_in_flight`).", body = ErrorBody),
        (status = "4XX", description = "Refused.", body = ErrorBody),
    ))]
pub async fn ack_one(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<MessagePath>,
) -> Result<Json<Acked>, ApiError> {
    let id = DeliveryId::decode(&path.delivery_id)?;
    let request = Request::Ack(AckRequest {
        group: path.group.clone(),
        topic: path.topic.clone(),
        partition: id.partition,
        offsets: vec![id.offset],
    });
    settle(&state, &caller, &path.topic, &path.group, request).await?;
    Ok(Json(Acked { acked: 1 }))
}

/// A nack.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NackBody {
    /// Why (kept with the message, and in its dead letter's `dlq.reason`).
    #[serde(default)]
    pub reason: String,
    /// Redeliver no sooner than this, ms; absent: the group's backoff.
    #[serde(default)]
    pub delay_ms: Option<u32>,
}

/// What became of a nacked message.
#[derive(Debug, Serialize, ToSchema)]
pub struct Nacked {
    /// Always true: the message is scheduled for a retry, or (out of attempts) for
    /// its dead-letter topic.
    pub nacked: bool,
}

/// Nacks one message: redelivered after the delay (or the group's backoff), or, out
/// of attempts, copied to the dead-letter topic with its reason.
#[utoipa::path(post, path = "/v1/topics/{topic}/queues/{group}/messages/{delivery_id}/nack", tag = "queues",
    params(MessagePath), request_body = NackBody,
    responses(
        (status = 200, description = "Nacked.", body = Nacked),
        (status = 400, description = "A bad delivery id or body.", body = ErrorBody),
        (status = 404, description = "No such group or partition.", body = ErrorBody),
        (status = 409, description = "Not in flight (`not_in_flight`: acked, nacked or expired already).", body = ErrorBody),
        (status = "4XX", description = "Refused.", body = ErrorBody),
    ))]
pub async fn nack(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<MessagePath>,
    JsonBody(body): JsonBody<NackBody>,
) -> Result<Json<Nacked>, ApiError> {
    let id = DeliveryId::decode(&path.delivery_id)?;
    let request = Request::Nack(NackRequest {
        group: path.group.clone(),
        topic: path.topic.clone(),
        partition: id.partition,
        offset: id.offset,
        reason: body.reason,
        redelivery_delay_ms: body.delay_ms,
    });
    settle(&state, &caller, &path.topic, &path.group, request).await?;
    Ok(Json(Nacked { nacked: true }))
}

/// A lease extension.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendBody {
    /// The lease now ends this long from now, ms.
    pub lease_ms: u32,
}

/// An extended lease.
#[derive(Debug, Serialize, ToSchema)]
pub struct Extended {
    /// The lease's new length from now, ms.
    pub lease_ms: u32,
}

/// Extends a message's lease (SQS's ChangeMessageVisibility), so it is not
/// redelivered while the caller still works on it.
#[utoipa::path(post, path = "/v1/topics/{topic}/queues/{group}/messages/{delivery_id}/extend", tag = "queues",
    params(MessagePath), request_body = ExtendBody,
    responses(
        (status = 200, description = "Extended.", body = Extended),
        (status = 400, description = "A bad delivery id or body.", body = ErrorBody),
        (status = 404, description = "No such group or partition.", body = ErrorBody),
        (status = 409, description = "Not in flight (`not_in_flight`: its lease ran out, or it was settled).", body = ErrorBody),
        (status = "4XX", description = "Refused.", body = ErrorBody),
    ))]
pub async fn extend(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<MessagePath>,
    JsonBody(body): JsonBody<ExtendBody>,
) -> Result<Json<Extended>, ApiError> {
    let id = DeliveryId::decode(&path.delivery_id)?;
    let request = Request::ExtendDeadline(ExtendDeadlineRequest {
        group: path.group.clone(),
        topic: path.topic.clone(),
        partition: id.partition,
        offset: id.offset,
        extend_ms: body.lease_ms,
    });
    settle(&state, &caller, &path.topic, &path.group, request).await?;
    Ok(Json(Extended {
        lease_ms: body.lease_ms,
    }))
}

/// Whether a membership was left.
#[derive(Debug, Serialize, ToSchema)]
pub struct Left {
    /// False if the caller held no membership of the group.
    pub left: bool,
}

/// Leaves the caller's membership of the queue group now, instead of letting its
/// session expire: its unsettled messages go back to the queue at once.
#[utoipa::path(delete, path = "/v1/topics/{topic}/queues/{group}/membership", tag = "queues",
    params(QueuePath),
    responses(
        (status = 200, description = "Left (or held none).", body = Left),
        (status = "4XX", description = "Refused.", body = ErrorBody),
    ))]
pub async fn leave(
    State(state): State<Arc<HttpState>>,
    caller: Caller,
    ApiPath(path): ApiPath<QueuePath>,
) -> Result<Json<Left>, ApiError> {
    let left = state
        .members
        .leave(&state.broker, &caller, &path.topic, &path.group, true)
        .await?;
    Ok(Json(Left { left }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_id_round_trips_and_is_url_safe() {
        for id in [
            DeliveryId {
                partition: 0,
                offset: 0,
                attempt: 1,
            },
            DeliveryId {
                partition: u32::MAX,
                offset: u64::MAX,
                attempt: u32::MAX,
            },
            DeliveryId {
                partition: 7,
                offset: 1 << 40,
                attempt: 3,
            },
        ] {
            let text = id.encode();
            assert_eq!(text.len(), DELIVERY_ID_CHARS);
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{text}"
            );
            assert_eq!(DeliveryId::decode(&text).unwrap(), id);
        }
    }

    #[test]
    fn a_bad_delivery_id_is_a_400_that_does_not_repeat_it() {
        let good = DeliveryId {
            partition: 1,
            offset: 2,
            attempt: 3,
        }
        .encode();
        let mut wrong_version = good.clone().into_bytes();
        wrong_version[0] = b'B';
        let no_attempt =
            URL_SAFE_NO_PAD.encode([1u8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0]);
        for text in [
            "",
            "short",
            &good[..22],
            &format!("{good}A"),
            "!!!!!!!!!!!!!!!!!!!!!!!",
            std::str::from_utf8(&wrong_version).unwrap(),
            &no_attempt,
        ] {
            let error = DeliveryId::decode(text).unwrap_err();
            assert_eq!(error.code(), ErrorCode::InvalidRequest, "{text:?}");
            assert!(
                text.is_empty() || !error.message().contains(text),
                "{text:?}"
            );
        }
    }
}
