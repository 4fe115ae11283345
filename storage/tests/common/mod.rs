//! Helpers shared by the storage integration tests.
#![allow(dead_code)]

use protocol::batch::{split_batches, BatchBuilder, BatchView};
use storage::{LogConfig, LogReader};

/// A batch of `records` records whose values encode `(tag, i)`, timestamps from `ts`.
pub fn batch(tag: u64, records: u32, value_bytes: usize, ts: i64) -> Vec<u8> {
    let mut builder = BatchBuilder::new();
    for i in 0..records {
        let mut value = format!("{tag}:{i}:").into_bytes();
        value.resize(value_bytes.max(value.len()), b'x');
        let key = format!("k{tag}");
        builder
            .push(
                ts + i64::from(i),
                Some(key.as_bytes()),
                Some(&value),
                &[("tag", &tag.to_le_bytes())],
            )
            .unwrap();
    }
    builder.finish().to_vec()
}

/// Small segments so that tests roll often.
pub fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 256,
        preallocate_bytes: 1024,
        durability: storage::Durability::Os,
        ..LogConfig::default()
    }
}

/// Every batch from `from` to the end, as (base offset, bytes).
pub fn read_all(
    reader: &LogReader,
    from: u64,
    max_bytes: usize,
) -> storage::Result<Vec<(u64, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut offset = from;
    loop {
        let chunk = reader.read(offset, max_bytes)?;
        if chunk.is_empty() {
            return Ok(out);
        }
        for batch in split_batches(chunk.bytes.clone()) {
            let batch = batch.unwrap();
            let view = BatchView::new(&batch).unwrap();
            view.validate().unwrap();
            out.push((view.header().base_offset, batch.to_vec()));
        }
        assert!(chunk.next_offset > offset);
        offset = chunk.next_offset;
    }
}

/// `batch` as the log stores it at `base`.
pub fn stored(mut batch: Vec<u8>, base: u64) -> Vec<u8> {
    protocol::batch::set_base_offset(&mut batch, base);
    batch
}
