//! Storage benchmarks: append throughput by batch size and durability policy (one
//! writer and eight), sequential reads of sealed segments, reopen after a clean
//! shutdown and after a crash, and the two candidate append paths (write(2) versus
//! stores into a preallocated shared mapping).
//!
//! Run: `cargo bench -p storage --bench log`. The data lives in a temporary directory
//! under `BENCH_DIR` (default: the system temp dir); point it at the file system you
//! want to measure. `REOPEN_LOG_MIB` sets the size of the log the reopen benchmarks
//! build (default 1024).

use std::hint::black_box;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use protocol::batch::BatchBuilder;
use storage::{Durability, Log, LogConfig};

const RECORD_BYTES: usize = 1024;

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir).unwrap(),
        None => tempfile::tempdir().unwrap(),
    }
}

fn batch(records: usize) -> Vec<u8> {
    let value = vec![0xabu8; RECORD_BYTES];
    let mut builder = BatchBuilder::with_capacity(records * (RECORD_BYTES + 32) + 64);
    for i in 0..records {
        builder
            .push(1_700_000_000_000 + i as i64, None, Some(&value), &[])
            .unwrap();
    }
    builder.finish().to_vec()
}

fn config(durability: Durability) -> LogConfig {
    LogConfig {
        segment_bytes: 256 * 1024 * 1024,
        retention_bytes: Some(512 * 1024 * 1024),
        durability,
        ..LogConfig::default()
    }
}

/// Keeps the benchmark's disk footprint bounded.
fn trim(log: &mut Log) {
    if log.segment_count() > 3 {
        log.enforce_retention().unwrap();
    }
}

fn append_os(c: &mut Criterion) {
    let mut group = c.benchmark_group("append_os");
    for records in [1usize, 64, 100, 1000] {
        let bytes = batch(records);
        let dir = bench_dir();
        let mut log = Log::open(dir.path(), config(Durability::Os)).unwrap();
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(format!("{records}x1KiB"), |b| {
            b.iter(|| {
                log.append(black_box(&bytes)).unwrap();
                trim(&mut log);
            })
        });
    }
    group.finish();
}

/// `writers` threads append through one log (as partition writers funnel through one
/// owner) and each waits for its own append to be durable before the next.
fn append_always_with(writers: usize, records: usize, iters: u64, dir: &Path) -> Duration {
    let log = Arc::new(Mutex::new(
        Log::open(dir, config(Durability::Always)).unwrap(),
    ));
    let reader = log.lock().unwrap().reader();
    let per_writer = iters.div_ceil(writers as u64);
    let start = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|_| {
            let log = log.clone();
            let reader = reader.clone();
            let bytes = batch(records);
            std::thread::spawn(move || {
                for _ in 0..per_writer {
                    let info = {
                        let mut log = log.lock().unwrap();
                        let info = log.append(&bytes).unwrap();
                        trim(&mut log);
                        info
                    };
                    reader
                        .wait_durable(info.next_offset, Duration::from_secs(60))
                        .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    start.elapsed()
}

fn append_always(c: &mut Criterion) {
    let mut group = c.benchmark_group("append_always");
    group.sample_size(10);
    for (writers, records) in [
        (1usize, 1usize),
        (1, 64),
        (8, 1),
        (8, 64),
        (8, 100),
        (8, 1000),
    ] {
        let bytes = batch(records).len() as u64;
        group.throughput(Throughput::Bytes(bytes));
        group.bench_function(format!("{writers}w_{records}x1KiB"), |b| {
            b.iter_custom(|iters| {
                let dir = bench_dir();
                append_always_with(writers, records, iters, dir.path())
            })
        });
    }
    group.finish();
}

fn read_sealed(c: &mut Criterion) {
    let dir = bench_dir();
    let mut log = Log::open(
        dir.path(),
        LogConfig {
            segment_bytes: 64 * 1024 * 1024,
            ..config(Durability::Os)
        },
    )
    .unwrap();
    let bytes = batch(64);
    let total_mib = 512;
    while log.size_bytes() < total_mib * 1024 * 1024 {
        log.append(&bytes).unwrap();
    }
    let reader = log.reader();
    let end = reader.end_offset();
    let mut group = c.benchmark_group("read_sealed");
    group.throughput(Throughput::Bytes(log.size_bytes()));
    group.sample_size(10);
    group.bench_function(format!("{total_mib}MiB_in_1MiB_reads"), |b| {
        b.iter(|| {
            let mut offset = 0;
            let mut seen = 0usize;
            while offset < end {
                let chunk = reader.read(offset, 1 << 20).unwrap();
                seen += chunk.bytes.len();
                offset = chunk.next_offset;
            }
            black_box(seen)
        })
    });
    group.finish();
}

fn fill(dir: &Path, mib: u64) {
    let mut log = Log::open(
        dir,
        LogConfig {
            segment_bytes: 1 << 30,
            ..config(Durability::Os)
        },
    )
    .unwrap();
    let bytes = batch(64);
    while log.size_bytes() < mib * 1024 * 1024 {
        log.append(&bytes).unwrap();
    }
    log.close().unwrap();
}

fn reopen(c: &mut Criterion) {
    let mib: u64 = std::env::var("REOPEN_LOG_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let dir = bench_dir();
    fill(dir.path(), mib);
    let config = LogConfig {
        segment_bytes: 1 << 30,
        ..config(Durability::Os)
    };
    let mut group = c.benchmark_group("reopen");
    group.sample_size(10);
    group.bench_function(format!("clean_{mib}MiB"), |b| {
        b.iter_batched(
            || (),
            |()| {
                Log::open(dir.path(), config.clone())
                    .unwrap()
                    .close()
                    .unwrap()
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function(format!("after_crash_{mib}MiB"), |b| {
        b.iter_batched(
            || (),
            // Dropping without close leaves no marker: the next open recovers.
            |()| drop(Log::open(dir.path(), config.clone()).unwrap()),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// The two candidate append paths over the same preallocated file, 64 KiB per append.
fn append_path(c: &mut Criterion) {
    use std::os::unix::fs::FileExt;
    const FILE_BYTES: u64 = 256 * 1024 * 1024;
    const CHUNK: usize = 64 * 1024;
    let chunk = vec![7u8; CHUNK];
    let mut group = c.benchmark_group("append_path");
    group.throughput(Throughput::Bytes(CHUNK as u64));

    let dir = bench_dir();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.path().join("pwrite"))
        .unwrap();
    file.set_len(FILE_BYTES).unwrap();
    let mut position = 0u64;
    group.bench_function("pwrite_64KiB", |b| {
        b.iter(|| {
            file.write_all_at(&chunk, position).unwrap();
            position = (position + CHUNK as u64) % FILE_BYTES;
        })
    });

    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.path().join("mmap"))
        .unwrap();
    file.set_len(FILE_BYTES).unwrap();
    // SAFETY: a private benchmark file nobody else touches.
    let mut map = unsafe { memmap2::MmapMut::map_mut(&file).unwrap() };
    let mut position = 0usize;
    group.bench_function("mmap_store_64KiB", |b| {
        b.iter(|| {
            map[position..position + CHUNK].copy_from_slice(&chunk);
            position = (position + CHUNK) % FILE_BYTES as usize;
        })
    });

    let mut position = 0u64;
    group.sample_size(20);
    group.bench_function("pwrite_fdatasync_64KiB", |b| {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("pwrite"))
            .unwrap();
        b.iter(|| {
            file.write_all_at(&chunk, position).unwrap();
            file.sync_data().unwrap();
            position = (position + CHUNK as u64) % FILE_BYTES;
        })
    });
    let mut position = 0usize;
    group.bench_function("mmap_store_msync_64KiB", |b| {
        b.iter(|| {
            map[position..position + CHUNK].copy_from_slice(&chunk);
            map.flush_range(position, CHUNK).unwrap();
            position = (position + CHUNK) % FILE_BYTES as usize;
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    append_os,
    append_always,
    read_sealed,
    reopen,
    append_path
);
criterion_main!(benches);
