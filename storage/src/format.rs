//! Byte layouts of everything the log writes besides the batches themselves, as pure
//! encode/decode functions. `docs/storage.md` is the normative description; the test
//! `tests/format.rs` checks a log written by the code against it.
//!
//! All integers are little-endian.

use std::path::{Path, PathBuf};

/// Magic at the start of every segment file: "BRKSEG" then format version 1.
pub const SEGMENT_MAGIC: [u8; 8] = *b"BRKSEG\0\x01";
/// Size of the segment file header; the first batch starts here.
pub const SEGMENT_HEADER_BYTES: u64 = 32;
/// Magic at the start of an offset index file.
pub const OFFSET_INDEX_MAGIC: [u8; 8] = *b"BRKOIX\0\x01";
/// Magic at the start of a time index file.
pub const TIME_INDEX_MAGIC: [u8; 8] = *b"BRKTIX\0\x01";
/// Size of an index file header; the first entry starts here.
pub const INDEX_HEADER_BYTES: u64 = 16;
/// One offset-index entry: relative offset u32, position u32.
pub const OFFSET_ENTRY_BYTES: usize = 8;
/// One time-index entry: max timestamp so far i64, relative offset u32, position u32.
pub const TIME_ENTRY_BYTES: usize = 16;
/// Magic of a checkpoint slot.
pub const CHECKPOINT_MAGIC: u32 = u32::from_le_bytes(*b"CKPT");
/// Bytes of one checkpoint slot; the file holds two, at 0 and [`CHECKPOINT_SLOT_BYTES`].
pub const CHECKPOINT_SLOT_BYTES: usize = 64;
/// Magic of the clean-shutdown marker.
pub const CLEAN_MAGIC: u32 = u32::from_le_bytes(*b"CLEN");
/// Bytes of the clean-shutdown marker.
pub const CLEAN_MARKER_BYTES: usize = 40;
/// File name of the checkpoint (durable watermark and log start).
pub const CHECKPOINT_FILE: &str = "checkpoint";
/// File name of the clean-shutdown marker.
pub const CLEAN_MARKER_FILE: &str = "clean-shutdown";
/// Digits in a segment file name.
pub const FILE_NAME_DIGITS: usize = 20;

/// Name of the segment file whose first offset is `base_offset`.
pub fn segment_path(dir: &Path, base_offset: u64) -> PathBuf {
    dir.join(format!("{base_offset:020}.log"))
}

/// Name of the offset index of the segment at `base_offset`.
pub fn offset_index_path(dir: &Path, base_offset: u64) -> PathBuf {
    dir.join(format!("{base_offset:020}.index"))
}

/// Name of the time index of the segment at `base_offset`.
pub fn time_index_path(dir: &Path, base_offset: u64) -> PathBuf {
    dir.join(format!("{base_offset:020}.timeindex"))
}

/// The base offset named by a segment file name, if it is one.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != FILE_NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The fixed header of a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Offset of the first batch in the segment.
    pub base_offset: u64,
    /// When the segment was created (ms since the epoch), for age-based rolling.
    pub created_ms: i64,
}

impl SegmentHeader {
    /// Encodes: magic[8], version-independent reserved u64 (0), base_offset u64, created_ms i64.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_BYTES as usize] {
        let mut out = [0u8; SEGMENT_HEADER_BYTES as usize];
        out[0..8].copy_from_slice(&SEGMENT_MAGIC);
        out[16..24].copy_from_slice(&self.base_offset.to_le_bytes());
        out[24..32].copy_from_slice(&self.created_ms.to_le_bytes());
        out
    }

    /// Decodes, checking the magic; `None` if the bytes are not a segment header.
    pub fn decode(bytes: &[u8]) -> Option<SegmentHeader> {
        if bytes.len() < SEGMENT_HEADER_BYTES as usize || bytes[0..8] != SEGMENT_MAGIC {
            return None;
        }
        Some(SegmentHeader {
            base_offset: u64_at(bytes, 16),
            created_ms: u64_at(bytes, 24) as i64,
        })
    }
}

/// Encodes an index file header: magic[8] then the segment's base offset.
pub fn encode_index_header(magic: [u8; 8], base_offset: u64) -> [u8; INDEX_HEADER_BYTES as usize] {
    let mut out = [0u8; INDEX_HEADER_BYTES as usize];
    out[0..8].copy_from_slice(&magic);
    out[8..16].copy_from_slice(&base_offset.to_le_bytes());
    out
}

/// Checks an index file header against the expected magic and base offset.
pub fn index_header_matches(bytes: &[u8], magic: [u8; 8], base_offset: u64) -> bool {
    bytes.len() >= INDEX_HEADER_BYTES as usize
        && bytes[0..8] == magic
        && u64_at(bytes, 8) == base_offset
}

/// One offset-index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    /// Offset of a batch's first record, relative to the segment's base offset.
    pub relative_offset: u32,
    /// File position of that batch.
    pub position: u32,
}

impl OffsetEntry {
    /// Encodes the entry.
    pub fn encode(&self) -> [u8; OFFSET_ENTRY_BYTES] {
        let mut out = [0u8; OFFSET_ENTRY_BYTES];
        out[0..4].copy_from_slice(&self.relative_offset.to_le_bytes());
        out[4..8].copy_from_slice(&self.position.to_le_bytes());
        out
    }

    /// Decodes the entry from exactly [`OFFSET_ENTRY_BYTES`].
    pub fn decode(bytes: &[u8]) -> OffsetEntry {
        OffsetEntry {
            relative_offset: u32_at(bytes, 0),
            position: u32_at(bytes, 4),
        }
    }
}

/// One time-index entry: every record before `relative_offset`'s batch, and in it,
/// has a timestamp at most `max_timestamp_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    /// Largest record timestamp in the segment up to and including this batch.
    pub max_timestamp_ms: i64,
    /// Offset of the batch's first record, relative to the segment's base offset.
    pub relative_offset: u32,
    /// File position of that batch.
    pub position: u32,
}

impl TimeEntry {
    /// Encodes the entry.
    pub fn encode(&self) -> [u8; TIME_ENTRY_BYTES] {
        let mut out = [0u8; TIME_ENTRY_BYTES];
        out[0..8].copy_from_slice(&self.max_timestamp_ms.to_le_bytes());
        out[8..12].copy_from_slice(&self.relative_offset.to_le_bytes());
        out[12..16].copy_from_slice(&self.position.to_le_bytes());
        out
    }

    /// Decodes the entry from exactly [`TIME_ENTRY_BYTES`].
    pub fn decode(bytes: &[u8]) -> TimeEntry {
        TimeEntry {
            max_timestamp_ms: u64_at(bytes, 0) as i64,
            relative_offset: u32_at(bytes, 8),
            position: u32_at(bytes, 12),
        }
    }
}

/// The persisted durable watermark and log start offset. Written alternately into two
/// slots so that a torn write of one leaves the other intact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// Incremented on every write; the valid slot with the larger sequence wins.
    pub sequence: u64,
    /// Every offset below this was on stable storage when the checkpoint was written.
    pub durable_offset: u64,
    /// Offsets below this are deleted or truncated away.
    pub log_start_offset: u64,
}

impl Checkpoint {
    /// Encodes one slot: magic u32, reserved u32, sequence u64, durable_offset u64,
    /// log_start_offset u64, crc32 u32 of bytes [0, 32), zero padding.
    pub fn encode(&self) -> [u8; CHECKPOINT_SLOT_BYTES] {
        let mut out = [0u8; CHECKPOINT_SLOT_BYTES];
        out[0..4].copy_from_slice(&CHECKPOINT_MAGIC.to_le_bytes());
        out[8..16].copy_from_slice(&self.sequence.to_le_bytes());
        out[16..24].copy_from_slice(&self.durable_offset.to_le_bytes());
        out[24..32].copy_from_slice(&self.log_start_offset.to_le_bytes());
        let crc = crc32fast::hash(&out[0..32]);
        out[32..36].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes one slot; `None` if it is torn, blank or damaged.
    pub fn decode(bytes: &[u8]) -> Option<Checkpoint> {
        if bytes.len() < 36 || u32_at(bytes, 0) != CHECKPOINT_MAGIC {
            return None;
        }
        if crc32fast::hash(&bytes[0..32]) != u32_at(bytes, 32) {
            return None;
        }
        Some(Checkpoint {
            sequence: u64_at(bytes, 8),
            durable_offset: u64_at(bytes, 16),
            log_start_offset: u64_at(bytes, 24),
        })
    }

    /// The newer valid slot of a checkpoint file's contents.
    pub fn decode_file(bytes: &[u8]) -> Option<Checkpoint> {
        let slot = |i: usize| {
            bytes
                .get(i * CHECKPOINT_SLOT_BYTES..(i + 1) * CHECKPOINT_SLOT_BYTES)
                .and_then(Checkpoint::decode)
        };
        match (slot(0), slot(1)) {
            (Some(a), Some(b)) => Some(if a.sequence >= b.sequence { a } else { b }),
            (a, b) => a.or(b),
        }
    }
}

/// Written at a clean close, after everything is synced; its presence at open means
/// nothing needs scanning. Removed (durably) at open before the first append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanMarker {
    /// Base offset of the active segment.
    pub active_base_offset: u64,
    /// Logical end (bytes) of the active segment.
    pub active_end_position: u64,
    /// Offset the next append would get.
    pub next_offset: u64,
}

impl CleanMarker {
    /// Encodes: magic u32, reserved u32, active_base_offset u64, active_end_position
    /// u64, next_offset u64, crc32 u32 of bytes [0, 32), reserved u32.
    pub fn encode(&self) -> [u8; CLEAN_MARKER_BYTES] {
        let mut out = [0u8; CLEAN_MARKER_BYTES];
        out[0..4].copy_from_slice(&CLEAN_MAGIC.to_le_bytes());
        out[8..16].copy_from_slice(&self.active_base_offset.to_le_bytes());
        out[16..24].copy_from_slice(&self.active_end_position.to_le_bytes());
        out[24..32].copy_from_slice(&self.next_offset.to_le_bytes());
        let crc = crc32fast::hash(&out[0..32]);
        out[32..36].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes; `None` if damaged.
    pub fn decode(bytes: &[u8]) -> Option<CleanMarker> {
        if bytes.len() != CLEAN_MARKER_BYTES || u32_at(bytes, 0) != CLEAN_MAGIC {
            return None;
        }
        if crc32fast::hash(&bytes[0..32]) != u32_at(bytes, 32) {
            return None;
        }
        Some(CleanMarker {
            active_base_offset: u64_at(bytes, 8),
            active_end_position: u64_at(bytes, 16),
            next_offset: u64_at(bytes, 24),
        })
    }
}

pub(crate) fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

pub(crate) fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Every decoder of bytes read from disk survives arbitrary input.
        #[test]
        fn decoders_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = SegmentHeader::decode(&bytes);
            let _ = Checkpoint::decode(&bytes);
            let _ = Checkpoint::decode_file(&bytes);
            let _ = CleanMarker::decode(&bytes);
            let _ = index_header_matches(&bytes, OFFSET_INDEX_MAGIC, 0);
            if bytes.len() >= TIME_ENTRY_BYTES {
                let _ = TimeEntry::decode(&bytes[..TIME_ENTRY_BYTES]);
                let _ = OffsetEntry::decode(&bytes[..OFFSET_ENTRY_BYTES]);
            }
        }
    }

    #[test]
    fn names_round_trip() {
        let path = segment_path(Path::new("/x"), 42);
        assert_eq!(path, Path::new("/x/00000000000000000042.log"));
        assert_eq!(parse_segment_name("00000000000000000042.log"), Some(42));
        assert_eq!(parse_segment_name("42.log"), None);
        assert_eq!(parse_segment_name("0000000000000000004x.log"), None);
    }

    #[test]
    fn checkpoint_slots() {
        let a = Checkpoint {
            sequence: 1,
            durable_offset: 10,
            log_start_offset: 0,
        };
        let b = Checkpoint {
            sequence: 2,
            durable_offset: 20,
            log_start_offset: 5,
        };
        let mut file = [0u8; 2 * CHECKPOINT_SLOT_BYTES];
        file[..CHECKPOINT_SLOT_BYTES].copy_from_slice(&a.encode());
        file[CHECKPOINT_SLOT_BYTES..].copy_from_slice(&b.encode());
        assert_eq!(Checkpoint::decode_file(&file), Some(b));
        file[CHECKPOINT_SLOT_BYTES + 17] ^= 1; // tear the newer slot
        assert_eq!(Checkpoint::decode_file(&file), Some(a));
        assert_eq!(Checkpoint::decode_file(&[0u8; 10]), None);
    }

    #[test]
    fn headers_round_trip() {
        let h = SegmentHeader {
            base_offset: 7,
            created_ms: -3,
        };
        assert_eq!(SegmentHeader::decode(&h.encode()), Some(h));
        let m = CleanMarker {
            active_base_offset: 1,
            active_end_position: 2,
            next_offset: 3,
        };
        assert_eq!(CleanMarker::decode(&m.encode()), Some(m));
        let e = TimeEntry {
            max_timestamp_ms: -1,
            relative_offset: 2,
            position: 3,
        };
        assert_eq!(TimeEntry::decode(&e.encode()), e);
        let o = OffsetEntry {
            relative_offset: 9,
            position: 99,
        };
        assert_eq!(OffsetEntry::decode(&o.encode()), o);
    }
}
