//! `brokerctl produce TOPIC`: each line of standard input becomes one message.

use std::process::ExitCode;

use bytes::Bytes;
use clap::{Args, ValueEnum};
use client::{AckLevel, Client, ClientError, ProducerConfig, Record};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::{parse_key_value, print_json};

/// Distinct failure messages printed before the summary; the rest are only counted.
const MAX_REPORTED_ERRORS: usize = 5;

/// Arguments of `produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Topic to write to.
    topic: String,
    /// Key for every message (same key, same partition).
    #[arg(long)]
    key: Option<String>,
    /// Header for every message, as NAME=VALUE; repeatable.
    #[arg(long = "header", value_name = "NAME=VALUE", value_parser = parse_key_value)]
    headers: Vec<(String, String)>,
    /// Send every message to this partition (instead of by key or round robin).
    #[arg(long)]
    partition: Option<u32>,
    /// When a message counts as acknowledged.
    #[arg(long, value_enum, default_value_t = Ack::Durable)]
    ack: Ack,
}

/// `--ack` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Ack {
    /// The broker accepted the message (before appending it).
    None,
    /// Appended to the log (in the page cache).
    Appended,
    /// Appended and fsynced.
    Durable,
}

impl From<Ack> for AckLevel {
    fn from(ack: Ack) -> AckLevel {
        match ack {
            Ack::None => AckLevel::None,
            Ack::Appended => AckLevel::Appended,
            Ack::Durable => AckLevel::Durable,
        }
    }
}

/// Strips the line terminator (`\n` or `\r\n`) that `split(b'\n')` leaves behind.
fn message_bytes(mut line: Vec<u8>) -> Vec<u8> {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    line
}

/// Runs `produce`. Exits 0 only if every line was acknowledged at the `--ack` level.
pub async fn run(client: &Client, args: ProduceArgs, json: bool) -> anyhow::Result<ExitCode> {
    let config = ProducerConfig::default().ack(args.ack.into());
    let producer = client.producer(&args.topic, config).await?;
    let headers: Vec<(String, Bytes)> = args
        .headers
        .into_iter()
        .map(|(k, v)| (k, Bytes::from(v)))
        .collect();
    let key = args.key.map(Bytes::from);

    let mut pending = Vec::new();
    let mut lines = BufReader::new(tokio::io::stdin()).split(b'\n');
    while let Some(line) = lines.next_segment().await? {
        let record = Record {
            key: key.clone(),
            value: Some(Bytes::from(message_bytes(line))),
            headers: headers.clone(),
            timestamp_ms: None,
            partition: args.partition,
        };
        pending.push(producer.send(record).await);
    }
    let sent = pending.len();
    let mut acknowledged = 0usize;
    let mut errors: Vec<String> = Vec::new();
    for send in pending {
        let result = match send {
            Ok(future) => future.await,
            Err(e) => Err(e),
        };
        match result {
            Ok(_) => acknowledged += 1,
            Err(e) => note_error(&mut errors, &e),
        }
    }
    producer.close().await?;
    for error in &errors {
        eprintln!("brokerctl: produce failed: {error}");
    }
    let summary = if json {
        print_json(&json!({
            "sent": sent,
            "acknowledged": acknowledged,
            "failed": sent - acknowledged,
        }))
    } else {
        outln!("acknowledged {acknowledged} of {sent} message(s)")
    };
    // A closed stdout loses the summary, not the exit status, which still says
    // whether every line was acknowledged.
    match summary {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    Ok(if acknowledged == sent {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn note_error(errors: &mut Vec<String>, error: &ClientError) {
    let text = error.to_string();
    if errors.len() < MAX_REPORTED_ERRORS && !errors.contains(&text) {
        errors.push(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_endings_are_not_part_of_the_message() {
        assert_eq!(message_bytes(b"hello\r".to_vec()), b"hello");
        assert_eq!(message_bytes(b"hello".to_vec()), b"hello");
        assert_eq!(message_bytes(Vec::new()), b"");
    }

    #[test]
    fn repeated_errors_are_reported_once() {
        let mut errors = Vec::new();
        let e = ClientError::InvalidArgument("x".into());
        note_error(&mut errors, &e);
        note_error(&mut errors, &e);
        assert_eq!(errors.len(), 1);
    }
}
