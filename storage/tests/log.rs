//! Behaviour of the log through its public API: append, read, roll, reopen,
//! lookups, retention, limits.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{batch, read_all, small_config, stored};
use storage::{
    Durability, Error, IndexHandles, Log, LogConfig, LogOptions, ManualClock, MappedSegments,
};

#[test]
fn appended_bytes_come_back_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    let mut expected = Vec::new();
    for tag in 0..50u64 {
        let original = batch(tag, 1 + (tag % 5) as u32, 40, 1000);
        let bytes = original.clone();
        let info = log.append(&bytes).unwrap();
        expected.push((info.base_offset, stored(original, info.base_offset)));
    }
    assert!(log.segment_count() > 1, "small segments should have rolled");
    for max in [1, 100, 1000, 1 << 20] {
        assert_eq!(read_all(&log.reader(), 0, max).unwrap(), expected);
    }
    // Reading from every offset starts at the batch containing it.
    for (i, (base, bytes)) in expected.iter().enumerate() {
        let count = protocol::batch::BatchView::new(bytes)
            .unwrap()
            .header()
            .record_count as u64;
        for offset in *base..base + count {
            let chunk = log.reader().read(offset, 1).unwrap();
            assert_eq!(chunk.first_offset, *base);
            assert_eq!(&chunk.bytes[..], &expected[i].1[..]);
        }
    }
    let end = log.reader().end_offset();
    assert!(log.reader().read(end, 100).unwrap().is_empty());
    assert!(matches!(
        log.reader().read(end + 1, 100),
        Err(Error::OffsetOutOfRange { .. })
    ));
}

#[test]
fn clean_reopen_scans_nothing_and_crash_reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    for tag in 0..40 {
        log.append(&batch(tag, 3, 50, 10)).unwrap();
    }
    let before = read_all(&log.reader(), 0, 1 << 20).unwrap();
    log.close().unwrap();

    let mut log = Log::open(dir.path(), small_config()).unwrap();
    assert!(log.recovery_report().clean);
    assert_eq!(log.recovery_report().scanned_bytes, 0);
    assert_eq!(read_all(&log.reader(), 0, 1 << 20).unwrap(), before);
    let info = log.append(&batch(99, 2, 10, 10)).unwrap();
    assert_eq!(info.base_offset, 120);
    drop(log); // a crash as far as the disk is concerned (the page cache survives)

    let log = Log::open(dir.path(), small_config()).unwrap();
    assert!(!log.recovery_report().clean);
    assert!(log.recovery_report().scanned_bytes > 0);
    assert_eq!(log.reader().end_offset(), 122);
    assert_eq!(read_all(&log.reader(), 0, 1 << 20).unwrap().len(), 41);
}

#[test]
fn offset_for_time_finds_the_first_record_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    // batch i holds 4 records with timestamps 100*i .. 100*i+3
    for i in 0..60u64 {
        log.append(&batch(i, 4, 30, 100 * i as i64)).unwrap();
    }
    let reader = log.reader();
    assert_eq!(reader.offset_for_time(-5).unwrap(), Some(0));
    assert_eq!(reader.offset_for_time(0).unwrap(), Some(0));
    assert_eq!(reader.offset_for_time(2).unwrap(), Some(2));
    assert_eq!(reader.offset_for_time(4).unwrap(), Some(4));
    assert_eq!(reader.offset_for_time(3050).unwrap(), Some(124));
    assert_eq!(reader.offset_for_time(5903).unwrap(), Some(239));
    assert_eq!(reader.offset_for_time(5904).unwrap(), None);
    log.close().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.reader().offset_for_time(3050).unwrap(), Some(124));
}

#[test]
fn retention_deletes_oldest_sealed_segments_only() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let options = LogOptions {
        clock: clock.clone(),
        ..LogOptions::default()
    };
    let config = LogConfig {
        retention_bytes: Some(8192),
        retention_ms: Some(60_000),
        ..small_config()
    };
    let mut log = Log::open_with(dir.path(), config.clone(), options.clone()).unwrap();
    for i in 0..100u64 {
        log.append(&batch(i, 2, 100, 1_000_000 + i as i64)).unwrap();
    }
    let segments = log.segment_count();
    let outcome = log.enforce_retention().unwrap();
    assert!(!outcome.deleted_segments.is_empty());
    assert!(log.size_bytes() <= 8192 + 4096, "size {}", log.size_bytes());
    assert_eq!(
        log.segment_count(),
        segments - outcome.deleted_segments.len()
    );
    let start = log.reader().start_offset();
    assert_eq!(start, log.reader().read(start, 1).unwrap().first_offset);
    assert!(matches!(
        log.reader().read(0, 1),
        Err(Error::OffsetOutOfRange { .. })
    ));

    // Age: everything is old now, but the active segment stays.
    clock.advance(10 * 60_000);
    log.enforce_retention().unwrap();
    assert_eq!(log.segment_count(), 1);
    assert!(log.reader().end_offset() == 200);
    drop(log);
    let log = Log::open_with(dir.path(), config, options).unwrap();
    assert_eq!(log.segment_count(), 1);
    assert!(log.reader().start_offset() > 0);
}

#[test]
fn truncate_before_persists_the_new_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    for i in 0..50 {
        log.append(&batch(i, 2, 100, 0)).unwrap();
    }
    log.truncate_before(37).unwrap();
    assert_eq!(log.reader().start_offset(), 37);
    let chunk = log.reader().read(37, 1).unwrap();
    assert_eq!(
        chunk.first_offset, 36,
        "the batch containing 37 starts at 36"
    );
    assert!(matches!(
        log.reader().read(35, 1),
        Err(Error::OffsetOutOfRange { .. })
    ));
    drop(log);
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.reader().start_offset(), 37);
}

#[test]
fn oversized_and_invalid_batches_are_rejected_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        max_batch_bytes: 1000,
        ..small_config()
    };
    let mut log = Log::open(dir.path(), config).unwrap();
    assert!(matches!(
        log.append(&batch(1, 20, 100, 0)),
        Err(Error::BatchTooLarge { .. })
    ));
    let mut bad = batch(1, 1, 10, 0);
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(log.append(&bad), Err(Error::InvalidBatch(_))));
    assert_eq!(log.reader().end_offset(), 0);
    log.append(&batch(1, 1, 10, 0)).unwrap();
    assert_eq!(log.reader().end_offset(), 1);
}

#[test]
fn append_all_stores_a_burst_across_segments_and_stops_at_a_bad_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    // Enough 3-record batches to span several small segments.
    let originals: Vec<Vec<u8>> = (0..40)
        .map(|tag| batch(tag, 3, 60, 1000 + tag as i64))
        .collect();
    let mut bad = batch(99, 1, 10, 0);
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let mut slices: Vec<&[u8]> = originals.iter().map(|b| &b[..]).collect();
    slices.insert(30, &bad);

    let mut infos = Vec::new();
    let result = log.append_all(&slices, |info| infos.push(info));
    assert!(matches!(result, Err(Error::InvalidBatch(_))));
    // Everything before the bad batch is stored, in order, and nothing after it.
    assert_eq!(infos.len(), 30);
    for (i, info) in infos.iter().enumerate() {
        assert_eq!(
            (info.base_offset, info.next_offset),
            (3 * i as u64, 3 * i as u64 + 3)
        );
    }
    assert!(
        log.segment_count() > 1,
        "the burst should have rolled segments"
    );
    // The caller goes on after the bad batch.
    log.append_all(&slices[31..], |info| infos.push(info))
        .unwrap();
    assert_eq!(infos.len(), 40);
    let expected: Vec<_> = infos
        .iter()
        .zip(&originals)
        .map(|(info, original)| (info.base_offset, stored(original.clone(), info.base_offset)))
        .collect();
    assert_eq!(read_all(&log.reader(), 0, 1 << 20).unwrap(), expected);
    log.close().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(read_all(&log.reader(), 0, 1 << 20).unwrap(), expected);
}

#[test]
fn a_batch_larger_than_a_segment_gets_its_own_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    log.append(&batch(0, 1, 10, 0)).unwrap();
    let big = batch(1, 10, 1000, 0);
    assert!(big.len() > 4096);
    log.append(&big.clone()).unwrap();
    log.append(&batch(2, 1, 10, 0)).unwrap();
    let all = read_all(&log.reader(), 0, 1 << 20).unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[1].1, stored(big, 1));
    log.close().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(read_all(&log.reader(), 0, 1 << 20).unwrap().len(), 3);
}

#[test]
fn segments_roll_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(0));
    let options = LogOptions {
        clock: clock.clone(),
        ..LogOptions::default()
    };
    let config = LogConfig {
        segment_ms: Some(1000),
        ..small_config()
    };
    let mut log = Log::open_with(dir.path(), config, options).unwrap();
    log.append(&batch(0, 1, 10, 0)).unwrap();
    log.append(&batch(1, 1, 10, 0)).unwrap();
    assert_eq!(log.segment_count(), 1);
    clock.advance(1000);
    log.append(&batch(2, 1, 10, 0)).unwrap();
    assert_eq!(log.segment_count(), 2);
}

#[test]
fn damaged_or_missing_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    for i in 0..60 {
        log.append(&batch(i, 2, 60, i as i64)).unwrap();
    }
    let before = read_all(&log.reader(), 0, 1 << 20).unwrap();
    log.close().unwrap();
    std::fs::remove_file(storage::format::offset_index_path(dir.path(), 0)).unwrap();
    let index = storage::format::offset_index_path(dir.path(), before[20].0);
    let index = if index.exists() {
        index
    } else {
        storage::format::time_index_path(dir.path(), 0)
    };
    let mut bytes = std::fs::read(&index).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0xff;
    std::fs::write(&index, bytes).unwrap();

    let log = Log::open(dir.path(), small_config()).unwrap();
    assert!(log.recovery_report().rebuilt_indexes.contains(&0));
    assert_eq!(read_all(&log.reader(), 0, 1 << 20).unwrap(), before);
    for (base, _) in &before {
        assert_eq!(log.reader().read(*base, 1).unwrap().first_offset, *base);
    }
}

#[test]
fn always_durability_acknowledges_concurrent_writers_with_shared_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        durability: Durability::Always,
        ..small_config()
    };
    let log = Arc::new(Mutex::new(Log::open(dir.path(), config).unwrap()));
    let reader = log.lock().unwrap().reader();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = log.clone();
            let reader = reader.clone();
            std::thread::spawn(move || {
                for i in 0..20 {
                    let info = log
                        .lock()
                        .unwrap()
                        .append(&batch(t * 100 + i, 2, 20, 0))
                        .unwrap();
                    assert!(reader
                        .wait_durable(info.next_offset, Duration::from_secs(30))
                        .unwrap());
                    assert!(reader.durable_offset() >= info.next_offset);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(reader.durable_offset(), 320);
    let log = Arc::try_unwrap(log).unwrap().into_inner().unwrap();
    log.close().unwrap();
}

#[test]
fn durable_watch_follows_the_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config()).unwrap();
    let mut watch = log.reader().durable_watch();
    log.append(&batch(0, 3, 10, 0)).unwrap();
    assert_eq!(watch.borrow_and_update().offset, 0);
    assert_eq!(
        log.reader().durable_offset(),
        0,
        "os durability never syncs on its own"
    );
    log.sync().unwrap();
    assert!(watch.has_changed().unwrap());
    assert_eq!(watch.borrow_and_update().offset, 3);
}

#[test]
fn zero_ahead_runs_between_syncs_and_never_touches_appended_data() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        durability: Durability::Always,
        segment_bytes: 4 << 20,
        preallocate_bytes: 2 << 20,
        ..small_config()
    };
    let mut log = Log::open(dir.path(), config.clone()).unwrap();
    let reader = log.reader();
    let mut expected = Vec::new();
    let mut zeroed_ahead = false;
    // A low-rate producer: durable appends with idle gaps in which the syncer zeroes.
    // Enough of them to roll into a second segment.
    for tag in 0..1600u64 {
        let original = batch(tag, 3, 1000, tag as i64);
        let info = log.append(&original).unwrap();
        assert!(reader
            .wait_durable(info.next_offset, Duration::from_secs(30))
            .unwrap());
        expected.push((info.base_offset, stored(original.clone(), info.base_offset)));
        if tag % 50 == 0 {
            let end = info.position + original.len() as u64;
            for _ in 0..200 {
                if log.zeroed_until() > end {
                    zeroed_ahead = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
    assert!(zeroed_ahead, "the syncer never zeroed ahead of the writer");
    assert!(log.segment_count() > 1);
    assert_eq!(read_all(&reader, 0, 1 << 20).unwrap(), expected);
    // A crash (no close): recovery finds exactly what was appended, zeros after it.
    drop(log);
    let mut log = Log::open(dir.path(), config).unwrap();
    assert_eq!(read_all(&log.reader(), 0, 1 << 20).unwrap(), expected);
    let info = log.append(&batch(9999, 1, 10, 0)).unwrap();
    assert_eq!(info.base_offset, 4800);
    log.close().unwrap();
}

#[test]
fn space_is_reserved_ahead_of_the_writer_under_every_policy() {
    for durability in [
        Durability::Os,
        Durability::Always,
        Durability::IntervalMs(50),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            durability,
            segment_bytes: 1 << 20,
            preallocate_bytes: 64 * 1024,
            ..small_config()
        };
        let mut log = Log::open(dir.path(), config).unwrap();
        let mut end = 0;
        for tag in 0..40 {
            let original = batch(tag, 2, 1000, 0);
            let info = log.append(&original).unwrap();
            end = info.position + original.len() as u64;
        }
        assert!(
            end > 64 * 1024,
            "the appends should outgrow the first reservation"
        );
        // fallocate ran past the data (a plain write would leave the file at `end`),
        // so a full disk fails the reservation, before anything is written.
        let path = storage::format::segment_path(dir.path(), 0);
        let len = std::fs::metadata(&path).unwrap().len();
        assert!(len > end, "{durability:?}: file {len} bytes, data {end}");
        log.close().unwrap();
    }
}

/// Retention counts a segment's age from its last append, on the monotonic clock while
/// the log is open: a step of the wall clock deletes nothing early, and record
/// timestamps a producer chose (1970, 2100) change nothing.
#[test]
fn retention_ages_segments_by_the_broker_clock_not_by_steps_or_record_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let options = LogOptions {
        clock: clock.clone(),
        ..LogOptions::default()
    };
    let config = LogConfig {
        retention_ms: Some(3_600_000),
        ..small_config()
    };
    let mut log = Log::open_with(dir.path(), config.clone(), options.clone()).unwrap();
    for i in 0..60u64 {
        // Timestamps far in the past and far in the future.
        let ts = if i % 2 == 0 { 0 } else { 4_102_444_800_000 };
        log.append(&batch(i, 2, 100, ts)).unwrap();
    }
    let segments = log.segment_count();
    assert!(segments > 3);
    clock.advance(30_000);
    clock.step_wall(2 * 3_600_000);
    assert!(
        log.enforce_retention().unwrap().deleted_segments.is_empty(),
        "a step forward deletes nothing"
    );
    clock.step_wall(-4 * 3_600_000);
    clock.advance(3_600_000);
    let outcome = log.enforce_retention().unwrap();
    assert_eq!(log.segment_count(), 1, "an hour has passed: {outcome:?}");

    // Across a restart, time before the open is the wall clock's.
    for i in 60..120u64 {
        log.append(&batch(i, 2, 100, 0)).unwrap();
    }
    let segments = log.segment_count();
    log.close().unwrap();
    clock.advance(600_000);
    let mut log = Log::open_with(dir.path(), config.clone(), options.clone()).unwrap();
    assert!(log.enforce_retention().unwrap().deleted_segments.is_empty());
    assert_eq!(log.segment_count(), segments);
    clock.advance(3_600_000);
    log.enforce_retention().unwrap();
    assert_eq!(log.segment_count(), 1);
}

/// Remembers every group commit it is told about.
#[derive(Debug, Default)]
struct Rounds(Mutex<Vec<storage::SyncRound>>);

impl storage::SyncObserver for Rounds {
    fn synced(&self, round: storage::SyncRound) {
        self.0.lock().unwrap().push(round);
    }
}

#[test]
fn the_sync_observer_hears_each_round_with_what_it_covered() {
    let dir = tempfile::tempdir().unwrap();
    let rounds = Arc::new(Rounds::default());
    let options = LogOptions {
        sync_observer: Some(rounds.clone()),
        ..LogOptions::default()
    };
    let config = LogConfig {
        durability: Durability::Os,
        ..small_config()
    };
    let mut log = Log::open_with(dir.path(), config, options).unwrap();
    let (a, b) = (batch(1, 3, 50, 10), batch(2, 2, 50, 10));
    log.append(&a).unwrap();
    log.append(&b).unwrap();
    log.sync().unwrap();
    // A round with nothing new to make durable is not a group commit.
    log.sync().unwrap();
    let c = batch(3, 1, 10, 10);
    log.append(&c).unwrap();
    log.sync().unwrap();
    let seen: Vec<(u64, u64)> = rounds
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|r| (r.records, r.bytes))
        .collect();
    assert_eq!(seen, [(5, (a.len() + b.len()) as u64), (1, c.len() as u64)]);
}

/// Descriptors this process holds on files in `dir`.
fn descriptors_in(dir: &std::path::Path) -> usize {
    let dir = dir.canonicalize().unwrap();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.starts_with(&dir))
        .count()
}

#[test]
fn a_log_holds_a_descriptor_for_its_active_segment_only_and_index_handles_within_budget() {
    let handles = IndexHandles::new(2).unwrap();
    let options = || LogOptions {
        index_handles: Some(handles.clone()),
        ..LogOptions::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open_with(dir.path(), small_config(), options()).unwrap();
    let mut expected = Vec::new();
    for tag in 0..60u64 {
        let info = log.append(&batch(tag, 3, 40, 1000)).unwrap();
        expected.push(info.base_offset);
    }
    log.sync().unwrap();
    assert!(log.segment_count() >= 5, "small segments rolled");
    // The active segment's file, and its two index handles: sealed segments, their
    // indexes and the checkpoint hold none.
    assert_eq!(handles.stats().open, 2);
    assert_eq!(descriptors_in(dir.path()), 3);

    // A second log under the same budget takes the handles over.
    let other_dir = tempfile::tempdir().unwrap();
    let mut other = Log::open_with(other_dir.path(), small_config(), options()).unwrap();
    other.append(&batch(0, 3, 40, 1000)).unwrap();
    assert_eq!(
        descriptors_in(dir.path()),
        1,
        "only the active segment's file"
    );
    assert_eq!(handles.stats().open, 2);

    // The first log writes on, reopening its indexes by path; everything reads back.
    for tag in 60..80u64 {
        let info = log.append(&batch(tag, 3, 40, 1000)).unwrap();
        expected.push(info.base_offset);
    }
    assert!(handles.stats().reopened > 0);
    assert!(descriptors_in(dir.path()) <= 3);
    let read: Vec<u64> = read_all(&log.reader(), 0, 1 << 20)
        .unwrap()
        .into_iter()
        .map(|(base, _)| base)
        .collect();
    assert_eq!(read, expected);
    log.close().unwrap();
    other.close().unwrap();
    assert_eq!(descriptors_in(dir.path()), 0);
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert!(log.recovery_report().clean);
    assert_eq!(read_all(&log.reader(), 0, 1 << 20).unwrap().len(), 80);
}

/// Memory maps this process holds of files in `dir`.
fn maps_in(dir: &std::path::Path) -> usize {
    let dir = dir.canonicalize().unwrap();
    let dir = dir.to_str().unwrap().to_string();
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|line| line.contains(&dir))
        .count()
}

#[test]
fn sealed_segments_are_mapped_on_demand_within_the_budget() {
    let mapped = MappedSegments::new(2).unwrap();
    let options = || LogOptions {
        mapped_segments: Some(mapped.clone()),
        ..LogOptions::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open_with(dir.path(), small_config(), options()).unwrap();
    let mut expected = Vec::new();
    for tag in 0..120u64 {
        let original = batch(tag, 3, 40, 1000 + tag as i64 * 10);
        let info = log.append(&original).unwrap();
        expected.push((info.base_offset, stored(original, info.base_offset)));
    }
    let segments = log.segment_count();
    assert!(segments >= 8, "small segments rolled: {segments}");
    // Two sealed segments and the active one stay mapped (three maps each), not all.
    assert!(mapped.stats().open <= 2);
    assert!(mapped.stats().evicted > 0);
    assert!(maps_in(dir.path()) <= 9, "{} maps", maps_in(dir.path()));
    // Every batch reads back, through maps opened again on demand, and so do
    // lookups by time, which go through the reopened time indexes.
    let before = mapped.stats().reopened;
    assert_eq!(read_all(&log.reader(), 0, 1 << 20).unwrap(), expected);
    for (base, _) in expected.iter().step_by(7) {
        let ts = 1000 + *base as i64 / 3 * 10;
        assert_eq!(log.reader().offset_for_time(ts).unwrap(), Some(*base));
    }
    assert!(mapped.stats().reopened > before);
    assert!(mapped.stats().open <= 2);
    assert!(maps_in(dir.path()) <= 9);
    log.close().unwrap();
    assert_eq!(maps_in(dir.path()), 0);

    // Reopened, the log maps its active segment only, until its sealed ones are read.
    let log = Log::open_with(dir.path(), small_config(), options()).unwrap();
    assert!(log.recovery_report().clean);
    assert_eq!(maps_in(dir.path()), 3);
    assert_eq!(read_all(&log.reader(), 0, 1 << 20).unwrap(), expected);
    assert!(maps_in(dir.path()) <= 9);
}

#[test]
fn a_sealed_index_lost_while_unmapped_is_rebuilt_when_next_read() {
    let mapped = MappedSegments::new(1).unwrap();
    let options = || LogOptions {
        mapped_segments: Some(mapped.clone()),
        ..LogOptions::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open_with(dir.path(), small_config(), options()).unwrap();
    let mut expected = Vec::new();
    for tag in 0..60u64 {
        let original = batch(tag, 3, 40, 1000);
        let info = log.append(&original).unwrap();
        expected.push((info.base_offset, stored(original, info.base_offset)));
    }
    assert!(log.segment_count() >= 4);
    // The first segment is unmapped (the budget keeps one, the latest sealed); its
    // offset index goes missing and its time index is cut mid-entry.
    std::fs::remove_file(storage::format::offset_index_path(dir.path(), 0)).unwrap();
    let time = storage::format::time_index_path(dir.path(), 0);
    let len = std::fs::metadata(&time).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&time)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    assert_eq!(read_all(&log.reader(), 0, 1 << 20).unwrap(), expected);
    assert!(storage::format::offset_index_path(dir.path(), 0).exists());
    log.close().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert!(
        log.recovery_report().rebuilt_indexes.is_empty(),
        "rebuilt whole"
    );
    assert_eq!(read_all(&log.reader(), 0, 1 << 20).unwrap(), expected);
}
