//! Batch decoding and iteration: a batch that validates must iterate cleanly and
//! yield exactly its record count; nothing may panic on any input.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use protocol::batch::{split_batches, BatchView};

fuzz_target!(|data: &[u8]| {
    if let Ok(view) = BatchView::new(data) {
        let structure_ok = view.validate_structure().is_ok();
        let _ = view.validate();
        let mut count = 0usize;
        let mut clean = true;
        for record in view.records() {
            match record {
                Ok(record) => {
                    count += 1;
                    for header in record.headers() {
                        clean &= header.is_ok();
                    }
                }
                Err(_) => clean = false,
            }
        }
        if structure_ok {
            assert!(clean, "a valid batch failed to iterate");
            assert_eq!(count, view.header().record_count as usize);
        }
    }
    for part in split_batches(Bytes::copy_from_slice(data)).flatten() {
        if let Ok(view) = BatchView::new(&part) {
            let _ = view.validate();
        }
    }
});
