//! Redis Streams, through the `redis` crate (feature `redis`).
//!
//! A topic partition is a stream key `<topic>:<partition>`; a produce batch is one
//! pipeline of `XADD`s (one round trip); a consumer group is a Redis consumer group
//! read with `XREADGROUP ... NOACK` (delivered counts as consumed, like a committed
//! offset). Durability is the *server's* AOF setting (`appendfsync always` syncs before
//! replying, `everysec` once a second); the report quotes what the server says.

use std::time::Duration;

use futures_util::future::FutureExt;
use redis::aio::MultiplexedConnection;
use redis::streams::StreamReadReply;
use redis::Value;

use crate::driver::{
    AckFuture, ConsumerHandle, ConsumerSpec, Driver, DriverError, OutBatch, ProducerHandle, StartAt,
};
use crate::payload::template;
use crate::workload::Workload;

/// Entries one `XREADGROUP` asks for.
pub const READ_COUNT: usize = 1000;
/// Field name of the payload in each entry.
const FIELD: &str = "d";

fn peer<E: std::fmt::Display>(e: E) -> DriverError {
    DriverError::Peer {
        peer: "redis",
        message: e.to_string(),
    }
}

fn keys(topics: &[String], partitions: u32) -> Vec<String> {
    topics
        .iter()
        .flat_map(|t| (0..partitions).map(move |p| format!("{t}:{p}")))
        .collect()
}

/// Drives a redis-server.
#[derive(Debug, Clone)]
pub struct RedisDriver {
    client: redis::Client,
    admin: MultiplexedConnection,
}

impl RedisDriver {
    /// Connects to the server at `addr` (host:port).
    pub async fn connect(addr: &str) -> Result<RedisDriver, DriverError> {
        let client = redis::Client::open(format!("redis://{addr}/")).map_err(peer)?;
        let admin = client
            .get_multiplexed_async_connection()
            .await
            .map_err(peer)?;
        Ok(RedisDriver { client, admin })
    }

    async fn config(&self, key: &str) -> String {
        let mut con = self.admin.clone();
        let answer: Result<Vec<String>, _> = redis::cmd("CONFIG")
            .arg("GET")
            .arg(key)
            .query_async(&mut con)
            .await;
        answer
            .ok()
            .and_then(|v| v.get(1).cloned())
            .unwrap_or_else(|| "?".into())
    }
}

impl Driver for RedisDriver {
    type Producer = RedisProducer;
    type Consumer = RedisConsumer;

    fn name(&self) -> &'static str {
        "redis"
    }

    async fn durability_note(&self, _workload: &Workload) -> String {
        format!(
            "appendonly={} appendfsync={}",
            self.config("appendonly").await,
            self.config("appendfsync").await
        )
    }

    async fn create_topics(
        &self,
        topics: &[String],
        workload: &Workload,
    ) -> Result<(), DriverError> {
        let mut con = self.admin.clone();
        for key in keys(topics, workload.partitions) {
            redis::cmd("DEL")
                .arg(&key)
                .query_async::<()>(&mut con)
                .await
                .map_err(peer)?;
        }
        Ok(())
    }

    async fn prepare_group(
        &self,
        topics: &[String],
        workload: &Workload,
        group: &str,
        start: StartAt,
    ) -> Result<(), DriverError> {
        let mut con = self.admin.clone();
        let from = match start {
            StartAt::Earliest => "0",
            StartAt::Latest => "$",
        };
        for key in keys(topics, workload.partitions) {
            let created: Result<(), _> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(&key)
                .arg(group)
                .arg(from)
                .arg("MKSTREAM")
                .query_async(&mut con)
                .await;
            match created {
                Ok(()) => {}
                Err(e) if e.code() == Some("BUSYGROUP") => {}
                Err(e) => return Err(peer(e)),
            }
        }
        Ok(())
    }

    async fn producer(
        &self,
        topic: &str,
        workload: &Workload,
    ) -> Result<RedisProducer, DriverError> {
        Ok(RedisProducer {
            con: self
                .client
                .get_multiplexed_async_connection()
                .await
                .map_err(peer)?,
            topic: topic.to_string(),
            payload: template(workload.message_size_bytes),
        })
    }

    async fn consumer(
        &self,
        spec: ConsumerSpec,
        workload: &Workload,
    ) -> Result<RedisConsumer, DriverError> {
        Ok(RedisConsumer {
            con: self
                .client
                .get_multiplexed_async_connection()
                .await
                .map_err(peer)?,
            keys: keys(&spec.topics, workload.partitions),
            group: spec.group.clone(),
            name: format!("{}-{}", spec.group, spec.member),
        })
    }

    async fn stored_messages(&self, topics: &[String]) -> Result<Option<u64>, DriverError> {
        // The partition count is not known here; count every key of the topics.
        let mut con = self.admin.clone();
        let mut total = 0u64;
        for topic in topics {
            let found: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{topic}:*"))
                .query_async(&mut con)
                .await
                .map_err(peer)?;
            for key in found {
                let len: u64 = redis::cmd("XLEN")
                    .arg(&key)
                    .query_async(&mut con)
                    .await
                    .map_err(peer)?;
                total += len;
            }
        }
        Ok(Some(total))
    }

    async fn delete_topics(&self, topics: &[String]) -> Result<(), DriverError> {
        let mut con = self.admin.clone();
        for topic in topics {
            let found: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{topic}:*"))
                .query_async(&mut con)
                .await
                .map_err(peer)?;
            for key in found {
                redis::cmd("DEL")
                    .arg(&key)
                    .query_async::<()>(&mut con)
                    .await
                    .map_err(peer)?;
            }
        }
        Ok(())
    }
}

/// Pipelines `XADD`s on its own connection.
pub struct RedisProducer {
    con: MultiplexedConnection,
    topic: String,
    payload: Vec<u8>,
}

impl ProducerHandle for RedisProducer {
    async fn send(&mut self, batch: OutBatch) -> Result<AckFuture, DriverError> {
        let key = format!("{}:{}", self.topic, batch.partition);
        let mut pipe = redis::pipe();
        for i in 0..batch.count {
            pipe.cmd("XADD")
                .arg(&key)
                .arg("*")
                .arg(FIELD)
                .arg(batch.payload(i, &mut self.payload))
                .ignore();
        }
        let mut con = self.con.clone();
        Ok(async move { pipe.query_async::<()>(&mut con).await.map_err(peer) }.boxed())
    }

    async fn close(self) -> Result<(), DriverError> {
        Ok(())
    }
}

/// A member of a Redis consumer group on every partition key.
pub struct RedisConsumer {
    con: MultiplexedConnection,
    keys: Vec<String>,
    group: String,
    name: String,
}

impl ConsumerHandle for RedisConsumer {
    async fn receive(
        &mut self,
        max_wait: Duration,
        sink: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<(), DriverError> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.group)
            .arg(&self.name)
            .arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(max_wait.as_millis().max(1) as u64)
            .arg("NOACK")
            .arg("STREAMS")
            .arg(&self.keys);
        for _ in &self.keys {
            cmd.arg(">");
        }
        let reply: Option<StreamReadReply> = cmd.query_async(&mut self.con).await.map_err(peer)?;
        for stream in reply.map(|r| r.keys).unwrap_or_default() {
            for entry in stream.ids {
                match entry.map.get(FIELD) {
                    Some(Value::BulkString(bytes)) => sink(bytes),
                    // Not one of ours: let the runner count it as corrupt.
                    _ => sink(&[]),
                }
            }
        }
        Ok(())
    }

    async fn close(self) -> Result<(), DriverError> {
        Ok(())
    }
}
