//! `brokerctl produce TOPIC`: each line of standard input becomes one message (its
//! value, or with `--key-separator` its key and value, or with `--input json` all of
//! it: see [`crate::input`]).

use std::process::ExitCode;

use bytes::Bytes;
use clap::{Args, ValueEnum};
use client::tracing_context::TRACEPARENT_HEADER;
use client::{AckLevel, Client, ClientError, ProducerConfig, Record};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::input;
use crate::progress::{self, Progress, Unit, Work};
use crate::traces::{hex, start_trace};
use crate::{parse_key_value, print_json};

/// Distinct failure messages printed before the summary; the rest are only counted.
const MAX_REPORTED_ERRORS: usize = 5;

/// Arguments of `produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Topic to write to.
    topic: String,
    /// Key for every message (same key, same partition).
    #[arg(long, conflicts_with = "key_separator")]
    key: Option<String>,
    /// Each line is KEY<SEP>VALUE, split at the first SEP (like kcat -K); a line
    /// without SEP is refused.
    #[arg(long = "key-separator", value_name = "SEP", value_parser = parse_separator)]
    key_separator: Option<String>,
    /// How to read each line: `text`, the line is the value; `json`, an object like
    /// those `consume --json` prints, with its own key, headers and partition.
    #[arg(long, value_enum, default_value_t = Input::Text, conflicts_with = "key_separator")]
    input: Input,
    /// Header for every message, as NAME=VALUE; repeatable.
    #[arg(long = "header", value_name = "NAME=VALUE", value_parser = parse_key_value)]
    headers: Vec<(String, String)>,
    /// Send every message to this partition (instead of by key or round robin).
    #[arg(long)]
    partition: Option<u32>,
    /// When a message counts as acknowledged.
    #[arg(long, value_enum, default_value_t = Ack::Durable)]
    ack: Ack,
    /// Start a new trace: every message carries its W3C traceparent header, and the
    /// trace id is printed after the summary (`brokerctl trace ID` shows it).
    #[arg(long)]
    trace: bool,
}

/// `--input` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Input {
    /// The line is the message's value.
    Text,
    /// The line is a JSON object: {"key", "value", "headers", "partition"}.
    Json,
}

/// Parses `--key-separator`: any non-empty string.
fn parse_separator(s: &str) -> Result<String, String> {
    if s.is_empty() {
        Err("the key separator is empty; give one or more characters, e.g. ':'".to_string())
    } else {
        Ok(s.to_string())
    }
}

/// `--ack` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Ack {
    /// Fire and forget: sent, and never confirmed by the broker (failures after
    /// sending go unseen).
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
    let trace = args.trace.then(start_trace);
    let headers: Vec<(String, Bytes)> = args
        .headers
        .into_iter()
        .map(|(k, v)| (k, Bytes::from(v)))
        .chain(trace.map(|t| (TRACEPARENT_HEADER.to_string(), Bytes::from(t.to_header()))))
        .collect();
    let key = args.key.map(Bytes::from);

    let mut pending = Vec::new();
    let mut lines = BufReader::new(tokio::io::stdin()).split(b'\n');
    let mut number = 0u64;
    // Read from a file: a bar to its end, in bytes; from a pipe: a count of lines.
    let file_bytes = progress::stdin_file_bytes();
    let unit = if file_bytes.is_some() {
        Unit::Bytes
    } else {
        Unit::Messages
    };
    let read = Progress::start(Work::Produce, file_bytes, unit);
    while let Some(line) = lines.next_segment().await? {
        number += 1;
        read.advance(match unit {
            // The newline `split` took off.
            Unit::Bytes => line.len() as u64 + 1,
            Unit::Messages => 1,
        });
        let line = message_bytes(line);
        let parsed = match (args.input, &args.key_separator) {
            (Input::Json, _) => input::json(&line),
            (Input::Text, Some(separator)) => input::keyed(&line, separator.as_bytes()),
            (Input::Text, None) => Ok(input::plain(line)),
        };
        let message = match parsed {
            Ok(message) => message,
            Err(e) => {
                // Counted as failed, so the exit status says a line was not sent.
                let e = ClientError::InvalidArgument(format!("line {number}: {e}"));
                pending.push(Err(e));
                continue;
            }
        };
        let record = Record {
            key: message.key.or_else(|| key.clone()),
            value: message.value,
            headers: headers.iter().cloned().chain(message.headers).collect(),
            timestamp_ms: None,
            partition: message.partition.or(args.partition),
        };
        pending.push(producer.send(record).await);
    }
    drop(read);
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
    let summary = Summary {
        ack: args.ack,
        sent,
        confirmed: acknowledged,
        trace_id: trace.map(|t| hex(&t.trace_id)),
    };
    let summary = if json {
        print_json(&summary.json())
    } else {
        outln!("{}", summary.text())
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

/// What `produce` reports when it is done.
#[derive(Debug)]
struct Summary {
    ack: Ack,
    /// Lines read (each one a message handed to the producer).
    sent: usize,
    /// Messages acknowledged at the `--ack` level; with `--ack none`, those that were
    /// sent without a local error (the broker confirms nothing).
    confirmed: usize,
    /// With `--trace`: the trace every message carries.
    trace_id: Option<String>,
}

impl Summary {
    /// Says what happened: with `--ack none` nothing was acknowledged, so it does not
    /// claim so.
    fn text(&self) -> String {
        let Summary {
            sent, confirmed, ..
        } = self;
        let mut text = match self.ack {
            Ack::None => format!(
                "sent {confirmed} of {sent} message(s) without waiting for the broker \
                 (--ack none: none is confirmed stored)"
            ),
            Ack::Appended | Ack::Durable => {
                format!("acknowledged {confirmed} of {sent} message(s)")
            }
        };
        if let Some(id) = &self.trace_id {
            text.push_str(&format!("\ntrace {id}"));
        }
        text
    }

    fn json(&self) -> serde_json::Value {
        let mut value = match self.ack {
            Ack::None => json!({
                "sent": self.sent,
                "unconfirmed": self.confirmed,
                "failed": self.sent - self.confirmed,
            }),
            Ack::Appended | Ack::Durable => json!({
                "sent": self.sent,
                "acknowledged": self.confirmed,
                "failed": self.sent - self.confirmed,
            }),
        };
        if let Some(id) = &self.trace_id {
            value["trace_id"] = json!(id);
        }
        value
    }
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
    fn ack_none_does_not_claim_acknowledgements() {
        let summary = Summary {
            ack: Ack::None,
            sent: 3,
            confirmed: 3,
            trace_id: None,
        };
        assert!(
            !summary.text().contains("acknowledged"),
            "{}",
            summary.text()
        );
        assert!(summary.text().starts_with("sent 3 of 3 message(s)"));
        assert!(summary.json().get("acknowledged").is_none());
        assert_eq!(summary.json()["unconfirmed"], 3);
        let traced = Summary {
            ack: Ack::Durable,
            trace_id: Some("ab".repeat(16)),
            ..summary
        };
        assert_eq!(
            traced.text(),
            format!("acknowledged 3 of 3 message(s)\ntrace {}", "ab".repeat(16))
        );
        assert_eq!(traced.json()["acknowledged"], 3);
        assert_eq!(traced.json()["trace_id"], "ab".repeat(16));
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
