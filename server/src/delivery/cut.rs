//! Cutting a read to a message credit: a pure function over stored batches.

use bytes::Bytes;
use protocol::batch::{split_batches, BatchHeader};

/// What one delivery carries of a read: offsets up to `to` (exclusive), in the first
/// `bytes` bytes of the read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// One past the last offset delivered (`from` when nothing fits).
    pub to: u64,
    /// Bytes of whole batches delivered, from the start of the read.
    pub bytes: usize,
}

/// The part of `batches` (whole stored batches, the first one holding `from`) that a
/// delivery starting at `from` may carry with `max_messages` of credit: whole batches
/// while their records fit, the last one cut short by `to` when even it holds too
/// many. An unreadable batch ends the cut there.
pub fn cut_to_credit(batches: &Bytes, from: u64, max_messages: u64) -> Cut {
    let limit = from.saturating_add(max_messages);
    let mut cut = Cut { to: from, bytes: 0 };
    for batch in split_batches(batches.clone()) {
        if cut.to >= limit {
            break;
        }
        let Ok(batch) = batch else { break };
        let Ok(header) = BatchHeader::parse(&batch) else {
            break;
        };
        cut.bytes += batch.len();
        cut.to = header.next_offset().min(limit);
    }
    debug_assert!(cut.to >= from && cut.to <= limit);
    debug_assert!(cut.bytes <= batches.len());
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::batch::BatchBuilder;

    /// Stored batches of the given record counts, back to back from offset 0.
    fn stored(counts: &[u64]) -> (Bytes, Vec<usize>) {
        let mut all = Vec::new();
        let mut lengths = Vec::new();
        let mut base = 0u64;
        for &count in counts {
            let mut builder = BatchBuilder::new();
            for _ in 0..count {
                builder.push(1, None, Some(b"value"), &[]).unwrap();
            }
            let mut batch = builder.finish().to_vec();
            batch[..8].copy_from_slice(&base.to_le_bytes());
            lengths.push(batch.len());
            all.extend_from_slice(&batch);
            base += count;
        }
        (Bytes::from(all), lengths)
    }

    #[test]
    fn whole_batches_fit_and_the_last_is_cut_by_to() {
        let (bytes, len) = stored(&[3, 4, 1]); // offsets [0,3) [3,7) [7,8)
        assert_eq!(
            cut_to_credit(&bytes, 0, 3),
            Cut {
                to: 3,
                bytes: len[0]
            }
        );
        // The second batch straddles the limit: it goes whole, `to` cuts it.
        assert_eq!(
            cut_to_credit(&bytes, 0, 4),
            Cut {
                to: 4,
                bytes: len[0] + len[1]
            }
        );
        assert_eq!(
            cut_to_credit(&bytes, 0, 100),
            Cut {
                to: 8,
                bytes: bytes.len()
            }
        );
        assert_eq!(cut_to_credit(&bytes, 0, 0), Cut { to: 0, bytes: 0 });
    }

    #[test]
    fn a_read_from_inside_a_batch_counts_from_the_offset() {
        let (bytes, len) = stored(&[4, 2]); // [0,4) [4,6)
        let tail = bytes.clone();
        assert_eq!(
            cut_to_credit(&tail, 2, 2),
            Cut {
                to: 4,
                bytes: len[0]
            }
        );
        assert_eq!(
            cut_to_credit(&tail, 2, 3),
            Cut {
                to: 5,
                bytes: bytes.len()
            }
        );
        assert_eq!(
            cut_to_credit(&tail, 2, u64::MAX),
            Cut {
                to: 6,
                bytes: bytes.len()
            }
        );
    }

    #[test]
    fn damage_ends_the_cut() {
        let (bytes, len) = stored(&[2, 2]);
        let mut damaged = bytes.to_vec();
        damaged.truncate(len[0] + 5);
        let cut = cut_to_credit(&Bytes::from(damaged), 0, 10);
        assert_eq!(
            cut,
            Cut {
                to: 2,
                bytes: len[0]
            }
        );
        assert_eq!(cut_to_credit(&Bytes::new(), 5, 10), Cut { to: 5, bytes: 0 });
    }
}
