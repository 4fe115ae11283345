//! Appends `PROBE_MIB` MiB (default 1024) of 64 x 1 KiB batches with `os` durability
//! and prints the throughput: a quick profile target for the append path.
//! `cargo run --release -p storage --example append_probe -- <dir>`

use std::time::Instant;

use protocol::batch::BatchBuilder;
use storage::{Durability, Log, LogConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: append_probe <empty dir>")?;
    let mib: u64 = std::env::var("PROBE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let records: usize = std::env::var("PROBE_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let preallocate: u64 = std::env::var("PROBE_PREALLOCATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16 << 20);
    let value = vec![7u8; 1024];
    let mut builder = BatchBuilder::new();
    for i in 0..records {
        builder.push(i as i64, None, Some(&value), &[])?;
    }
    let batch = builder.finish();
    let config = LogConfig {
        durability: Durability::Os,
        preallocate_bytes: preallocate,
        ..LogConfig::default()
    };
    let mut log = Log::open(&dir, config)?;
    let total = mib * 1024 * 1024;
    let start = Instant::now();
    let mut written = 0u64;
    while written < total {
        log.append(&batch)?;
        written += batch.len() as u64;
    }
    let elapsed = start.elapsed();
    println!(
        "{} MiB in {:.3} s: {:.0} MiB/s ({} byte batches)",
        written >> 20,
        elapsed.as_secs_f64(),
        written as f64 / (1 << 20) as f64 / elapsed.as_secs_f64(),
        batch.len()
    );
    Ok(())
}
