//! Seeded power-loss simulation: random appends, syncs and truncations against a
//! model, with injected write and sync failures, then a simulated crash that drops,
//! keeps at random, or tears unsynced data. After every crash the log must hold
//! exactly a prefix of what was appended (never a torn batch), every batch reported
//! durable must be there, and a failed sync must never be followed by a durable
//! acknowledgement.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{batch, read_all, stored};
use storage::sim::{CrashMode, FaultPlan, SimVfs};
use storage::{Durability, Error, Log, LogConfig, LogOptions, SyncWorkers};

const SEEDS: u64 = 200;

fn verbose() -> bool {
    std::env::var_os("POWER_LOSS_VERBOSE").is_some()
}
const CYCLES: u32 = 3;
const OPS_PER_CYCLE: u64 = 40;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 300,
        preallocate_bytes: 2048,
        durability: Durability::Os,
        ..LogConfig::default()
    }
}

fn run(seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimVfs::new(seed);
    let options = LogOptions {
        vfs: Arc::new(sim.clone()),
        ..LogOptions::default()
    };
    // model: every batch appended, as stored; `durable` of them were acknowledged.
    let mut model: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut durable = 0usize;
    let mut log_start = 0u64;
    let mut tag = 0u64;
    // Batches whose append failed the log, perhaps after writing them: any prefix of
    // them may survive.
    let mut maybe: Vec<(u64, Vec<u8>)> = Vec::new();
    for cycle in 0..CYCLES {
        let context = format!("seed {seed} cycle {cycle} injected {:?}", sim.injected());
        let mut log = Log::open_with(dir.path(), config(), options.clone())
            .unwrap_or_else(|e| panic!("{context}: open failed: {e}"));
        let reader = log.reader();
        if verbose() {
            eprintln!(
                "{context}: opened start {} end {} report {:?}",
                reader.start_offset(),
                reader.end_offset(),
                log.recovery_report()
            );
        }
        let recovered = read_all(&reader, reader.start_offset(), 1 << 20)
            .unwrap_or_else(|e| panic!("{context}: {e}"));
        let first = model
            .iter()
            .position(|(base, _)| *base >= reader.start_offset())
            .unwrap_or(model.len());
        let first = if first > 0
            && model[first - 1].0 < reader.start_offset()
            && reader
                .read(reader.start_offset(), 1)
                .is_ok_and(|c| c.first_offset == model[first - 1].0)
        {
            first - 1
        } else {
            first
        };
        assert!(
            reader.start_offset() >= log_start,
            "{context}: log start went back"
        );
        if recovered.len() > model.len() - first {
            // Only an append that failed the log may have left its batches behind.
            let extra = recovered.len() - (model.len() - first);
            assert!(
                extra <= maybe.len(),
                "{context}: more batches than appended"
            );
            model.extend(maybe.drain(..extra));
        }
        maybe.clear();
        assert!(
            recovered.len() <= model.len() - first,
            "{context}: more batches than appended"
        );
        assert_eq!(
            &model[first..first + recovered.len()],
            &recovered[..],
            "{context}: not a prefix"
        );
        assert!(
            first + recovered.len() >= durable,
            "{context}: lost {} durable batches",
            durable - first - recovered.len()
        );
        model.truncate(first + recovered.len());
        durable = durable.min(model.len());
        log_start = reader.start_offset();

        let plan = match sim.random() % 4 {
            0 => FaultPlan::default(),
            1 => FaultPlan {
                eio_at_sync: Some(sim.random() % 12),
                ..FaultPlan::default()
            },
            2 => FaultPlan {
                enospc_at_write: Some(sim.random() % 60),
                ..FaultPlan::default()
            },
            _ => FaultPlan {
                eio_at_write: Some(sim.random() % 60),
                ..FaultPlan::default()
            },
        };
        sim.arm(plan);
        let mut failed = false;
        for _ in 0..OPS_PER_CYCLE {
            match sim.random() % 10 {
                0..=6 => {
                    // Mostly one batch with `append`, sometimes a few with `append_all`.
                    let count = if sim.random().is_multiple_of(3) {
                        2 + (sim.random() % 4) as usize
                    } else {
                        1
                    };
                    let mut originals = Vec::new();
                    for _ in 0..count {
                        tag += 1;
                        let records = 1 + (sim.random() % 6) as u32;
                        let size = (sim.random() % 700) as usize;
                        originals.push((records, batch(tag, records, size, tag as i64)));
                    }
                    let would_get = reader.end_offset();
                    let mut infos = Vec::new();
                    let result = if count == 1 {
                        log.append(&originals[0].1.clone())
                            .map(|info| infos.push(info))
                    } else {
                        let slices: Vec<&[u8]> = originals.iter().map(|(_, b)| &b[..]).collect();
                        log.append_all(&slices, |info| infos.push(info))
                    };
                    if verbose() {
                        eprintln!("append {count} -> {result:?}, stored {infos:?}");
                    }
                    // Whatever was reported is stored, error or not.
                    let mut next = would_get;
                    for (info, (_, original)) in infos.iter().zip(&originals) {
                        assert!(!failed, "seed {seed}: append accepted after failure");
                        assert_eq!(info.base_offset, next, "seed {seed}");
                        next = info.next_offset;
                        model.push((info.base_offset, stored(original.clone(), info.base_offset)));
                    }
                    match result {
                        Ok(()) => assert_eq!(infos.len(), count, "seed {seed}"),
                        Err(e) => {
                            assert!(
                                !sim.injected().is_empty(),
                                "seed {seed}: unexpected error {e}"
                            );
                            if !failed && reader.failure().is_some() {
                                for (records, original) in &originals[infos.len()..] {
                                    maybe.push((next, stored(original.clone(), next)));
                                    next += u64::from(*records);
                                }
                            }
                            failed = reader.failure().is_some();
                        }
                    }
                }
                7 | 8 => {
                    let before = reader.durable_offset();
                    let result = log.sync();
                    if verbose() {
                        eprintln!("sync -> {result:?}");
                    }
                    match result {
                        Ok(offset) => {
                            assert!(!failed, "seed {seed}: sync succeeded after a failure");
                            assert_eq!(offset, reader.end_offset());
                            durable = model.len();
                        }
                        Err(_) => {
                            failed = true;
                            assert_eq!(
                                reader.durable_offset(),
                                before,
                                "seed {seed}: watermark moved on failure"
                            );
                        }
                    }
                }
                _ => {
                    if failed {
                        continue;
                    }
                    let end = reader.end_offset();
                    let target = log_start + sim.random() % (end - log_start + 1);
                    let result = log.truncate_before(target);
                    if verbose() {
                        eprintln!("truncate_before {target} -> {result:?}");
                    }
                    if result.is_ok() {
                        log_start = reader.start_offset();
                    } else {
                        failed = true;
                    }
                }
            }
            if failed {
                let end = reader.end_offset();
                assert!(matches!(log.sync(), Err(Error::Failed { .. })));
                assert!(log.wait_durable(end + 1, Duration::ZERO).is_err());
                assert!(reader.durable_offset() <= end);
            }
        }
        drop(log);
        sim.disarm();
        let mode = match sim.random() % 3 {
            0 => CrashMode::DropUnsynced,
            1 => CrashMode::KeepRandomPages,
            _ => CrashMode::TearLastWrite,
        };
        if verbose() {
            eprintln!("crash {mode:?}");
        }
        sim.crash(mode).unwrap();
    }
}

#[test]
fn seeded_power_loss_keeps_a_durable_prefix() {
    let base: u64 = std::env::var("POWER_LOSS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    for seed in base..base + SEEDS {
        run(seed);
    }
}

/// An `always` log written slowly, so its syncer zeroes ahead between syncs, then a
/// power loss in each crash mode: every acknowledged batch is there, in order, and
/// nothing else but a prefix of the unacknowledged one.
#[test]
fn zero_ahead_keeps_every_durable_batch_through_power_loss() {
    for seed in 0..12u64 {
        let dir = tempfile::tempdir().unwrap();
        let sim = SimVfs::new(seed);
        let options = LogOptions {
            vfs: Arc::new(sim.clone()),
            ..LogOptions::default()
        };
        let config = LogConfig {
            segment_bytes: 512 * 1024,
            preallocate_bytes: 256 * 1024,
            durability: Durability::Always,
            ..LogConfig::default()
        };
        let mut log = Log::open_with(dir.path(), config.clone(), options.clone()).unwrap();
        let reader = log.reader();
        let mut acked = Vec::new();
        let mut zeroed_ahead = false;
        for tag in 0..240u64 {
            let original = batch(tag, 2, 1500, tag as i64);
            let info = log.append(&original.clone()).unwrap();
            assert!(reader
                .wait_durable(info.next_offset, Duration::from_secs(30))
                .unwrap());
            let end = info.position + original.len() as u64;
            acked.push((info.base_offset, stored(original, info.base_offset)));
            if tag % 16 == 0 {
                // Idle time for the syncer to zero the space ahead.
                std::thread::sleep(Duration::from_millis(3));
                zeroed_ahead |= log.zeroed_until() > end;
            }
        }
        assert!(zeroed_ahead, "seed {seed}: the syncer never zeroed ahead");
        // One more, not waited for: it may or may not survive.
        let last = batch(999, 1, 100, 0);
        let _ = log.append(&last);
        drop(log);
        let mode = match seed % 3 {
            0 => CrashMode::DropUnsynced,
            1 => CrashMode::KeepRandomPages,
            _ => CrashMode::TearLastWrite,
        };
        sim.crash(mode).unwrap();
        let log = Log::open_with(dir.path(), config, options).unwrap();
        let recovered = read_all(&log.reader(), 0, 1 << 20).unwrap();
        assert!(
            recovered.len() == acked.len() || recovered.len() == acked.len() + 1,
            "seed {seed}: {} batches recovered, {} acknowledged",
            recovered.len(),
            acked.len()
        );
        assert_eq!(
            &recovered[..acked.len()],
            &acked[..],
            "seed {seed} {mode:?}"
        );
    }
}

/// Sixteen logs, most `always` and some `interval`, written at once from four threads
/// and group-committed by one pool of two durability workers, then a power loss in
/// each crash mode: in every log every acknowledged batch is there, in order, and
/// nothing else but the one batch that was never waited for. This is the case the
/// pool must get right that a thread per log never met: rounds for different logs
/// interleaved on the same threads, logs queued while another log's round runs.
#[test]
fn logs_sharing_two_workers_keep_every_durable_batch_through_power_loss() {
    for seed in 0..6u64 {
        run_shared(seed, None);
    }
}

/// The same logs with one `fdatasync` failing: a data file's, a checkpoint's, a
/// sealed segment's or a zero-ahead step's, as the seed falls. The log it hits fails,
/// the others on the same workers go on, and after the power loss each holds every
/// batch it acknowledged (what came after a failure may or may not be there).
#[test]
fn a_failed_flush_among_logs_sharing_workers_loses_no_acknowledged_batch() {
    for seed in 0..8u64 {
        let plan = FaultPlan {
            eio_at_sync: Some(10 + seed * 17),
            ..FaultPlan::default()
        };
        let (injected, failed) = run_shared(seed, Some(plan));
        assert_eq!(injected.len(), 1, "seed {seed}: {injected:?}");
        assert_eq!(failed, 1, "seed {seed}: {injected:?}");
    }
}

/// One run of the shared-workers power-loss test; returns the faults injected and
/// how many logs failed.
fn run_shared(seed: u64, faults: Option<FaultPlan>) -> (Vec<String>, usize) {
    const LOGS: usize = 16;
    const WRITERS: usize = 4;
    const BATCHES: u64 = 40;
    let root = tempfile::tempdir().unwrap();
    let sim = SimVfs::new(seed);
    let options = LogOptions {
        vfs: Arc::new(sim.clone()),
        sync_workers: Some(SyncWorkers::start(2).unwrap()),
        ..LogOptions::default()
    };
    let config = |i: usize| LogConfig {
        segment_bytes: 16 * 1024,
        preallocate_bytes: 8 * 1024,
        durability: if i % 4 == 3 {
            Durability::IntervalMs(2)
        } else {
            Durability::Always
        },
        ..LogConfig::default()
    };
    let dirs: Vec<_> = (0..LOGS)
        .map(|i| root.path().join(format!("log-{i}")))
        .collect();
    let logs: Vec<Vec<(usize, Log)>> = (0..WRITERS)
        .map(|w| {
            (w..LOGS)
                .step_by(WRITERS)
                .map(|i| {
                    (
                        i,
                        Log::open_with(&dirs[i], config(i), options.clone()).unwrap(),
                    )
                })
                .collect()
        })
        .collect();
    // Armed once every log is open, so the failure hits a round, not an open.
    if let Some(plan) = faults {
        sim.arm(plan);
    }
    let writers: Vec<_> = logs
        .into_iter()
        .map(|mut logs| {
            std::thread::spawn(move || {
                let mut acked = vec![Vec::new(); logs.len()];
                let mut failed = vec![false; logs.len()];
                for tag in 0..BATCHES {
                    // Append to every log first, then wait: rounds for several
                    // logs are pending together.
                    let mut waits = Vec::new();
                    for (k, (i, log)) in logs.iter_mut().enumerate() {
                        if failed[k] {
                            continue;
                        }
                        let original = batch(tag * 100 + *i as u64, 2, 700, tag as i64);
                        match log.append(&original.clone()) {
                            Ok(info) => waits.push((k, info, original)),
                            Err(_) if faults.is_some() => failed[k] = true,
                            Err(e) => panic!("seed {seed}: append failed: {e}"),
                        }
                    }
                    for (k, info, original) in waits {
                        let waited = logs[k]
                            .1
                            .wait_durable(info.next_offset, Duration::from_secs(30));
                        match waited {
                            Ok(true) => acked[k]
                                .push((info.base_offset, stored(original, info.base_offset))),
                            Err(_) if faults.is_some() => failed[k] = true,
                            other => panic!("seed {seed}: wait failed: {other:?}"),
                        }
                    }
                }
                for (_, log) in &mut logs {
                    // Never waited for: may or may not survive.
                    let _ = log.append(&batch(9999, 1, 100, 0));
                }
                let mine: Vec<usize> = logs.iter().map(|(i, _)| *i).collect();
                drop(logs);
                let failed = failed.iter().filter(|f| **f).count();
                (mine.into_iter().zip(acked).collect::<Vec<_>>(), failed)
            })
        })
        .collect();
    let mut acked = Vec::new();
    let mut failed = 0;
    for writer in writers {
        let (mine, mine_failed) = writer.join().unwrap();
        acked.extend(mine);
        failed += mine_failed;
    }
    let injected = sim.injected();
    sim.disarm();
    let mode = match seed % 3 {
        0 => CrashMode::DropUnsynced,
        1 => CrashMode::KeepRandomPages,
        _ => CrashMode::TearLastWrite,
    };
    sim.crash(mode).unwrap();
    for (i, acked) in acked {
        let context = format!("seed {seed} log {i} {mode:?} injected {:?}", sim.injected());
        let log = Log::open_with(&dirs[i], config(i), options.clone()).unwrap();
        let recovered = read_all(&log.reader(), 0, 1 << 20).unwrap();
        // Without faults only the batch never waited for may come on top; after one,
        // anything appended past the last acknowledgement may.
        let most = if faults.is_some() {
            usize::MAX
        } else {
            acked.len() + 1
        };
        assert!(
            recovered.len() >= acked.len() && recovered.len() <= most,
            "{context}: {} batches recovered, {} acknowledged",
            recovered.len(),
            acked.len()
        );
        assert_eq!(&recovered[..acked.len()], &acked[..], "{context}");
    }
    (injected, failed)
}

/// A batch larger than a segment, arriving at an empty active segment whose successor
/// cannot be created (the disk is full), fails the log; retention and truncation on
/// the failed log then refuse with an error instead of panicking on a log without
/// segments.
#[test]
fn retention_after_a_roll_that_failed_on_a_full_disk_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimVfs::new(7);
    let options = LogOptions {
        vfs: Arc::new(sim.clone()),
        ..LogOptions::default()
    };
    // `os`: no syncer thread, so no zero-ahead write can take the injected fault
    // before the roll's segment creation does.
    let config = LogConfig {
        segment_bytes: 4096,
        preallocate_bytes: 4096,
        retention_bytes: Some(1),
        durability: Durability::Os,
        ..LogConfig::default()
    };
    let mut log = Log::open_with(dir.path(), config, options).unwrap();
    sim.arm(FaultPlan {
        enospc_at_write: Some(0),
        ..FaultPlan::default()
    });
    let huge = batch(1, 4, 4000, 0);
    assert!(log.append(&huge).is_err(), "the disk is full");
    sim.disarm();
    assert!(log.enforce_retention().is_err());
    assert!(log.truncate_before(1).is_err());
}

/// A burst of acknowledged batches, a crash (in every mode), then one flipped bit in
/// one of them: the open refuses, naming the damaged batch's offset, and cuts nothing.
/// Before the checkpoint covered every sync round, the last burst before a pause was
/// above the persisted watermark, so the damaged batch was taken for a torn tail and
/// cut with everything acknowledged after it.
#[test]
fn acknowledged_batches_damaged_after_a_crash_are_refused_never_cut() {
    for seed in 0..24u64 {
        let dir = tempfile::tempdir().unwrap();
        let sim = SimVfs::new(seed);
        let options = LogOptions {
            vfs: Arc::new(sim.clone()),
            ..LogOptions::default()
        };
        let config = LogConfig {
            segment_bytes: 1 << 20,
            durability: Durability::Always,
            ..LogConfig::default()
        };
        let mut log = Log::open_with(dir.path(), config.clone(), options.clone()).unwrap();
        let reader = log.reader();
        // One batch on its own, then a burst appended back to back: all acknowledged.
        let mut acked = Vec::new();
        for tag in 0..40u64 {
            let info = log.append(&batch(tag, 3, 200, tag as i64)).unwrap();
            if tag == 0 || tag == 39 {
                assert!(reader
                    .wait_durable(info.next_offset, Duration::from_secs(30))
                    .unwrap());
            }
            acked.push(info);
        }
        // An unacknowledged one after them, which the crash may keep or tear.
        let _ = log.append(&batch(99, 1, 100, 0));
        drop(log);
        let mode = match seed % 3 {
            0 => CrashMode::DropUnsynced,
            1 => CrashMode::KeepRandomPages,
            _ => CrashMode::TearLastWrite,
        };
        sim.crash(mode).unwrap();
        let victim = &acked[1 + (seed as usize % 38)];
        let path = dir
            .path()
            .join(format!("{:020}.log", victim.segment_base_offset));
        let mut bytes = std::fs::read(&path).unwrap();
        let len_before = bytes.len();
        // A bit in the victim's records, past its 61-byte header.
        let at = victim.position as usize + 70 + (seed as usize % 100);
        bytes[at] ^= 1 << (seed % 8);
        std::fs::write(&path, &bytes).unwrap();
        match Log::open_with(dir.path(), config, options) {
            Err(Error::Corrupt {
                position, reason, ..
            }) => {
                assert_eq!(
                    position, victim.position,
                    "seed {seed}: the damaged batch's header"
                );
                let offset = format!("offset {}", victim.base_offset);
                assert!(reason.contains(&offset), "seed {seed}: {reason}");
            }
            Err(other) => panic!("seed {seed} {mode:?}: expected Corrupt, got {other}"),
            Ok(log) => panic!(
                "seed {seed} {mode:?}: opened (and cut {} bytes) instead of refusing",
                log.recovery_report().truncated_bytes
            ),
        }
        assert_eq!(
            std::fs::metadata(&path).unwrap().len() as usize,
            len_before,
            "seed {seed}: nothing cut"
        );
    }
}

/// A round's checkpoint is flushed after its records are acknowledged. A power loss
/// before that flush (here: the flush fails, so the slot may never reach the disk,
/// and the crash drops it) leaves the persisted watermark one round behind, and every
/// acknowledged batch is still there: its data was synced before the acknowledgement,
/// and recovery finds it intact above the watermark. The failed flush fails the log,
/// so nothing after it is acknowledged.
#[test]
fn a_power_loss_before_a_rounds_checkpoint_flush_loses_no_acknowledged_batch() {
    let mut windows = 0;
    for n in 0..8u64 {
        let dir = tempfile::tempdir().unwrap();
        let sim = SimVfs::new(n);
        let options = LogOptions {
            vfs: Arc::new(sim.clone()),
            ..LogOptions::default()
        };
        let config = LogConfig {
            durability: Durability::Always,
            ..LogConfig::default()
        };
        let mut log = Log::open_with(dir.path(), config.clone(), options.clone()).unwrap();
        let reader = log.reader();
        sim.arm(FaultPlan {
            eio_at_sync: Some(n),
            ..FaultPlan::default()
        });
        let mut acked = Vec::new();
        for tag in 0..12u64 {
            let original = batch(tag, 2, 100, tag as i64);
            let Ok(info) = log.append(&original) else {
                break;
            };
            match reader.wait_durable(info.next_offset, Duration::from_secs(30)) {
                Ok(true) => acked.push(stored(original, info.base_offset)),
                Ok(false) => panic!("n {n}: no round in 30 s"),
                Err(_) => break,
            }
        }
        let injected = sim.injected();
        assert_eq!(injected.len(), 1, "n {n}: {injected:?}");
        // Wait for the failure a checkpoint flush reports after its round's ack.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while reader.failure().is_none() {
            assert!(std::time::Instant::now() < deadline, "n {n}: never failed");
            std::thread::sleep(Duration::from_millis(1));
        }
        let acked_before = reader.durable_offset();
        drop(log);
        sim.disarm();
        sim.crash(CrashMode::DropUnsynced).unwrap();
        let persisted = std::fs::read(dir.path().join(storage::format::CHECKPOINT_FILE))
            .ok()
            .and_then(|bytes| storage::format::Checkpoint::decode_file(&bytes))
            .map_or(0, |checkpoint| checkpoint.durable_offset);
        let reopened = Log::open_with(dir.path(), config, options).unwrap();
        let reader = reopened.reader();
        let recovered = read_all(&reader, 0, 1 << 20).unwrap();
        let recovered: Vec<Vec<u8>> = recovered.into_iter().map(|(_, b)| b).collect();
        assert!(
            recovered.len() >= acked.len() && recovered[..acked.len()] == acked[..],
            "n {n} ({injected:?}): {} acknowledged, {} recovered",
            acked.len(),
            recovered.len()
        );
        assert!(reader.end_offset() >= acked_before, "n {n}");
        assert!(persisted <= acked_before, "n {n}");
        if persisted < acked_before {
            // Acknowledged records above the persisted watermark: the window.
            assert!(injected[0].contains("checkpoint"), "n {n}: {injected:?}");
            windows += 1;
        }
    }
    assert!(windows > 0, "no case hit a round's checkpoint flush");
}

/// A tagged append whose segment write hits a full disk: its journal entry is cut
/// back, so after an untagged batch takes that offset and a crash, the reopened
/// journal names no batch that was never stored. And a journal write hitting a full
/// disk leaves the log usable, like a segment write does.
#[test]
fn a_tagged_append_that_failed_leaves_no_journal_entry_behind() {
    use storage::ProducerTag;
    let dir = tempfile::tempdir().unwrap();
    let sim = SimVfs::new(11);
    let options = LogOptions {
        vfs: Arc::new(sim.clone()),
        ..LogOptions::default()
    };
    let config = LogConfig {
        durability: Durability::Os,
        ..LogConfig::default()
    };
    let tag = |sequence| {
        Some(ProducerTag {
            producer_id: 5,
            sequence,
        })
    };
    let mut log = Log::open_with(dir.path(), config.clone(), options.clone()).unwrap();
    // The first tagged append creates the journal (and writes its header).
    log.append_all_tagged(&[batch(1, 1, 10, 0)], &[tag(0)], |_| {})
        .unwrap();
    // The journal entry is write 0, the batch write 1: the batch finds the disk full.
    sim.arm(FaultPlan {
        enospc_at_write: Some(1),
        ..FaultPlan::default()
    });
    let failed = log.append_all_tagged(&[batch(1, 1, 10, 1)], &[tag(1)], |_| {});
    assert!(matches!(failed, Err(Error::NoSpace { .. })), "{failed:?}");
    // The journal's own write finds the disk full: refused, the log goes on.
    sim.arm(FaultPlan {
        enospc_at_write: Some(0),
        ..FaultPlan::default()
    });
    let failed = log.append_all_tagged(&[batch(1, 1, 10, 2)], &[tag(1)], |_| {});
    assert!(matches!(failed, Err(Error::NoSpace { .. })), "{failed:?}");
    sim.disarm();
    assert_eq!(log.append(&batch(1, 1, 10, 3)).unwrap().base_offset, 1);
    drop(log);
    sim.crash(CrashMode::TearLastWrite).unwrap();
    let mut log = Log::open_with(dir.path(), config, options).unwrap();
    let entries = log.take_recovered_producers();
    assert_eq!(
        entries.len(),
        1,
        "only the stored tagged batch: {entries:?}"
    );
    assert_eq!((entries[0].tag.sequence, entries[0].base_offset), (0, 0));
}
