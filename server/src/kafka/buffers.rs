//! The buffers produced Kafka records are converted into, shared by the listener's
//! connections and reused.
//!
//! Converting a ProduceRequest's records builds a brokerd batch of about the
//! request's size (a megabyte for librdkafka's default batches). A fresh allocation
//! that large comes from the allocator's top of heap or a new mapping, and every one
//! of its pages faults in on first write, then goes back to the kernel when freed:
//! in a profile of 1 KiB records the faults cost about as much as the copy itself.
//! Handing out the same allocation again once the batch written into it has been
//! dropped (by then the log has written it) keeps those pages resident.
//!
//! A pooled handle is the empty remainder of a [`BytesMut`] whose contents were
//! frozen into a batch ([`BatchBuffers::keep`]); [`BytesMut::reserve`] on it takes
//! the allocation back if that batch is gone, or allocates anew if it is still held
//! (an append waiting for its sync). The pool keeps at most [`POOLED_BATCH_BUFFERS`]
//! handles, each of at most [`MAX_POOLED_BUFFER_BYTES`] of allocation, whatever the
//! number of connections.

use std::sync::{Mutex, PoisonError};

use bytes::{Bytes, BytesMut};

/// Buffers the pool keeps between requests: enough for a few connections producing
/// at once on every core; more only hold memory.
pub const POOLED_BATCH_BUFFERS: usize = 16;

/// A buffer whose allocation grew past this is not kept (an unusually large request
/// does not pin its memory).
pub const MAX_POOLED_BUFFER_BYTES: usize = 8 << 20;

/// The listener's pool of conversion buffers.
#[derive(Debug, Default)]
pub struct BatchBuffers {
    pooled: Mutex<Vec<BytesMut>>,
}

impl BatchBuffers {
    /// An empty pool.
    pub fn new() -> BatchBuffers {
        BatchBuffers::default()
    }

    /// A buffer with room for `bytes`, empty: a pooled allocation when one is free
    /// again and large enough, else a new one.
    pub fn take(&self, bytes: usize) -> BytesMut {
        let pooled = self
            .pooled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut buf = pooled.unwrap_or_default();
        buf.reserve(bytes);
        buf
    }

    /// The batch in `filled` (a buffer [`take`](Self::take) gave), frozen; the
    /// allocation behind it is kept for a later `take`, which gets it back once
    /// that batch is dropped.
    pub fn keep(&self, mut filled: BytesMut) -> Bytes {
        let allocated = filled.capacity();
        let batch = filled.split().freeze();
        if allocated <= MAX_POOLED_BUFFER_BYTES {
            let mut pooled = self.pooled.lock().unwrap_or_else(PoisonError::into_inner);
            if pooled.len() < POOLED_BATCH_BUFFERS {
                pooled.push(filled);
            }
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allocation_comes_back_once_its_batch_is_dropped() {
        let pool = BatchBuffers::new();
        let mut buf = pool.take(1 << 20);
        buf.extend_from_slice(&[7; 1000]);
        let first = buf.as_ptr();
        let batch = pool.keep(buf);
        assert_eq!(&batch[..], &[7; 1000][..]);
        drop(batch);
        let again = pool.take(1 << 20);
        assert_eq!(again.as_ptr(), first, "the same allocation, reclaimed");
        assert!(again.is_empty());
    }

    #[test]
    fn a_batch_still_held_keeps_its_bytes() {
        let pool = BatchBuffers::new();
        let mut buf = pool.take(4096);
        buf.extend_from_slice(b"held");
        let batch = pool.keep(buf);
        let mut other = pool.take(4096);
        other.extend_from_slice(b"next");
        assert_eq!(&batch[..], b"held");
        assert_eq!(&other[..], b"next");
    }

    #[test]
    fn the_pool_is_bounded_in_count_and_size() {
        let pool = BatchBuffers::new();
        let held: Vec<Bytes> = (0..POOLED_BATCH_BUFFERS * 2)
            .map(|_| pool.keep(BytesMut::with_capacity(16)))
            .collect();
        let big = pool.keep(BytesMut::with_capacity(MAX_POOLED_BUFFER_BYTES + 1));
        assert_eq!(pool.pooled.lock().unwrap().len(), POOLED_BATCH_BUFFERS);
        drop((held, big));
        for _ in 0..POOLED_BATCH_BUFFERS {
            assert!(pool.take(16).capacity() <= MAX_POOLED_BUFFER_BYTES);
        }
    }
}
