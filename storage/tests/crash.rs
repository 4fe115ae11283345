//! Crash tests that really damage files: tails cut at every byte, bytes flipped in
//! unsynced and synced batches, rot in the middle of sealed segments.

mod common;

use std::path::{Path, PathBuf};

use common::{batch, read_all, stored};
use storage::{Durability, Error, Log, LogConfig};

const SYNCED: u64 = 5;
const UNSYNCED: u64 = 4;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1 << 20,
        index_interval_bytes: 200,
        preallocate_bytes: 64 * 1024,
        durability: Durability::Os,
        ..LogConfig::default()
    }
}

/// A crashed log: SYNCED batches made durable, then UNSYNCED more, then dropped.
/// Returns the stored batches and their positions in the one segment file.
fn crashed_log(dir: &Path) -> (Vec<(u64, Vec<u8>)>, Vec<u64>) {
    let mut log = Log::open(dir, config()).unwrap();
    let mut batches = Vec::new();
    let mut positions = Vec::new();
    for tag in 0..SYNCED + UNSYNCED {
        let original = batch(tag, 1 + (tag % 3) as u32, 30 + tag as usize * 7, 1000);
        let info = log.append(&original.clone()).unwrap();
        batches.push((info.base_offset, stored(original, info.base_offset)));
        positions.push(info.position);
        if tag + 1 == SYNCED {
            log.sync().unwrap();
        }
    }
    drop(log);
    (batches, positions)
}

fn segment_file(dir: &Path) -> PathBuf {
    storage::format::segment_path(dir, 0)
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// Opens the damaged copy and returns its batches.
fn reopen(dir: &Path) -> storage::Result<Vec<(u64, Vec<u8>)>> {
    let log = Log::open(dir, config())?;
    read_all(&log.reader(), 0, 1 << 20)
}

#[test]
fn a_tail_cut_at_any_byte_reopens_to_the_longest_whole_prefix() {
    let original = tempfile::tempdir().unwrap();
    let (batches, positions) = crashed_log(original.path());
    let first_unsynced = positions[SYNCED as usize];
    let end = positions.last().unwrap() + batches.last().unwrap().1.len() as u64;
    for cut in first_unsynced..=end {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(original.path(), dir.path());
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(segment_file(dir.path()))
            .unwrap();
        file.set_len(cut).unwrap();
        drop(file);
        let got = reopen(dir.path()).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        let whole = positions
            .iter()
            .zip(&batches)
            .take_while(|(p, (_, b))| *p + b.len() as u64 <= cut)
            .count();
        assert_eq!(got, batches[..whole], "cut at {cut}");
        // And the log keeps working after the cut.
        let mut log = Log::open(dir.path(), config()).unwrap();
        let info = log.append(&batch(99, 1, 5, 0)).unwrap();
        assert_eq!(
            info.base_offset,
            batches
                .get(whole)
                .map_or_else(|| log.reader().end_offset() - 1, |b| b.0)
        );
    }
}

#[test]
fn a_flipped_byte_in_an_unsynced_batch_cuts_the_log_just_before_it() {
    let original = tempfile::tempdir().unwrap();
    let (batches, positions) = crashed_log(original.path());
    for victim in SYNCED as usize..batches.len() {
        let start = positions[victim];
        for at in start..start + batches[victim].1.len() as u64 {
            let dir = tempfile::tempdir().unwrap();
            copy_dir(original.path(), dir.path());
            let path = segment_file(dir.path());
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[at as usize] ^= 0x5a;
            std::fs::write(&path, bytes).unwrap();
            let got = reopen(dir.path()).unwrap_or_else(|e| panic!("flip at {at}: {e}"));
            assert_eq!(got, batches[..victim], "flip at {at} in batch {victim}");
        }
    }
}

#[test]
fn a_damaged_header_below_the_durable_watermark_is_reported_not_truncated() {
    let original = tempfile::tempdir().unwrap();
    let (_, positions) = crashed_log(original.path());
    let dir = tempfile::tempdir().unwrap();
    copy_dir(original.path(), dir.path());
    let path = segment_file(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    let at = positions[2] as usize + 16; // the magic byte of a synced batch
    bytes[at] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    match Log::open(dir.path(), config()) {
        Err(Error::Corrupt {
            path: p, position, ..
        }) => {
            assert_eq!(p, path);
            assert_eq!(position, positions[2]);
        }
        other => panic!("expected a corruption error, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "nothing may be cut away"
    );
}

/// Rot inside a record of a synced batch: after a crash, the walk of the active
/// segment checks every CRC, and the open refuses, naming the batch, cutting nothing
/// (the batch was acknowledged). After a clean close nothing is scanned at open, and
/// the damage is a typed read error while the rest stays readable.
#[test]
fn rot_in_a_synced_batch_refuses_the_open_after_a_crash_and_is_a_read_error_after_a_clean_close() {
    let original = tempfile::tempdir().unwrap();
    let (batches, positions) = crashed_log(original.path());
    let dir = tempfile::tempdir().unwrap();
    copy_dir(original.path(), dir.path());
    let path = segment_file(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    let at = positions[2] as usize + batches[2].1.len() - 3; // inside a record
    bytes[at] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    match Log::open(dir.path(), config()) {
        Err(Error::Corrupt {
            path: p,
            position,
            reason,
        }) => {
            assert_eq!(p, path);
            assert_eq!(position, positions[2]);
            assert!(
                reason.contains(&format!("offset {}", batches[2].0)),
                "{reason}"
            );
        }
        other => panic!("expected a corruption error, got {:?}", other.err()),
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "nothing may be cut away"
    );

    let clean = tempfile::tempdir().unwrap();
    let mut log = Log::open(clean.path(), config()).unwrap();
    for (_, stored) in &batches {
        log.append(stored).unwrap();
    }
    log.close().unwrap();
    let path = segment_file(clean.path());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[at] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let log = Log::open(clean.path(), config()).unwrap();
    let reader = log.reader();
    match reader.read(batches[2].0, 1 << 20) {
        Err(Error::Corrupt {
            path: p, position, ..
        }) => {
            assert_eq!(p, path);
            assert_eq!(position, positions[2]);
        }
        other => panic!("expected a corruption error, got {other:?}"),
    }
    // Before it: a read stops short of the damaged batch.
    let chunk = reader.read(0, 1 << 20).unwrap();
    assert_eq!(chunk.next_offset, batches[2].0);
    // After it: everything is there.
    assert_eq!(
        read_all(&reader, batches[3].0, 1 << 20).unwrap(),
        batches[3..]
    );
}

#[test]
fn rot_in_the_middle_of_a_sealed_segment_is_reported_with_file_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 4096,
        ..config()
    };
    let mut log = Log::open(dir.path(), config.clone()).unwrap();
    let mut placed = Vec::new();
    for tag in 0..40 {
        let info = log.append(&batch(tag, 2, 100, 0)).unwrap();
        placed.push(info);
    }
    log.close().unwrap();
    let victim = placed
        .iter()
        .find(|p| p.segment_base_offset == 0 && p.position > 1000)
        .unwrap();
    let next = placed
        .iter()
        .find(|p| p.base_offset > victim.base_offset)
        .unwrap();
    let path = storage::format::segment_path(dir.path(), 0);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[victim.position as usize + 60] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();

    let log = Log::open(dir.path(), config).unwrap();
    let reader = log.reader();
    match reader.read(victim.base_offset, 1 << 20) {
        Err(Error::Corrupt {
            path: p,
            position,
            reason,
        }) => {
            assert_eq!(p, path);
            assert_eq!(position, victim.position);
            assert!(reason.contains("CRC"), "{reason}");
        }
        other => panic!("expected a corruption error, got {other:?}"),
    }
    let rest = read_all(&reader, next.base_offset, 1 << 20).unwrap();
    assert_eq!(
        rest.len(),
        placed.len() - placed.iter().position(|p| p == next).unwrap()
    );
}

/// A new log has nothing to recover, so opening one must not be reported as a
/// recovery; a crashed one with data does, and a cleanly closed one does not.
#[test]
fn only_a_log_with_something_to_recover_reports_recovering() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = Log::open(dir.path(), config()).unwrap();
    let report = fresh.recovery_report().clone();
    assert!(!report.clean, "a new log has no marker");
    assert!(!report.recovered_anything(), "{report:?}");
    drop(fresh);
    let reopened = Log::open(dir.path(), config()).unwrap();
    assert!(
        !reopened.recovery_report().recovered_anything(),
        "a crash with nothing written leaves nothing to recover: {:?}",
        reopened.recovery_report()
    );
    drop(reopened);

    let crashed = tempfile::tempdir().unwrap();
    crashed_log(crashed.path());
    let log = Log::open(crashed.path(), config()).unwrap();
    assert!(
        log.recovery_report().recovered_anything(),
        "{:?}",
        log.recovery_report()
    );
    log.close().unwrap();
    let log = Log::open(crashed.path(), config()).unwrap();
    assert!(log.recovery_report().clean);
    assert!(!log.recovery_report().recovered_anything());
}
