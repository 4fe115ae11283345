//! The ack coalescer: one task per queue consumer that sends acks in batches.
//!
//! Whatever is queued when a request goes out travels together, one Ack request per
//! partition, several requests in flight. Acks name the group, partition and offset,
//! not the member, so one task serves every session of a consumer across rejoins.

use std::collections::BTreeMap;

use protocol::ops::ack::AckRequest;
use protocol::Request;
use tokio::sync::{mpsc, oneshot};

use crate::connection::Client;
use crate::error::ClientError;

/// Acks coalesced into one Ack request, at most.
pub const MAX_ACKS_PER_REQUEST: usize = 1024;

/// Who to tell when an ack is confirmed.
pub(super) type AckWaiter = oneshot::Sender<Result<(), ClientError>>;
/// An ack waiting to be sent: partition, offset, and who to tell.
pub(super) type PendingAck = (u32, u64, AckWaiter);

/// Runs until every sender (the consumer's and its messages') is gone.
pub(super) async fn run_acker(
    client: Client,
    group: String,
    topic: String,
    mut acks: mpsc::Receiver<PendingAck>,
) {
    while let Some(first) = acks.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_ACKS_PER_REQUEST {
            match acks.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        let mut by_partition: BTreeMap<u32, Vec<(u64, AckWaiter)>> = BTreeMap::new();
        for (partition, offset, done) in batch {
            by_partition
                .entry(partition)
                .or_default()
                .push((offset, done));
        }
        for (partition, waiters) in by_partition {
            let request = Request::Ack(AckRequest {
                group: group.clone(),
                topic: topic.clone(),
                partition,
                offsets: waiters.iter().map(|(offset, _)| *offset).collect(),
            });
            let client = client.clone();
            tokio::spawn(async move {
                let result = client.request(request).await.map(drop);
                for (_, done) in waiters {
                    let _ = done.send(result.clone());
                }
            });
        }
    }
}
