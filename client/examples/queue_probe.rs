//! Measures queue delivery with per-message acks: produces N messages of 1 KiB, then
//! 4 queue consumers take and ack them all. `BROKER_ADDR` (default 127.0.0.1:7171),
//! `MESSAGES` (default 100000).
//! `cargo run --release -p client --example queue_probe`

use std::time::Instant;

use client::{Client, ProducerConfig, QueueConsumerConfig, Record};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("BROKER_ADDR").unwrap_or_else(|_| client::DEFAULT_ADDR.to_string());
    let messages: u64 = std::env::var("MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let client = Client::connect(addr.clone()).await?;
    let topic = format!("queue-probe-{}", std::process::id());
    client.create_topic(&topic, 4, &[]).await?;
    let producer = client.producer(&topic, ProducerConfig::default()).await?;
    let payload = vec![b'x'; 1024];
    let mut pending = Vec::new();
    for _ in 0..messages {
        pending.push(producer.send(Record::new(payload.clone())).await?);
    }
    for p in pending {
        p.await?;
    }
    producer.close().await?;
    let start = Instant::now();
    let mut workers = Vec::new();
    let in_flight: usize = std::env::var("MAX_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(client::DEFAULT_MAX_IN_FLIGHT_REQUESTS);
    for _ in 0..4 {
        let config = client::ClientConfig::default().max_in_flight_requests(in_flight);
        let client = Client::connect_with(addr.clone(), config).await?;
        let topic = topic.clone();
        workers.push(tokio::spawn(async move {
            let config = QueueConsumerConfig {
                max_in_flight: 1000,
                ..QueueConsumerConfig::default()
            };
            let mut consumer = client.queue_consumer(&topic, "probe", config).await?;
            let mut acked = 0u64;
            let mut ack_time = std::time::Duration::ZERO;
            let mut acks = tokio::task::JoinSet::new();
            loop {
                let next =
                    tokio::time::timeout(std::time::Duration::from_millis(500), consumer.next())
                        .await;
                let Ok(Ok(Some(message))) = next else { break };
                let started = Instant::now();
                acks.spawn(async move {
                    let result = message.ack().await;
                    (result, started.elapsed())
                });
                acked += 1;
                while acks.len() > 512 {
                    if let Some(Ok((_, took))) = acks.join_next().await {
                        ack_time += took;
                    }
                }
                if acked.is_multiple_of(20_000) {
                    eprintln!(
                        "acked {acked}, mean ack latency {:?}, in flight {}",
                        ack_time / (acked as u32).max(1),
                        acks.len()
                    );
                }
            }
            while acks.join_next().await.is_some() {}
            Ok::<u64, client::ClientError>(acked)
        }));
    }
    let mut total = 0;
    for w in workers {
        total += w.await??;
    }
    let elapsed = start.elapsed().as_secs_f64() - 0.5;
    println!(
        "acked {total} of {messages} in {elapsed:.2} s: {:.0} msg/s",
        total as f64 / elapsed
    );
    Ok(())
}
