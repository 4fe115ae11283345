//! RabbitMQ, through `lapin` (feature `rabbitmq`).
//!
//! A topic partition is a durable queue `<topic>.<partition>`, published to through the
//! default exchange. Producers use publisher confirms: a batch is acknowledged when
//! RabbitMQ confirmed each of its messages. Durability picks the queue type, because
//! only one of RabbitMQ's queue types syncs before it confirms:
//! - `always` (and `interval`): a **quorum queue**, persistent messages. A quorum queue
//!   confirms a message once its write-ahead log holding it has been `fdatasync`ed
//!   (batched across messages, like group commit).
//! - `os`: a classic queue (format version 2), transient messages, confirmed once
//!   enqueued (kept in memory, paged to disk only under memory pressure, never synced).
//!
//! Classic queues with *persistent* messages are not used for `always`: measured on
//! RabbitMQ 3.10.8, they confirm after writing to the page cache and sync only now and
//! then (5,000 persistent messages confirmed one at a time made 5,000 `pwrite`s and 4
//! syncs), and a message consumed before it is written is confirmed without ever
//! reaching the disk; their figures would not be durable ones.
//!
//! One consumer group per run: RabbitMQ queues are consumed destructively, so a second
//! group would need a fan-out exchange with a queue per group, which this driver does
//! not build. Stream workloads (consume, pub/sub) consume with `no_ack` (delivered
//! counts as consumed, like Redis' `NOACK`); `--workload queue` consumes with manual
//! acknowledgement, a prefetch of 1024 per member (brokerd's queue consumer holds as
//! many) and one `basic.ack` per message.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures_util::future::{join_all, FutureExt};
use futures_util::stream::{select_all, SelectAll};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};

use crate::driver::{
    take_ready, AckFuture, ConsumerHandle, ConsumerSpec, Driver, DriverError, OutBatch,
    ProducerHandle, StartAt,
};
use crate::payload::template;
use crate::workload::{Ack, Durability, Workload, WorkloadKind};

/// Unacknowledged deliveries per queue member (brokerd's queue consumer holds as many).
pub const QUEUE_PREFETCH: u16 = 1024;
/// Messages taken per `receive` once one has arrived.
const MESSAGES_PER_RECEIVE: usize = 4096;
/// AMQP delivery mode of a message RabbitMQ keeps on disk.
const DELIVERY_MODE_PERSISTENT: u8 = 2;
/// AMQP delivery mode of a message kept in memory.
const DELIVERY_MODE_TRANSIENT: u8 = 1;

fn peer<E: std::fmt::Display>(e: E) -> DriverError {
    DriverError::Peer {
        peer: "rabbitmq",
        message: e.to_string(),
    }
}

fn queue_name(topic: &str, partition: u32) -> String {
    format!("{topic}.{partition}")
}

fn queue_names(topics: &[String], partitions: u32) -> Vec<String> {
    topics
        .iter()
        .flat_map(|t| (0..partitions).map(move |p| queue_name(t, p)))
        .collect()
}

/// Queue arguments for a run: a quorum queue when it must sync before confirming,
/// otherwise a classic queue in its version 2 format (RabbitMQ 3.10 on), the faster of
/// the two on disk (`RABBITMQ_QUEUE_VERSION=1` picks the old one to compare).
fn queue_arguments(workload: &Workload) -> FieldTable {
    let mut arguments = FieldTable::default();
    if persistent(workload) {
        arguments.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        return arguments;
    }
    let version = std::env::var("RABBITMQ_QUEUE_VERSION")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    arguments.insert("x-queue-version".into(), AMQPValue::ShortShortInt(version));
    arguments
}

fn persistent(workload: &Workload) -> bool {
    workload.durability != Durability::Os
}

/// Drives a rabbitmq-server.
pub struct RabbitMqDriver {
    uri: String,
    admin: Connection,
    /// Partitions per topic of the run, set by `create_topics` (`stored_messages` and
    /// `delete_topics` are given only the topic names).
    partitions: AtomicU32,
}

impl RabbitMqDriver {
    /// Connects to the server at `addr` (host:port), as the default guest user.
    pub async fn connect(addr: &str) -> Result<RabbitMqDriver, DriverError> {
        let uri = format!("amqp://guest:guest@{addr}/%2f");
        let admin = Self::open(&uri).await?;
        Ok(RabbitMqDriver {
            uri,
            admin,
            partitions: AtomicU32::new(0),
        })
    }

    async fn open(uri: &str) -> Result<Connection, DriverError> {
        Connection::connect(uri, ConnectionProperties::default())
            .await
            .map_err(peer)
    }

    async fn admin_channel(&self) -> Result<Channel, DriverError> {
        self.admin.create_channel().await.map_err(peer)
    }
}

impl Driver for RabbitMqDriver {
    type Producer = RabbitMqProducer;
    type Consumer = RabbitMqConsumer;

    fn name(&self) -> &'static str {
        "rabbitmq"
    }

    async fn durability_note(&self, workload: &Workload) -> String {
        let queues = if persistent(workload) {
            "quorum queues, persistent messages (confirmed once the queue's log is synced)"
        } else {
            "durable classic queues, transient messages (confirmed once enqueued; never synced)"
        };
        format!("{queues}, publisher confirms")
    }

    async fn create_topics(
        &self,
        topics: &[String],
        workload: &Workload,
    ) -> Result<(), DriverError> {
        self.partitions
            .store(workload.partitions, Ordering::Relaxed);
        let channel = self.admin_channel().await?;
        for queue in queue_names(topics, workload.partitions) {
            channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await
                .map_err(peer)?;
            channel
                .queue_declare(
                    queue.as_str().into(),
                    QueueDeclareOptions::durable(),
                    queue_arguments(workload),
                )
                .await
                .map_err(peer)?;
        }
        Ok(())
    }

    async fn prepare_group(
        &self,
        _topics: &[String],
        workload: &Workload,
        _group: &str,
        _start: StartAt,
    ) -> Result<(), DriverError> {
        if workload.consumer_groups > 1 {
            return Err(DriverError::Unsupported(
                "the rabbitmq driver runs one consumer group: a queue is consumed \
                 destructively, and fan-out to several groups is not built"
                    .into(),
            ));
        }
        Ok(())
    }

    async fn producer(
        &self,
        topic: &str,
        workload: &Workload,
    ) -> Result<RabbitMqProducer, DriverError> {
        let connection = Self::open(&self.uri).await?;
        let channel = connection.create_channel().await.map_err(peer)?;
        let confirms = workload.ack != Ack::None;
        if confirms {
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(peer)?;
        }
        let delivery_mode = if persistent(workload) {
            DELIVERY_MODE_PERSISTENT
        } else {
            DELIVERY_MODE_TRANSIENT
        };
        let queues = (0..workload.partitions)
            .map(|p| queue_name(topic, p))
            .collect();
        Ok(RabbitMqProducer {
            _connection: connection,
            channel,
            queues,
            properties: BasicProperties::default().with_delivery_mode(delivery_mode),
            confirms,
            payload: template(workload.message_size_bytes),
            batch_payloads: Vec::new(),
        })
    }

    async fn consumer(
        &self,
        spec: ConsumerSpec,
        workload: &Workload,
    ) -> Result<RabbitMqConsumer, DriverError> {
        let connection = Self::open(&self.uri).await?;
        let channel = connection.create_channel().await.map_err(peer)?;
        let per_message_acks = workload.kind == WorkloadKind::Queue;
        if per_message_acks {
            channel
                .basic_qos(QUEUE_PREFETCH, BasicQosOptions::default())
                .await
                .map_err(peer)?;
        }
        let options = BasicConsumeOptions {
            no_ack: !per_message_acks,
            ..BasicConsumeOptions::default()
        };
        let mut consumers = Vec::new();
        for queue in queue_names(&spec.topics, workload.partitions) {
            let tag = format!("{}-{}-{queue}", spec.group, spec.member);
            consumers.push(
                channel
                    .basic_consume(
                        queue.as_str().into(),
                        tag.as_str().into(),
                        options,
                        FieldTable::default(),
                    )
                    .await
                    .map_err(peer)?,
            );
        }
        Ok(RabbitMqConsumer {
            _connection: connection,
            deliveries: select_all(consumers),
            per_message_acks,
            chunk: Vec::new(),
        })
    }

    async fn stored_messages(&self, topics: &[String]) -> Result<Option<u64>, DriverError> {
        let channel = self.admin_channel().await?;
        let mut total = 0;
        for queue in queue_names(topics, self.partitions.load(Ordering::Relaxed)) {
            let declared = channel
                .queue_declare(
                    queue.as_str().into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .map_err(peer)?;
            total += u64::from(declared.message_count());
        }
        Ok(Some(total))
    }

    fn supports_queue(&self) -> bool {
        true
    }

    async fn delete_topics(&self, topics: &[String]) -> Result<(), DriverError> {
        let channel = self.admin_channel().await?;
        for queue in queue_names(topics, self.partitions.load(Ordering::Relaxed)) {
            channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await
                .map_err(peer)?;
        }
        Ok(())
    }
}

/// A publisher on its own connection and channel.
pub struct RabbitMqProducer {
    _connection: Connection,
    channel: Channel,
    /// Queue of each partition of the topic.
    queues: Vec<String>,
    properties: BasicProperties,
    confirms: bool,
    /// One message's payload, stamped per message.
    payload: Vec<u8>,
    /// Every payload of the batch being published (reused).
    batch_payloads: Vec<u8>,
}

impl ProducerHandle for RabbitMqProducer {
    async fn send(&mut self, batch: OutBatch) -> Result<AckFuture, DriverError> {
        let queue = self
            .queues
            .get(batch.partition as usize)
            .ok_or_else(|| peer(format!("no queue for partition {}", batch.partition)))?;
        // lapin's publish future resolves once its frames are written, so publishing
        // the batch's messages one after another would cost a socket write each;
        // publishing them together lets its I/O loop coalesce the writes. Each
        // message needs its own bytes until its future first runs.
        let size = self.payload.len();
        self.batch_payloads.resize(size * batch.count as usize, 0);
        for (i, slot) in (0..batch.count).zip(self.batch_payloads.chunks_exact_mut(size)) {
            slot.copy_from_slice(batch.payload(i, &mut self.payload));
        }
        let (channel, properties) = (&self.channel, &self.properties);
        let published = join_all(self.batch_payloads.chunks_exact(size).map(|payload| {
            channel.basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                payload,
                properties.clone(),
            )
        }))
        .await;
        let mut confirms = Vec::with_capacity(published.len());
        for confirm in published {
            let confirm = confirm.map_err(peer)?;
            if self.confirms {
                confirms.push(confirm);
            }
        }
        Ok(async move {
            for confirm in confirms {
                let confirmation = confirm.await.map_err(peer)?;
                if confirmation.is_nack() {
                    return Err(peer("a publish was nacked"));
                }
            }
            Ok(())
        }
        .boxed())
    }

    async fn close(self) -> Result<(), DriverError> {
        Ok(())
    }
}

/// A consumer on its own connection, consuming every partition queue.
pub struct RabbitMqConsumer {
    _connection: Connection,
    deliveries: SelectAll<Consumer>,
    /// `--workload queue`: ack every delivery (otherwise `no_ack`).
    per_message_acks: bool,
    /// The deliveries of the current `receive` (reused).
    chunk: Vec<lapin::message::Delivery>,
}

impl ConsumerHandle for RabbitMqConsumer {
    async fn receive(
        &mut self,
        max_wait: Duration,
        sink: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<(), DriverError> {
        take_ready(
            &mut self.deliveries,
            max_wait,
            MESSAGES_PER_RECEIVE,
            &mut self.chunk,
            peer,
        )
        .await?;
        for delivery in &self.chunk {
            sink(&delivery.data);
        }
        if self.per_message_acks {
            // One `basic.ack` per delivery, issued together so that lapin's I/O loop
            // can coalesce their writes (each future resolves once its ack is sent).
            let acks = join_all(
                self.chunk
                    .iter()
                    .map(|delivery| delivery.ack(BasicAckOptions::default())),
            )
            .await;
            for ack in acks {
                ack.map_err(peer)?;
            }
        }
        Ok(())
    }

    async fn close(self) -> Result<(), DriverError> {
        Ok(())
    }
}
