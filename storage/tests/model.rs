//! Property test: random sequences of append / read / reopen (clean and crashed) /
//! truncate / retention / time lookups, compared against a plain in-memory model.

mod common;

use common::{batch, read_all, stored};
use proptest::prelude::*;
use protocol::batch::{split_batches, BatchView};
use storage::{Durability, Log, LogConfig};

#[derive(Debug, Clone)]
enum Op {
    /// `batches` batches alike; more than one goes through `append_all`.
    Append {
        records: u32,
        value_bytes: usize,
        ts_step: i64,
        batches: usize,
    },
    Read {
        at: u64,
        max_bytes: usize,
    },
    Reopen {
        clean: bool,
    },
    TruncateBefore {
        at: u64,
    },
    Retention,
    Sync,
    OffsetForTime {
        at: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u32..6, 0usize..400, -5i64..50, prop_oneof![3 => Just(1usize), 1 => 2usize..12])
            .prop_map(|(records, value_bytes, ts_step, batches)| Op::Append { records, value_bytes, ts_step, batches }),
        3 => (any::<u64>(), 1usize..3000).prop_map(|(at, max_bytes)| Op::Read { at, max_bytes }),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
        1 => any::<u64>().prop_map(|at| Op::TruncateBefore { at }),
        1 => Just(Op::Retention),
        1 => Just(Op::Sync),
        1 => any::<u64>().prop_map(|at| Op::OffsetForTime { at }),
    ]
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 512,
        preallocate_bytes: 1024,
        retention_bytes: Some(6000),
        durability: Durability::Os,
        ..LogConfig::default()
    }
}

struct Model {
    /// (base offset, stored bytes, record timestamps)
    batches: Vec<(u64, Vec<u8>, Vec<i64>)>,
    start: u64,
}

impl Model {
    fn end(&self) -> u64 {
        self.batches
            .last()
            .map_or(self.start, |(base, _, ts)| base + ts.len() as u64)
    }

    /// Batches holding offsets at or above the log start.
    fn live(&self) -> Vec<(u64, Vec<u8>)> {
        self.batches
            .iter()
            .filter(|(base, _, ts)| base + ts.len() as u64 > self.start)
            .map(|(base, bytes, _)| (*base, bytes.clone()))
            .collect()
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), config()).unwrap();
    let mut model = Model {
        batches: Vec::new(),
        start: 0,
    };
    let mut tag = 0u64;
    let mut ts = 0i64;
    let (mut lowest_ts, mut highest_ts) = (0i64, 0i64);
    for op in ops {
        match op {
            Op::Append {
                records,
                value_bytes,
                ts_step,
                batches,
            } => {
                let mut originals = Vec::new();
                for _ in 0..batches {
                    tag += 1;
                    ts += ts_step;
                    originals.push((batch(tag, records, value_bytes, ts), ts));
                }
                let infos = if batches == 1 {
                    vec![log.append(&originals[0].0.clone()).unwrap()]
                } else {
                    let slices: Vec<&[u8]> = originals.iter().map(|(b, _)| &b[..]).collect();
                    let mut infos = Vec::new();
                    log.append_all(&slices, |info| infos.push(info)).unwrap();
                    infos
                };
                prop_assert_eq!(infos.len(), batches);
                for (info, (original, ts)) in infos.into_iter().zip(originals) {
                    prop_assert_eq!(info.base_offset, model.end());
                    prop_assert_eq!(info.next_offset, model.end() + u64::from(records));
                    lowest_ts = lowest_ts.min(ts);
                    highest_ts = highest_ts.max(ts + i64::from(records));
                    let stamps = (0..records).map(|i| ts + i64::from(i)).collect();
                    model.batches.push((
                        info.base_offset,
                        stored(original, info.base_offset),
                        stamps,
                    ));
                }
            }
            Op::Read { at, max_bytes } => {
                let span = model.end() - model.start + 1;
                let offset = model.start + at % span;
                let chunk = log.reader().read(offset, max_bytes).unwrap();
                let live = model.live();
                let first = live.iter().position(|(base, bytes)| {
                    let count = BatchView::new(bytes).unwrap().header().record_count as u64;
                    base + count > offset
                });
                match first {
                    None => prop_assert!(chunk.is_empty()),
                    Some(first) => {
                        let got: Vec<_> = split_batches(chunk.bytes.clone())
                            .map(|b| b.unwrap().to_vec())
                            .collect();
                        prop_assert!(!got.is_empty());
                        prop_assert!(got.len() == 1 || chunk.bytes.len() <= max_bytes);
                        for (i, bytes) in got.iter().enumerate() {
                            prop_assert_eq!(bytes, &live[first + i].1);
                        }
                    }
                }
            }
            Op::Reopen { clean } => {
                if clean {
                    log.close().unwrap();
                } else {
                    drop(log);
                }
                log = Log::open(dir.path(), config()).unwrap();
                prop_assert_eq!(log.recovery_report().clean, clean);
            }
            Op::TruncateBefore { at } => {
                let target = at % (model.end() + 2);
                log.truncate_before(target).unwrap();
                model.start = model.start.max(target.min(model.end()));
            }
            Op::Retention => {
                log.enforce_retention().unwrap();
                let start = log.reader().start_offset();
                prop_assert!(start >= model.start);
                prop_assert!(
                    start == model.start
                        || start == model.end()
                        || model.batches.iter().any(|(base, _, _)| *base == start)
                );
                model.start = start;
                prop_assert!(log.size_bytes() <= 6000 + 4096);
            }
            Op::Sync => {
                prop_assert_eq!(log.sync().unwrap(), model.end());
            }
            Op::OffsetForTime { at } => {
                let (low, high) = (lowest_ts - 10, highest_ts + 10);
                let target = low + (at % (high - low) as u64) as i64;
                let expected = model
                    .batches
                    .iter()
                    .flat_map(|(base, _, stamps)| {
                        stamps
                            .iter()
                            .enumerate()
                            .map(move |(i, t)| (base + i as u64, *t))
                    })
                    .filter(|(offset, _)| *offset >= model.start)
                    .scan(i64::MIN, |max_so_far, (offset, t)| {
                        *max_so_far = (*max_so_far).max(t);
                        Some((offset, t))
                    })
                    .find(|(_, t)| *t >= target)
                    .map(|(offset, _)| offset);
                prop_assert_eq!(
                    log.reader().offset_for_time(target).unwrap(),
                    expected,
                    "target {}",
                    target
                );
            }
        }
        prop_assert_eq!(log.reader().start_offset(), model.start);
        prop_assert_eq!(log.reader().end_offset(), model.end());
    }
    prop_assert_eq!(
        read_all(&log.reader(), model.start, 1 << 20).unwrap(),
        model.live()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}
