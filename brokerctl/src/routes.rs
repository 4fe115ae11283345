//! `brokerctl routes` and `brokerctl publish`: routing rules and publishing by key.

use std::io::BufRead;
use std::process::ExitCode;

use bytes::Bytes;
use clap::{Args, Subcommand};
use client::tracing_context::TRACEPARENT_HEADER;
use client::{AckLevel, Client};
use serde_json::json;

use crate::table::Table;

/// Arguments of `routes`.
#[derive(Debug, Args)]
pub struct RoutesArgs {
    #[command(subcommand)]
    action: Option<RoutesAction>,
}

/// What to do with rules.
#[derive(Debug, Subcommand)]
enum RoutesAction {
    /// Send keys matching PATTERN (`*` one word, `#` zero or more) to TOPIC.
    Add {
        /// Routing-key pattern, e.g. `orders.*.eu`.
        pattern: String,
        /// Destination topic.
        topic: String,
        /// Only messages published with this header (`k=v`); repeatable, all must match.
        #[arg(long = "header", value_parser = crate::parse_key_value)]
        headers: Vec<(String, String)>,
    },
    /// List rules with their ids (the default).
    List,
    /// Delete rule ID.
    Delete {
        /// Rule id from `routes`.
        id: u64,
    },
}

/// Arguments of `publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Routing key, e.g. `orders.created.eu`.
    routing_key: String,
    /// Header (`k=v`) on every message, also matched against rules; repeatable.
    #[arg(long = "header", value_parser = crate::parse_key_value)]
    headers: Vec<(String, String)>,
    /// Start a new trace: every message carries its W3C traceparent header, and the
    /// trace id is printed after the summary (`brokerctl trace ID` shows it).
    #[arg(long)]
    trace: bool,
}

/// Runs `routes`.
pub async fn run(client: &Client, args: RoutesArgs, json: bool) -> anyhow::Result<ExitCode> {
    match args.action.unwrap_or(RoutesAction::List) {
        RoutesAction::Add {
            pattern,
            topic,
            headers,
        } => {
            let pairs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let id = client.add_route(&pattern, &topic, &pairs).await?;
            if json {
                outln!(
                    "{}",
                    json!({ "route_id": id, "pattern": pattern, "topic": topic })
                )?;
            } else {
                outln!("added route {id}: {pattern} -> {topic}")?;
            }
        }
        RoutesAction::Delete { id } => {
            client.delete_route(id).await?;
            if !json {
                outln!("deleted route {id}")?;
            }
        }
        RoutesAction::List => {
            let routes = client.list_routes().await?;
            if json {
                let value: Vec<_> = routes
                    .iter()
                    .map(|r| {
                        json!({
                            "route_id": r.route_id,
                            "pattern": r.pattern,
                            "topic": r.topic,
                            "headers": r.headers.iter().map(|h| json!({"key": h.key, "value": h.value})).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                outln!("{}", serde_json::Value::Array(value))?;
            } else {
                let mut table = Table::new(&["ID", "PATTERN", "TOPIC", "HEADERS"]);
                for r in &routes {
                    let headers: Vec<String> = r
                        .headers
                        .iter()
                        .map(|h| format!("{}={}", h.key, h.value))
                        .collect();
                    let headers = if headers.is_empty() {
                        "-".to_string()
                    } else {
                        headers.join(",")
                    };
                    table.row(vec![
                        r.route_id.to_string(),
                        r.pattern.clone(),
                        r.topic.clone(),
                        headers,
                    ]);
                }
                out!("{}", table.render())?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `publish`: each line of standard input is one message, published with the
/// routing key and acknowledged durably on every destination.
pub async fn publish(client: &Client, args: PublishArgs, json: bool) -> anyhow::Result<ExitCode> {
    let trace = args.trace.then(crate::traces::start_trace);
    let traceparent = trace.map(|t| t.to_header());
    let pairs: Vec<(&str, &str)> = args
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(traceparent.as_deref().map(|v| (TRACEPARENT_HEADER, v)))
        .collect();
    let trace_id = trace.map(|t| crate::traces::hex(&t.trace_id));
    let mut published = 0u64;
    let mut destinations = std::collections::BTreeSet::new();
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line?;
        let routed = client
            .publish(
                &args.routing_key,
                &pairs,
                [Bytes::from(line)],
                AckLevel::Durable,
            )
            .await?;
        destinations.extend(routed.into_iter().map(|r| r.topic));
        published += 1;
    }
    let topics: Vec<String> = destinations.into_iter().collect();
    if json {
        let mut value = json!({ "published": published, "topics": topics });
        if let Some(id) = &trace_id {
            value["trace_id"] = json!(id);
        }
        outln!("{value}")?;
    } else {
        outln!(
            "published {published} message(s) to {}",
            if topics.is_empty() {
                "-".to_string()
            } else {
                topics.join(", ")
            }
        )?;
        if let Some(id) = &trace_id {
            outln!("trace {id}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
