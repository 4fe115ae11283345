//! `brokerctl stats`.

use std::process::ExitCode;

use client::{Client, ServerStatsResponse};
use serde_json::json;

use crate::print_json;
use crate::table::{self, Table};

/// Runs `stats`.
pub async fn run(client: &Client, json: bool) -> anyhow::Result<ExitCode> {
    let stats = client.server_stats().await?;
    if json {
        print_json(&stats_json(&stats))?;
    } else {
        out!("{}", stats_text(&stats))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn stats_text(stats: &ServerStatsResponse) -> String {
    let mut out = format!(
        "uptime       {}\nconnections  {}\n\n",
        table::uptime(stats.uptime_ms),
        stats.connections
    );
    let mut topics = Table::new(&["TOPIC", "MESSAGES", "BYTES", "MSG/S", "BYTES/S"]);
    for t in &stats.topics {
        let c = &t.counters;
        topics.row(vec![
            t.topic.clone(),
            c.messages_total.to_string(),
            table::bytes(c.bytes_total),
            c.messages_per_sec.to_string(),
            table::bytes(c.bytes_per_sec),
        ]);
    }
    out.push_str(&topics.render());
    out
}

fn stats_json(stats: &ServerStatsResponse) -> serde_json::Value {
    let topics: Vec<serde_json::Value> = stats
        .topics
        .iter()
        .map(|t| {
            json!({
                "topic": t.topic,
                "messages_total": t.counters.messages_total,
                "bytes_total": t.counters.bytes_total,
                "messages_per_sec": t.counters.messages_per_sec,
                "bytes_per_sec": t.counters.bytes_per_sec,
            })
        })
        .collect();
    json!({
        "uptime_ms": stats.uptime_ms,
        "connections": stats.connections,
        "topics": topics,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use client::protocol::ops::stats::{Counters, TopicCounters};

    #[test]
    fn stats_show_uptime_connections_and_rates() {
        let stats = ServerStatsResponse {
            uptime_ms: 3_723_000,
            connections: 2,
            topics: vec![TopicCounters {
                topic: "orders".into(),
                counters: Counters {
                    messages_total: 1000,
                    bytes_total: 64 * 1024,
                    messages_per_sec: 16,
                    bytes_per_sec: 1024,
                },
            }],
        };
        let text = stats_text(&stats);
        assert!(
            text.starts_with("uptime       1h 2m 3s\nconnections  2\n"),
            "{text}"
        );
        assert!(
            text.contains("orders      1000  64.0 KiB     16  1.0 KiB"),
            "{text}"
        );
        assert_eq!(stats_json(&stats)["topics"][0]["messages_per_sec"], 16);
    }
}
