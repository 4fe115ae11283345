//! `brokerctl topics [list|create|describe|delete|alter|add-partitions]`.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use client::{Client, DescribeTopicResponse, TopicSummary};
use serde_json::json;

use crate::table::{self, Table};
use crate::{parse_key_value, print_json};

/// Arguments of `topics`.
#[derive(Debug, Args)]
pub struct TopicsArgs {
    #[command(subcommand)]
    command: Option<TopicsCommand>,
    /// With no subcommand: include the broker's internal topics (`topics --internal`).
    #[arg(long)]
    internal: bool,
}

#[derive(Debug, Subcommand)]
enum TopicsCommand {
    /// List topics: name, partitions, messages, bytes (the default).
    List {
        /// Include the broker's internal topics.
        #[arg(long)]
        internal: bool,
    },
    /// Create a topic.
    Create {
        /// Topic name.
        name: String,
        /// Number of partitions.
        #[arg(long, short)]
        partitions: u32,
        /// A setting that differs from the broker's default, as KEY=VALUE; repeatable.
        /// Keys: retention_bytes, retention_ms, segment_bytes, durability
        /// (always | os | interval:<ms>), and for queue groups ack_deadline_ms,
        /// max_delivery_attempts, retry_backoff_ms, retry_backoff_max_ms,
        /// retry_backoff_multiplier, retry_jitter, dead_letter_topic.
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        config: Vec<(String, String)>,
    },
    /// Change settings of a topic while it serves: retention_ms, retention_bytes and
    /// the queue settings (durability and segment_bytes are fixed at creation).
    Alter {
        /// Topic name.
        name: String,
        /// A setting to change, as KEY=VALUE; repeatable, at least one.
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value, required = true)]
        config: Vec<(String, String)>,
    },
    /// Grow a topic to more partitions. Keyed messages then mostly go to other
    /// partitions than before; consumer groups read the new ones from their start.
    AddPartitions {
        /// Topic name.
        name: String,
        /// The topic's new partition count (more than it has).
        #[arg(long)]
        count: u32,
    },
    /// Delete a topic and all its data.
    Delete {
        /// Topic name.
        name: String,
    },
    /// Show a topic's settings and each partition's start and end offsets and size.
    Describe {
        /// Topic name.
        name: String,
    },
}

/// Runs `topics`.
pub async fn run(client: &Client, args: TopicsArgs, json: bool) -> anyhow::Result<ExitCode> {
    match args.command.unwrap_or(TopicsCommand::List {
        internal: args.internal,
    }) {
        TopicsCommand::List { internal } => {
            let topics = client.list_topics(internal).await?;
            if json {
                print_json(&list_json(&topics))?;
            } else {
                out!("{}", list_table(&topics))?;
            }
        }
        TopicsCommand::Create {
            name,
            partitions,
            config,
        } => {
            let pairs: Vec<(&str, &str)> = config
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            client.create_topic(&name, partitions, &pairs).await?;
            if json {
                print_json(&json!({ "created": name, "partitions": partitions }))?;
            } else {
                outln!("created topic {name} with {partitions} partition(s)")?;
            }
        }
        TopicsCommand::Alter { name, config } => {
            let pairs: Vec<(&str, &str)> = config
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            client.alter_topic(&name, &pairs).await?;
            let changed: Vec<String> = config.iter().map(|(k, v)| format!("{k}={v}")).collect();
            if json {
                let settings: serde_json::Map<String, serde_json::Value> =
                    config.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                print_json(&json!({ "altered": name, "config": settings }))?;
            } else {
                outln!("altered topic {name}: {}", changed.join(", "))?;
            }
        }
        TopicsCommand::AddPartitions { name, count } => {
            let before = client.describe_topic(&name).await?.partitions.len();
            client.create_partitions(&name, count).await?;
            if json {
                print_json(&json!({ "topic": name, "partitions": count, "was": before }))?;
            } else {
                outln!("topic {name} now has {count} partition(s) (was {before})")?;
            }
        }
        TopicsCommand::Delete { name } => {
            client.delete_topic(&name).await?;
            if json {
                print_json(&json!({ "deleted": name }))?;
            } else {
                outln!("deleted topic {name}")?;
            }
        }
        TopicsCommand::Describe { name } => {
            let topic = client.describe_topic(&name).await?;
            if json {
                print_json(&describe_json(&topic))?;
            } else {
                out!("{}", describe_text(&topic))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn list_table(topics: &[TopicSummary]) -> String {
    let mut table = Table::new(&["NAME", "PARTITIONS", "MESSAGES", "BYTES"]);
    for t in topics {
        let name = if t.internal {
            format!("{} (internal)", t.name)
        } else {
            t.name.clone()
        };
        table.row(vec![
            name,
            t.partitions.to_string(),
            t.messages.to_string(),
            table::bytes(t.size_bytes),
        ]);
    }
    table.render()
}

fn list_json(topics: &[TopicSummary]) -> serde_json::Value {
    topics
        .iter()
        .map(|t| {
            json!({
                "name": t.name,
                "partitions": t.partitions,
                "messages": t.messages,
                "size_bytes": t.size_bytes,
                "internal": t.internal,
            })
        })
        .collect()
}

fn describe_text(topic: &DescribeTopicResponse) -> String {
    let mut out = format!(
        "topic {}{}\n",
        topic.name,
        if topic.internal { " (internal)" } else { "" }
    );
    for entry in &topic.config {
        out.push_str(&format!("  {} = {}\n", entry.key, entry.value));
    }
    out.push('\n');
    let mut table = Table::new(&["PARTITION", "START", "END", "MESSAGES", "SIZE"]);
    for p in &topic.partitions {
        table.row(vec![
            p.partition.to_string(),
            p.start_offset.to_string(),
            p.end_offset.to_string(),
            p.end_offset.saturating_sub(p.start_offset).to_string(),
            table::bytes(p.size_bytes),
        ]);
    }
    out.push_str(&table.render());
    out
}

fn describe_json(topic: &DescribeTopicResponse) -> serde_json::Value {
    let config: serde_json::Map<String, serde_json::Value> = topic
        .config
        .iter()
        .map(|e| (e.key.clone(), json!(e.value)))
        .collect();
    let partitions: Vec<serde_json::Value> = topic
        .partitions
        .iter()
        .map(|p| {
            json!({
                "partition": p.partition,
                "start_offset": p.start_offset,
                "end_offset": p.end_offset,
                "size_bytes": p.size_bytes,
            })
        })
        .collect();
    json!({
        "name": topic.name,
        "internal": topic.internal,
        "config": config,
        "partitions": partitions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use client::protocol::ops::topic::{ConfigEntry, PartitionInfo};

    fn described() -> DescribeTopicResponse {
        DescribeTopicResponse {
            name: "orders".into(),
            internal: false,
            config: vec![ConfigEntry {
                key: "durability".into(),
                value: "always".into(),
            }],
            partitions: vec![PartitionInfo {
                partition: 0,
                start_offset: 5,
                end_offset: 12,
                size_bytes: 2048,
            }],
        }
    }

    #[test]
    fn describe_shows_offsets_and_size() {
        assert_eq!(
            describe_text(&described()),
            "topic orders\n  durability = always\n\n\
             PARTITION  START  END  MESSAGES     SIZE\n\
             \x20       0      5   12         7  2.0 KiB\n"
        );
        let value = describe_json(&described());
        assert_eq!(value["config"]["durability"], "always");
        assert_eq!(value["partitions"][0]["end_offset"], 12);
    }

    #[test]
    fn list_json_has_every_field() {
        let topics = [TopicSummary {
            name: "a".into(),
            partitions: 2,
            messages: 10,
            size_bytes: 400,
            internal: false,
        }];
        let value = list_json(&topics);
        assert_eq!(value[0]["name"], "a");
        assert_eq!(value[0]["messages"], 10);
        assert_eq!(value[0]["size_bytes"], 400);
        assert!(list_table(&topics).contains("400 B"));
    }
}
