//! Damaged index entries: a seek never serves a batch that does not hold its offset,
//! damage is never blamed on the log, and the index is rebuilt.
//!
//! The two modes seen in the field: an offset entry rewritten to point at the next
//! batch boundary (the seek then started one batch late and skipped records), and an
//! entry's position off by 32 bytes, landing inside a batch (the read then failed as
//! "corrupt data in ….log" although the log was intact). Both keep the index increasing,
//! so the cheap check at open passes them: they are found on read.

mod common;

use std::path::Path;

use common::{batch, read_all};
use storage::format::{
    offset_index_path, time_index_path, INDEX_HEADER_BYTES, OFFSET_ENTRY_BYTES, TIME_ENTRY_BYTES,
};
use storage::{IndexHandles, Log, LogConfig, LogOptions};

/// Batches of about 700 bytes and an index entry every 2 KiB: entries are three batches
/// apart, so one can be moved to the next batch without breaking the index's order.
fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 * 1024,
        index_interval_bytes: 2048,
        preallocate_bytes: 4096,
        durability: storage::Durability::Os,
        ..LogConfig::default()
    }
}

/// (relative offset, position) of each offset entry of an index file.
fn offset_entries(bytes: &[u8]) -> Vec<(u32, u32)> {
    bytes[INDEX_HEADER_BYTES as usize..]
        .chunks_exact(OFFSET_ENTRY_BYTES)
        .map(|e| {
            let relative = u32::from_le_bytes(e[0..4].try_into().unwrap());
            let position = u32::from_le_bytes(e[4..8].try_into().unwrap());
            (relative, position)
        })
        .collect()
}

fn set_offset_entry_position(bytes: &mut [u8], entry: usize, position: u32) {
    let at = INDEX_HEADER_BYTES as usize + entry * OFFSET_ENTRY_BYTES + 4;
    bytes[at..at + 4].copy_from_slice(&position.to_le_bytes());
}

fn shift_time_entry_position(bytes: &mut [u8], entry: usize, by: u32) {
    let at = INDEX_HEADER_BYTES as usize + entry * TIME_ENTRY_BYTES + 12;
    let position = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    bytes[at..at + 4].copy_from_slice(&(position + by).to_le_bytes());
}

/// Damages the offset index of the segment at `base` in both ways, and one time entry.
fn damage(dir: &Path, base: u64, batch_positions: &[u32]) {
    let path = offset_index_path(dir, base);
    let mut bytes = std::fs::read(&path).unwrap();
    let entries = offset_entries(&bytes);
    assert!(
        entries.len() >= 6,
        "enough entries to damage: {}",
        entries.len()
    );
    // Mode 1: entry 2 points at the batch after the one it names.
    let (_, position) = entries[2];
    let next = *batch_positions.iter().find(|&&p| p > position).unwrap();
    assert!(next < entries[3].1, "still increasing");
    set_offset_entry_position(&mut bytes, 2, next);
    // Mode 2: entry 4's position is 32 bytes off, inside its batch.
    set_offset_entry_position(&mut bytes, 4, entries[4].1 + 32);
    std::fs::write(&path, bytes).unwrap();

    let path = time_index_path(dir, base);
    let mut bytes = std::fs::read(&path).unwrap();
    shift_time_entry_position(&mut bytes, 3, 32);
    std::fs::write(&path, bytes).unwrap();
}

#[test]
fn damaged_index_entries_never_misplace_a_seek_and_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    // Timestamps grow with offsets, so every time entry is a real lookup point.
    for i in 0..150u64 {
        log.append(&batch(i, 10, 60, i as i64 * 100)).unwrap();
    }
    let before = read_all(&log.reader(), 0, 1 << 20).unwrap();
    let end = log.reader().end_offset();
    log.close().unwrap();
    let bases = storage_bases(dir.path());
    assert!(
        bases.len() >= 2,
        "a sealed and an active segment: {bases:?}"
    );
    let pristine: Vec<(Vec<u8>, Vec<u8>)> = bases
        .iter()
        .map(|&base| {
            (
                std::fs::read(offset_index_path(dir.path(), base)).unwrap(),
                std::fs::read(time_index_path(dir.path(), base)).unwrap(),
            )
        })
        .collect();
    for (i, &base) in bases.iter().enumerate() {
        let next_base = bases.get(i + 1).copied().unwrap_or(end);
        damage(dir.path(), base, &batch_positions(&before, base, next_base));
    }

    let log = Log::open(dir.path(), config()).unwrap();
    assert!(
        log.recovery_report().rebuilt_indexes.is_empty(),
        "the damage passes the cheap checks at open"
    );
    let reader = log.reader();
    for offset in 0..end {
        let chunk = reader.read(offset, 1).unwrap();
        assert!(
            chunk.first_offset <= offset && offset < chunk.next_offset,
            "a read of {offset} served {}..{}",
            chunk.first_offset,
            chunk.next_offset
        );
    }
    for i in 0..150i64 {
        let wanted = (i * 10) as u64;
        assert_eq!(reader.offset_for_time(i * 100).unwrap(), Some(wanted));
    }
    assert_eq!(read_all(&reader, 0, 1 << 20).unwrap(), before);

    // The sealed segment's index files are already whole again on disk.
    let sealed = 0;
    assert_eq!(
        std::fs::read(offset_index_path(dir.path(), bases[sealed])).unwrap(),
        pristine[sealed].0
    );
    assert_eq!(
        std::fs::read(time_index_path(dir.path(), bases[sealed])).unwrap(),
        pristine[sealed].1
    );
    // What is on disk for the active segment is the part rebuilt while reading.
    drop(reader);
    log.close().unwrap();
    for (i, &base) in bases.iter().enumerate() {
        let rebuilt = offset_entries(&std::fs::read(offset_index_path(dir.path(), base)).unwrap());
        let want = offset_entries(&pristine[i].0);
        assert!(
            rebuilt.iter().all(|e| want.contains(e)),
            "segment {base}: rebuilt entries are true entries"
        );
    }
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(read_all(&log.reader(), 0, 1 << 20).unwrap(), before);
}

/// A log of 40 batches (400 records) in one active segment, closed, whose offset
/// and time indexes are then damaged: the two ways of `damage`.
fn one_damaged_active_segment(dir: &Path) {
    let mut log = Log::open(dir, config()).unwrap();
    for i in 0..40u64 {
        log.append(&batch(i, 10, 60, i as i64 * 100)).unwrap();
    }
    let before = read_all(&log.reader(), 0, 1 << 20).unwrap();
    log.close().unwrap();
    assert_eq!(storage_bases(dir), [0], "one active segment");
    damage(dir, 0, &batch_positions(&before, 0, 400));
}

#[test]
fn an_active_segment_repaired_while_written_is_sealed_with_a_whole_index() {
    let dir = tempfile::tempdir().unwrap();
    one_damaged_active_segment(dir.path());

    let mut log = Log::open(dir.path(), config()).unwrap();
    for offset in 0..400 {
        let chunk = log.reader().read(offset, 1).unwrap();
        assert!(chunk.first_offset <= offset && offset < chunk.next_offset);
    }
    // Appends go on after the repair until the segment rolls and is sealed.
    let mut i = 40;
    while storage_bases(dir.path()).len() < 2 {
        log.append(&batch(i, 10, 60, i as i64 * 100)).unwrap();
        i += 1;
    }
    let all = read_all(&log.reader(), 0, 1 << 20).unwrap();
    log.close().unwrap();
    let sealed = (
        std::fs::read(offset_index_path(dir.path(), 0)).unwrap(),
        std::fs::read(time_index_path(dir.path(), 0)).unwrap(),
    );
    // The index recovery builds from scratch is the one the seal wrote.
    std::fs::remove_file(offset_index_path(dir.path(), 0)).unwrap();
    std::fs::remove_file(time_index_path(dir.path(), 0)).unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.recovery_report().rebuilt_indexes, [0]);
    assert_eq!(read_all(&log.reader(), 0, 1 << 20).unwrap(), all);
    log.close().unwrap();
    assert_eq!(
        std::fs::read(offset_index_path(dir.path(), 0)).unwrap(),
        sealed.0
    );
    assert_eq!(
        std::fs::read(time_index_path(dir.path(), 0)).unwrap(),
        sealed.1
    );
}

/// Base offsets of the segments in `dir`, ascending.
fn storage_bases(dir: &Path) -> Vec<u64> {
    let mut bases: Vec<u64> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".log")?.parse().ok()
        })
        .collect();
    bases.sort_unstable();
    bases
}

/// File positions of the batches read from `base` up to `next_base`, in the segment
/// that starts at `base`.
fn batch_positions(batches: &[(u64, Vec<u8>)], base: u64, next_base: u64) -> Vec<u32> {
    let mut position = storage::format::SEGMENT_HEADER_BYTES as u32;
    let mut positions = Vec::new();
    for (_, bytes) in batches
        .iter()
        .filter(|(o, _)| (base..next_base).contains(o))
    {
        positions.push(position);
        position += bytes.len() as u32;
    }
    positions
}

#[test]
fn a_repaired_active_index_is_never_reopened_by_path() {
    // A budget of two handles shared with two more logs: each log's reservations
    // close the others' handles, so the repaired log's writer would reopen its index
    // by path on every write, reaching the rebuilt files, were it not pinned.
    let handles = IndexHandles::new(2).unwrap();
    let options = || LogOptions {
        index_handles: Some(handles.clone()),
        ..LogOptions::default()
    };
    let dir = tempfile::tempdir().unwrap();
    one_damaged_active_segment(dir.path());

    let mut log = Log::open_with(dir.path(), config(), options()).unwrap();
    let other_dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut others: Vec<Log> = other_dirs
        .iter()
        .map(|d| Log::open_with(d.path(), config(), options()).unwrap())
        .collect();
    for offset in 0..400 {
        let chunk = log.reader().read(offset, 1).unwrap();
        assert!(chunk.first_offset <= offset && offset < chunk.next_offset);
    }
    let rebuilt = (
        std::fs::read(offset_index_path(dir.path(), 0)).unwrap(),
        std::fs::read(time_index_path(dir.path(), 0)).unwrap(),
    );
    let evicted = handles.stats().evicted;
    for i in 40..60u64 {
        log.append(&batch(i, 10, 60, i as i64 * 100)).unwrap();
        for other in &mut others {
            other.append(&batch(i, 10, 60, i as i64 * 100)).unwrap();
        }
    }
    assert!(handles.stats().evicted > evicted, "the logs took turns");
    assert!(handles.stats().open <= 2);
    assert_eq!(
        storage_bases(dir.path()),
        [0],
        "still the one active segment"
    );
    // The writer's reservations and entries went to the files it maps, not to the
    // rebuilt ones now at the paths.
    assert_eq!(
        std::fs::read(offset_index_path(dir.path(), 0)).unwrap(),
        rebuilt.0
    );
    assert_eq!(
        std::fs::read(time_index_path(dir.path(), 0)).unwrap(),
        rebuilt.1
    );
    let all = read_all(&log.reader(), 0, 1 << 20).unwrap();
    assert_eq!(all.len(), 60);
    log.close().unwrap();
    for other in others {
        other.close().unwrap();
    }
    let log = Log::open(dir.path(), config()).unwrap();
    assert!(log.recovery_report().clean);
    assert!(log.recovery_report().rebuilt_indexes.is_empty());
    assert_eq!(read_all(&log.reader(), 0, 1 << 20).unwrap(), all);
}
