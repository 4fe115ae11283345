//! The bytes a benchmark message carries: who sent it, its sequence number and when.
//!
//! Every payload starts with a fixed header so that any consumer, of any broker, can
//! tell which message it got (for loss and duplicate accounting) and when it was sent
//! (for end-to-end latency) without trusting the broker's own offsets or timestamps.
//! The rest of the payload is filler up to the requested message size.

use thiserror::Error;

/// Marks a benchmark payload: "bnch" in ASCII.
pub const PAYLOAD_MAGIC: u32 = 0x6268_636e;
/// Bytes of the header at the start of every payload: magic, producer, sequence, time.
pub const PAYLOAD_HEADER_BYTES: usize = 4 + 4 + 8 + 8;

/// What a payload says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadHeader {
    /// Index of the producer that sent it.
    pub producer: u32,
    /// The producer's sequence number for it, from 0, without gaps.
    pub sequence: u64,
    /// When it was sent, in nanoseconds on the run's clock ([`crate::clock::Clock`]).
    pub sent_ns: u64,
}

/// A payload that is not one of ours.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PayloadError {
    /// Shorter than the header.
    #[error(
        "a payload of {len} bytes is shorter than the {PAYLOAD_HEADER_BYTES}-byte benchmark header"
    )]
    TooShort {
        /// Its length.
        len: usize,
    },
    /// The first four bytes are not [`PAYLOAD_MAGIC`].
    #[error("payload does not start with the benchmark magic (found {found:#010x}); is another writer using the topic?")]
    BadMagic {
        /// What was there instead.
        found: u32,
    },
}

/// Writes `header` into the first [`PAYLOAD_HEADER_BYTES`] of `payload`, leaving the
/// filler after it untouched (so one buffer is reused for every message).
///
/// # Panics
/// If `payload` is shorter than the header: message sizes are validated before a run
/// starts ([`crate::workload::Workload::validate`]), so this is a harness bug.
pub fn write_header(payload: &mut [u8], header: PayloadHeader) {
    assert!(
        payload.len() >= PAYLOAD_HEADER_BYTES,
        "payload buffer too short"
    );
    payload[0..4].copy_from_slice(&PAYLOAD_MAGIC.to_le_bytes());
    payload[4..8].copy_from_slice(&header.producer.to_le_bytes());
    payload[8..16].copy_from_slice(&header.sequence.to_le_bytes());
    payload[16..24].copy_from_slice(&header.sent_ns.to_le_bytes());
}

/// A buffer of `size_bytes` with a recognisable filler pattern after the header.
pub fn template(size_bytes: usize) -> Vec<u8> {
    (0..size_bytes.max(PAYLOAD_HEADER_BYTES))
        .map(|i| (i % 251) as u8)
        .collect()
}

/// Reads the header of a received payload.
pub fn read_header(payload: &[u8]) -> Result<PayloadHeader, PayloadError> {
    if payload.len() < PAYLOAD_HEADER_BYTES {
        return Err(PayloadError::TooShort { len: payload.len() });
    }
    let u32_at = |at: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&payload[at..at + 4]);
        u32::from_le_bytes(b)
    };
    let u64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&payload[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let magic = u32_at(0);
    if magic != PAYLOAD_MAGIC {
        return Err(PayloadError::BadMagic { found: magic });
    }
    Ok(PayloadHeader {
        producer: u32_at(4),
        sequence: u64_at(8),
        sent_ns: u64_at(16),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_keeps_the_filler() {
        let mut buf = template(100);
        let header = PayloadHeader {
            producer: 7,
            sequence: u64::MAX - 1,
            sent_ns: 123_456_789,
        };
        write_header(&mut buf, header);
        assert_eq!(read_header(&buf), Ok(header));
        assert_eq!(buf.len(), 100);
        assert_eq!(buf[99], 99, "the filler after the header is kept");
    }

    #[test]
    fn short_or_foreign_payloads_are_refused() {
        assert_eq!(
            read_header(&[0; 10]),
            Err(PayloadError::TooShort { len: 10 })
        );
        assert!(matches!(
            read_header(&[0xff; 30]),
            Err(PayloadError::BadMagic { .. })
        ));
    }

    #[test]
    fn template_is_never_shorter_than_the_header() {
        assert_eq!(template(3).len(), PAYLOAD_HEADER_BYTES);
    }
}
