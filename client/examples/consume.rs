//! Consumes a topic as a member of a consumer group, committing as it goes.
//!
//! ```sh
//! cargo run -p client --example consume -- [TOPIC] [GROUP]
//! ```
//!
//! Talks to the broker at `$BROKER_ADDR` (default 127.0.0.1:7171). Start it twice
//! with the same group to watch the partitions split between the two; stop one with
//! Ctrl-C and the other takes its partitions over. Exits after 5 s without a record.

use std::time::Duration;

use client::{Client, ConsumerConfig};

/// How long to wait for a record before exiting.
const IDLE_EXIT: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let topic = args.next().unwrap_or_else(|| "example".to_string());
    let group = args.next().unwrap_or_else(|| "example-group".to_string());
    let addr = std::env::var("BROKER_ADDR").unwrap_or_else(|_| client::DEFAULT_ADDR.to_string());

    let client = Client::connect(addr).await?;
    // Auto commit every second: positions of records already returned by `next`.
    let config = ConsumerConfig::default().auto_commit(Some(Duration::from_secs(1)));
    let mut consumer = client.consumer(&topic, &group, config).await?;
    println!(
        "member {} reads partitions {:?}",
        consumer.member_id(),
        consumer.assignment()
    );

    let mut read = 0u64;
    loop {
        let record = tokio::select! {
            next = tokio::time::timeout(IDLE_EXIT, consumer.next()) => match next {
                Ok(record) => record?,
                Err(_) => break,
            },
            _ = tokio::signal::ctrl_c() => break,
        };
        read += 1;
        let value = String::from_utf8_lossy(record.value.as_deref().unwrap_or_default());
        println!("{}@{}: {value}", record.partition, record.offset);
    }
    // Commits what was returned and leaves, so the group rebalances at once.
    consumer.close().await?;
    println!("read {read} records");
    Ok(())
}
