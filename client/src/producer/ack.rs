//! The answer to one record: its [`SendFuture`], and how a batch's answer reaches it.
//!
//! [`Producer::send`](crate::Producer::send) returns a future at once and the record
//! travels on with the other end of a oneshot channel, its [`Waiter`], inside its
//! batch. A oneshot per record is what lets a caller await one record among thousands,
//! or drop its future without cancelling the send (the answer is then discarded).
//!
//! One Produce answers a whole batch, so [`complete`] fans that answer out: the broker
//! gives the batch's base offset and a batch's records have consecutive offsets in
//! the order they were batched, so record `i` is at `base + i`; a failure reaches every
//! record of the batch as the same error.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use protocol::ops::produce::ProduceResponse;
use tokio::sync::oneshot;

use crate::error::ClientError;

/// Where an acknowledged record was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordMetadata {
    /// The partition.
    pub partition: u32,
    /// The record's offset; `None` only with
    /// [`AckLevel::None`](protocol::ops::produce::AckLevel::None), where the broker
    /// answers before appending.
    pub offset: Option<u64>,
}

pub(super) type Waiter = oneshot::Sender<Result<RecordMetadata, ClientError>>;

/// Resolves when the record's batch is acknowledged (or failed). Created by
/// [`Producer::send`](crate::Producer::send). Dropping it does not cancel the send.
#[derive(Debug)]
#[must_use = "the record's outcome is only known by awaiting this future"]
pub struct SendFuture {
    pub(super) rx: oneshot::Receiver<Result<RecordMetadata, ClientError>>,
}

impl Future for SendFuture {
    type Output = Result<RecordMetadata, ClientError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|result| result.unwrap_or(Err(ClientError::Closed("the producer"))))
    }
}

/// A batch whose Produce has finished: its records' waiters, in batch order, and
/// the answer (or the error) they are to get.
pub(super) struct Completed {
    pub(super) partition: u32,
    pub(super) waiters: Vec<Waiter>,
    pub(super) result: Result<ProduceResponse, ClientError>,
}

/// Resolves every record future of a finished batch.
pub(super) fn complete(done: Completed) {
    match done.result {
        Ok(answer) => {
            debug_assert_eq!(answer.partition, done.partition);
            for (i, waiter) in done.waiters.into_iter().enumerate() {
                let _ = waiter.send(Ok(RecordMetadata {
                    partition: answer.partition,
                    offset: answer.base_offset.map(|base| base + i as u64),
                }));
            }
        }
        Err(error) => {
            tracing::debug!(partition = done.partition, %error, "produce failed");
            for waiter in done.waiters {
                let _ = waiter.send(Err(error.clone()));
            }
        }
    }
}

/// A waiter and the receiving end a [`SendFuture`] would hold, for tests.
#[cfg(test)]
pub(super) fn waiter() -> (
    Waiter,
    oneshot::Receiver<Result<RecordMetadata, ClientError>>,
) {
    oneshot::channel()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failures_reach_every_record_of_the_batch() {
        let (a, ra) = waiter();
        let (b, rb) = waiter();
        complete(Completed {
            partition: 1,
            waiters: vec![a, b],
            result: Err(ClientError::Timeout {
                op: "Produce",
                timeout_ms: 5,
            }),
        });
        assert!(matches!(
            ra.await.unwrap(),
            Err(ClientError::Timeout { .. })
        ));
        assert!(matches!(
            rb.await.unwrap(),
            Err(ClientError::Timeout { .. })
        ));
        let (a, ra) = waiter();
        let (b, rb) = waiter();
        complete(Completed {
            partition: 1,
            waiters: vec![a, b],
            result: Ok(ProduceResponse {
                partition: 1,
                base_offset: Some(40),
                duplicate: false,
            }),
        });
        assert_eq!(ra.await.unwrap().unwrap().offset, Some(40));
        assert_eq!(rb.await.unwrap().unwrap().offset, Some(41));
    }
}
