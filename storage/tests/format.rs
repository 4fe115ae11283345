//! Reads a small log written by the code and checks every file byte by byte against
//! the layouts in `docs/storage.md`, using only offsets taken from that document.

use std::sync::Arc;

use protocol::batch::BatchBuilder;
use storage::{Durability, Log, LogConfig, LogOptions, ManualClock};

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

#[test]
fn files_match_the_documented_layout() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let options = LogOptions {
        clock,
        ..LogOptions::default()
    };
    let config = LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 1000,
        durability: Durability::Os,
        ..LogConfig::default()
    };
    let mut log = Log::open_with(dir.path(), config, options).unwrap();
    let mut first = BatchBuilder::new();
    first
        .push(5000, Some(b"key"), Some(b"value"), &[("h", b"xy")])
        .unwrap();
    first.push(4990, None, None, &[]).unwrap();
    let first = first.finish();
    log.append(&first).unwrap();
    let value = vec![b'v'; 900];
    for i in 0..6 {
        let mut b = BatchBuilder::new();
        b.push(6000 + i, None, Some(&value), &[]).unwrap();
        log.append(&b.finish()).unwrap();
    }
    assert_eq!(
        log.segment_count(),
        2,
        "a 4 KiB segment holds the first batch and four ~1 KiB ones"
    );
    log.close().unwrap();

    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "00000000000000000000.index",
            "00000000000000000000.log",
            "00000000000000000000.timeindex",
            "00000000000000000006.index",
            "00000000000000000006.log",
            "00000000000000000006.timeindex",
            "checkpoint",
            "clean-shutdown",
        ]
    );

    // Segment header.
    let seg = std::fs::read(dir.path().join("00000000000000000000.log")).unwrap();
    assert_eq!(&seg[0..8], b"BRKSEG\0\x01");
    assert_eq!(u64_at(&seg, 8), 0);
    assert_eq!(u64_at(&seg, 16), 0, "base_offset");
    assert_eq!(i64_at(&seg, 24), 1_700_000_000_000, "created_ms");

    // First batch at 32, stored as sent except base_offset.
    let batch = &seg[32..32 + first.len()];
    assert_eq!(&batch[8..], &first[8..]);
    assert_eq!(u64_at(batch, 0), 0, "base_offset");
    assert_eq!(u32_at(batch, 8) as usize, first.len(), "batch_len");
    assert_eq!(
        u32_at(batch, 12),
        crc32fast::hash(&batch[16..]),
        "crc over [16, len)"
    );
    assert_eq!(batch[16], 1, "magic");
    assert_eq!(batch[17], 0, "attributes");
    assert_eq!(u16_at(batch, 18), 0, "reserved");
    assert_eq!(u32_at(batch, 20), 2, "record_count");
    assert_eq!(i64_at(batch, 24), 5000, "first_timestamp_ms");
    assert_eq!(i64_at(batch, 32), 5000, "max_timestamp_ms");
    // Record 0 at 40.
    let r = &batch[40..];
    let record_len = u32_at(r, 0) as usize;
    assert_eq!(i32_at(r, 4), 0, "timestamp_delta");
    assert_eq!(i32_at(r, 8), 3, "key_len");
    assert_eq!(&r[12..15], b"key");
    assert_eq!(i32_at(r, 15), 5, "value_len");
    assert_eq!(&r[19..24], b"value");
    assert_eq!(u16_at(r, 24), 1, "header_count");
    assert_eq!(u16_at(r, 26), 1, "header key_len");
    assert_eq!(&r[28..29], b"h");
    assert_eq!(u32_at(r, 29), 2, "header value_len");
    assert_eq!(&r[33..35], b"xy");
    assert_eq!(record_len, 35 - 4);
    // Record 1 follows: no key, no value, -10 ms.
    let r = &r[4 + record_len..];
    assert_eq!(u32_at(r, 0), 14);
    assert_eq!(i32_at(r, 4), -10);
    assert_eq!(i32_at(r, 8), -1);
    assert_eq!(i32_at(r, 12), -1);
    assert_eq!(u16_at(r, 16), 0);

    // Sealed segment: file cut to its data; batches contiguous in offset.
    let mut position = 32;
    let mut expected_offset = 0;
    while position < seg.len() {
        assert_eq!(u64_at(&seg, position), expected_offset);
        expected_offset += u64::from(u32_at(&seg, position + 20));
        position += u32_at(&seg, position + 8) as usize;
    }
    assert_eq!(
        position,
        seg.len(),
        "sealed segment ends exactly at its last batch"
    );
    assert_eq!(expected_offset, 6, "next segment's base");

    // Offset index: first entry for the first batch; sparse at 1000 bytes.
    let index = std::fs::read(dir.path().join("00000000000000000000.index")).unwrap();
    assert_eq!(&index[0..8], b"BRKOIX\0\x01");
    assert_eq!(u64_at(&index, 8), 0);
    assert_eq!((index.len() - 16) % 8, 0);
    assert_eq!((u32_at(&index, 16), u32_at(&index, 20)), (0, 32));
    let entries = (index.len() - 16) / 8;
    assert!(
        entries >= 2,
        "a 1000-byte interval over ~3 KiB gives several entries"
    );
    for e in 0..entries {
        let (rel, pos) = (
            u32_at(&index, 16 + 8 * e),
            u32_at(&index, 20 + 8 * e) as usize,
        );
        assert_eq!(
            u64_at(&seg, pos),
            u64::from(rel),
            "entry {e} points at its batch"
        );
    }

    // Time index: strictly increasing maxima, the last holds the segment's maximum.
    let time = std::fs::read(dir.path().join("00000000000000000000.timeindex")).unwrap();
    assert_eq!(&time[0..8], b"BRKTIX\0\x01");
    assert_eq!(u64_at(&time, 8), 0);
    assert_eq!((time.len() - 16) % 16, 0);
    let n = (time.len() - 16) / 16;
    let maxima: Vec<i64> = (0..n).map(|e| i64_at(&time, 16 + 16 * e)).collect();
    assert!(maxima.windows(2).all(|w| w[0] < w[1]), "{maxima:?}");
    assert_eq!(
        *maxima.last().unwrap(),
        6003,
        "largest timestamp in segment 0 (batches 6000..=6003)"
    );
    for e in 0..n {
        let (rel, pos) = (
            u32_at(&time, 24 + 16 * e),
            u32_at(&time, 28 + 16 * e) as usize,
        );
        assert_eq!(u64_at(&seg, pos), u64::from(rel));
    }

    // Checkpoint: two 64-byte slots; the newer valid one says durable up to 8.
    let ckpt = std::fs::read(dir.path().join("checkpoint")).unwrap();
    assert_eq!(ckpt.len(), 128);
    let slot = (0..2)
        .map(|s| &ckpt[64 * s..64 * s + 64])
        .filter(|s| &s[0..4] == b"CKPT" && u32_at(s, 32) == crc32fast::hash(&s[0..32]))
        .max_by_key(|s| u64_at(s, 8))
        .unwrap();
    assert_eq!(u64_at(slot, 16), 8, "durable_offset");
    assert_eq!(u64_at(slot, 24), 0, "log_start_offset");

    // Clean-shutdown marker.
    let marker = std::fs::read(dir.path().join("clean-shutdown")).unwrap();
    let active = std::fs::read(dir.path().join("00000000000000000006.log")).unwrap();
    assert_eq!(marker.len(), 40);
    assert_eq!(&marker[0..4], b"CLEN");
    assert_eq!(u64_at(&marker, 8), 6, "active_base_offset");
    assert_eq!(
        u64_at(&marker, 16),
        active.len() as u64,
        "active_end_position"
    );
    assert_eq!(u64_at(&marker, 24), 8, "next_offset");
    assert_eq!(u32_at(&marker, 32), crc32fast::hash(&marker[0..32]));
}
