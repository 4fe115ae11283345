//! Produces keyed records and prints where each landed.
//!
//! ```sh
//! cargo run -p client --example produce -- [TOPIC] [COUNT]
//! ```
//!
//! Talks to the broker at `$BROKER_ADDR` (default 127.0.0.1:7171) and creates the
//! topic (4 partitions) if it does not exist.

use std::time::Instant;

use client::{Client, ErrorCode, ProducerConfig, Record};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let topic = args.next().unwrap_or_else(|| "example".to_string());
    let count: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(1000);
    let addr = std::env::var("BROKER_ADDR").unwrap_or_else(|_| client::DEFAULT_ADDR.to_string());

    let client = Client::connect(addr).await?;
    match client.create_topic(&topic, 4, &[]).await {
        Err(e) if e.code() == Some(ErrorCode::TopicExists) => {}
        other => other?,
    }

    let producer = client.producer(&topic, ProducerConfig::default()).await?;
    let started = Instant::now();
    // Queue everything first (send returns as soon as the record is queued), then
    // collect the acknowledgements: many records share a batch, several batches are
    // in flight at once.
    let mut acks = Vec::with_capacity(count);
    for i in 0..count {
        let record = Record::new(format!("event {i}"))
            .with_key(format!("user-{}", i % 16))
            .with_header("source", "example");
        acks.push(producer.send(record).await?);
    }
    let mut per_partition = [0usize; 4];
    for ack in acks {
        let stored = ack.await?;
        if let Some(n) = per_partition.get_mut(stored.partition as usize) {
            *n += 1;
        }
    }
    producer.close().await?;
    println!(
        "{count} records acknowledged (durable) in {:?}; per partition: {per_partition:?}",
        started.elapsed()
    );
    Ok(())
}
