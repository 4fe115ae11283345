//! NATS JetStream, through `async-nats` (feature `nats`).
//!
//! A topic is a stream with file storage and subjects `<topic>.<partition>`; a
//! consumer group is a durable pull consumer shared by the group's members (JetStream
//! spreads messages between them). Publishes are JetStream publishes: each is
//! acknowledged once the stream stored the message, synced to disk according to the
//! *server's* `sync_interval` (bench/peers.sh sets and reports it; the client cannot
//! choose it per stream). Consumers use cumulative acknowledgement (`AckPolicy::All`,
//! the last message of each chunk), the nearest JetStream has to committing an offset.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures_util::future::FutureExt;
use futures_util::stream::{select_all, SelectAll};

use crate::driver::{
    take_ready, AckFuture, ConsumerHandle, ConsumerSpec, Driver, DriverError, OutBatch,
    ProducerHandle, StartAt,
};
use crate::payload::template;
use crate::workload::{Workload, WorkloadKind};

/// Messages a pull request asks for at a time.
pub const PULL_BATCH_MESSAGES: usize = 1000;
/// Unacknowledged messages a consumer may have; acks are cumulative per chunk.
pub const MAX_ACK_PENDING: i64 = 100_000;
/// Unacknowledged messages per queue member (brokerd's queue consumer holds as many).
pub const QUEUE_MAX_ACK_PENDING_PER_MEMBER: i64 = 1024;
/// Messages taken per `receive` once one has arrived.
const MESSAGES_PER_RECEIVE: usize = 4096;

fn peer<E: std::fmt::Display>(e: E) -> DriverError {
    DriverError::Peer {
        peer: "nats",
        message: e.to_string(),
    }
}

/// Drives a nats-server with JetStream enabled.
#[derive(Debug, Clone)]
pub struct NatsDriver {
    addr: String,
    admin: jetstream::Context,
}

impl NatsDriver {
    /// Connects to the server at `addr`.
    pub async fn connect(addr: &str) -> Result<NatsDriver, DriverError> {
        let client = async_nats::connect(addr).await.map_err(peer)?;
        Ok(NatsDriver {
            addr: addr.to_string(),
            admin: jetstream::new(client),
        })
    }

    async fn context(&self) -> Result<jetstream::Context, DriverError> {
        let client = async_nats::connect(self.addr.as_str())
            .await
            .map_err(peer)?;
        Ok(jetstream::new(client))
    }
}

impl Driver for NatsDriver {
    type Producer = NatsProducer;
    type Consumer = NatsConsumer;

    fn name(&self) -> &'static str {
        "nats"
    }

    async fn durability_note(&self, _workload: &Workload) -> String {
        "JetStream file storage; acked once stored; fsync per the server's sync_interval".into()
    }

    async fn create_topics(
        &self,
        topics: &[String],
        _workload: &Workload,
    ) -> Result<(), DriverError> {
        for topic in topics {
            let _ = self.admin.delete_stream(topic).await;
            self.admin
                .create_stream(stream::Config {
                    name: topic.clone(),
                    subjects: vec![format!("{topic}.*")],
                    storage: stream::StorageType::File,
                    ..Default::default()
                })
                .await
                .map_err(peer)?;
        }
        Ok(())
    }

    async fn producer(
        &self,
        topic: &str,
        workload: &Workload,
    ) -> Result<NatsProducer, DriverError> {
        Ok(NatsProducer {
            context: self.context().await?,
            topic: topic.to_string(),
            payload: template(workload.message_size_bytes),
        })
    }

    fn supports_queue(&self) -> bool {
        true
    }

    async fn consumer(
        &self,
        spec: ConsumerSpec,
        workload: &Workload,
    ) -> Result<NatsConsumer, DriverError> {
        let per_message_acks = workload.kind == WorkloadKind::Queue;
        let (ack_policy, max_ack_pending) = if per_message_acks {
            (
                consumer::AckPolicy::Explicit,
                QUEUE_MAX_ACK_PENDING_PER_MEMBER * i64::from(spec.members.max(1)),
            )
        } else {
            (consumer::AckPolicy::All, MAX_ACK_PENDING)
        };
        let context = self.context().await?;
        let mut streams = Vec::new();
        for topic in &spec.topics {
            let stream = context.get_stream(topic).await.map_err(peer)?;
            let pull: consumer::PullConsumer = stream
                .get_or_create_consumer(
                    &spec.group,
                    consumer::pull::Config {
                        durable_name: Some(spec.group.clone()),
                        deliver_policy: match spec.start {
                            StartAt::Earliest => consumer::DeliverPolicy::All,
                            StartAt::Latest => consumer::DeliverPolicy::New,
                        },
                        ack_policy,
                        max_ack_pending,
                        ..Default::default()
                    },
                )
                .await
                .map_err(peer)?;
            let messages = pull
                .stream()
                .max_messages_per_batch(PULL_BATCH_MESSAGES)
                .expires(Duration::from_secs(1))
                .messages()
                .await
                .map_err(peer)?;
            streams.push(messages);
        }
        Ok(NatsConsumer {
            messages: select_all(streams),
            per_message_acks,
            chunk: Vec::new(),
        })
    }

    async fn stored_messages(&self, topics: &[String]) -> Result<Option<u64>, DriverError> {
        let mut total = 0;
        for topic in topics {
            let mut stream = self.admin.get_stream(topic).await.map_err(peer)?;
            total += stream.info().await.map_err(peer)?.state.messages;
        }
        Ok(Some(total))
    }

    async fn delete_topics(&self, topics: &[String]) -> Result<(), DriverError> {
        for topic in topics {
            self.admin.delete_stream(topic).await.map_err(peer)?;
        }
        Ok(())
    }
}

/// A JetStream publisher on its own connection.
pub struct NatsProducer {
    context: jetstream::Context,
    topic: String,
    payload: Vec<u8>,
}

impl ProducerHandle for NatsProducer {
    async fn send(&mut self, batch: OutBatch) -> Result<AckFuture, DriverError> {
        let subject = format!("{}.{}", self.topic, batch.partition);
        let mut acks = Vec::with_capacity(batch.count as usize);
        for i in 0..batch.count {
            let payload = Bytes::copy_from_slice(batch.payload(i, &mut self.payload));
            acks.push(
                self.context
                    .publish(subject.clone(), payload)
                    .await
                    .map_err(peer)?,
            );
        }
        Ok(async move {
            for ack in acks {
                ack.await.map_err(peer)?;
            }
            Ok(())
        }
        .boxed())
    }

    async fn close(self) -> Result<(), DriverError> {
        Ok(())
    }
}

/// A member of a durable pull consumer per topic.
pub struct NatsConsumer {
    messages: SelectAll<consumer::pull::Stream>,
    /// `--workload queue`: ack every message, not the last of each chunk.
    per_message_acks: bool,
    /// The messages of the current `receive` (reused).
    chunk: Vec<jetstream::Message>,
}

impl ConsumerHandle for NatsConsumer {
    async fn receive(
        &mut self,
        max_wait: Duration,
        sink: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<(), DriverError> {
        take_ready(
            &mut self.messages,
            max_wait,
            MESSAGES_PER_RECEIVE,
            &mut self.chunk,
            peer,
        )
        .await?;
        for message in &self.chunk {
            sink(&message.payload);
        }
        if self.per_message_acks {
            for message in &self.chunk {
                message.ack().await.map_err(peer)?;
            }
        } else if let Some(last) = self.chunk.last() {
            // Cumulative: acknowledges everything up to `last`.
            last.ack().await.map_err(peer)?;
        }
        Ok(())
    }

    async fn close(self) -> Result<(), DriverError> {
        Ok(())
    }
}
