//! The producer journal: which idempotent producer wrote which batch, kept beside the
//! log so that deduplication survives a restart.
//!
//! The batch format cannot carry a producer id and sequence (it is frozen, and the
//! bytes on disk are the bytes a consumer gets), so the log writes one small entry per
//! tagged batch to a journal file of its own, in the same append and before the batch
//! itself, and the syncer syncs the journal in the same round as the segment (it is
//! one more dirty file). So:
//!
//! - after a process crash (`kill -9`) the journal holds an entry for every batch the
//!   segment holds, since both writes reached the page cache, which survives;
//! - after a power loss, it holds an entry for every batch below the durable watermark
//!   (both were synced before the watermark moved); above it, either may have lost
//!   its tail;
//! - an entry whose batch recovery did not keep (a torn tail, or a crash between the
//!   two writes) is dropped at open: the journal is cut back to the log's end.
//!
//! The server rebuilds its producer table by replaying the entries in order. The
//! journal would grow forever, so once it passes [`COMPACT_BYTES`] the server hands
//! the table's live entries to [`ProducerJournal::compact`], which writes them as the
//! snapshot at the start of the *other* of two files (`producers.0`, `producers.1`)
//! with a higher generation, syncs it, and appends there from then on. Opening picks
//! the file with the highest generation whose header and snapshot are intact, so a
//! crash in the middle of a compaction leaves the previous file in charge. No rename
//! is needed and the old file is only overwritten by the compaction after next, when
//! the newer one has long been synced.
//!
//! Layout (little-endian), specified in `docs/storage.md`:
//!
//! ```text
//! header (32 bytes): magic "BRKPRJ\0\x01" | generation u64 | snapshot_entries u32
//!                    | reserved u32 (0) | reserved u32 (0) | crc32 u32 of bytes 0..28
//! entry  (32 bytes): producer_id u64 | sequence u64 | base_offset u64
//!                    | record_count u32 | crc32 u32 of bytes 0..28
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::vfs::{Vfs, VfsFile};

/// Magic at the start of a producer journal file.
pub const PRODUCER_JOURNAL_MAGIC: [u8; 8] = *b"BRKPRJ\0\x01";
/// Bytes of a journal file's header.
pub const PRODUCER_HEADER_BYTES: usize = 32;
/// Bytes of one journal entry.
pub const PRODUCER_ENTRY_BYTES: usize = 32;
/// The two journal files, written alternately by compactions.
pub const PRODUCER_JOURNAL_FILES: [&str; 2] = ["producers.0", "producers.1"];
/// A journal longer than this is compacted at the next append (about 32 000 entries):
/// replaying it at open stays well under a millisecond, and a compaction, which writes
/// at most the table's live entries and syncs once, happens rarely.
pub const COMPACT_BYTES: u64 = 1024 * 1024;

/// Which producer sent a batch, and its place in that producer's sequence for the
/// partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProducerTag {
    /// The broker-allocated producer id.
    pub producer_id: u64,
    /// The batch's sequence number: 0 for the producer's first batch to the partition,
    /// then one more per batch.
    pub sequence: u64,
}

/// A tagged batch as stored: its tag and where it landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProducerEntry {
    /// Who sent it.
    pub tag: ProducerTag,
    /// Offset of the batch's first record.
    pub base_offset: u64,
    /// Offset after its last record.
    pub next_offset: u64,
}

impl ProducerEntry {
    /// Encodes the entry (the record count must fit a `u32`, as a batch's does).
    pub fn encode(&self) -> [u8; PRODUCER_ENTRY_BYTES] {
        let mut out = [0u8; PRODUCER_ENTRY_BYTES];
        let count = u32::try_from(self.next_offset - self.base_offset).unwrap_or(u32::MAX);
        out[0..8].copy_from_slice(&self.tag.producer_id.to_le_bytes());
        out[8..16].copy_from_slice(&self.tag.sequence.to_le_bytes());
        out[16..24].copy_from_slice(&self.base_offset.to_le_bytes());
        out[24..28].copy_from_slice(&count.to_le_bytes());
        let crc = crc32fast::hash(&out[0..28]);
        out[28..32].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes an entry; `None` if it is torn or damaged (the CRC does not match, or
    /// it holds no records).
    pub fn decode(bytes: &[u8]) -> Option<ProducerEntry> {
        let bytes = bytes.get(..PRODUCER_ENTRY_BYTES)?;
        if crc32fast::hash(&bytes[0..28]) != u32_at(bytes, 28) {
            return None;
        }
        let base_offset = u64_at(bytes, 16);
        let count = u64::from(u32_at(bytes, 24));
        if count == 0 {
            return None;
        }
        Some(ProducerEntry {
            tag: ProducerTag {
                producer_id: u64_at(bytes, 0),
                sequence: u64_at(bytes, 8),
            },
            base_offset,
            next_offset: base_offset.checked_add(count)?,
        })
    }
}

/// A journal file's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    generation: u64,
    snapshot_entries: u32,
}

impl Header {
    fn encode(&self) -> [u8; PRODUCER_HEADER_BYTES] {
        let mut out = [0u8; PRODUCER_HEADER_BYTES];
        out[0..8].copy_from_slice(&PRODUCER_JOURNAL_MAGIC);
        out[8..16].copy_from_slice(&self.generation.to_le_bytes());
        out[16..20].copy_from_slice(&self.snapshot_entries.to_le_bytes());
        let crc = crc32fast::hash(&out[0..28]);
        out[28..32].copy_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Header> {
        let bytes = bytes.get(..PRODUCER_HEADER_BYTES)?;
        if bytes[0..8] != PRODUCER_JOURNAL_MAGIC
            || crc32fast::hash(&bytes[0..28]) != u32_at(bytes, 28)
        {
            return None;
        }
        Some(Header {
            generation: u64_at(bytes, 8),
            snapshot_entries: u32_at(bytes, 16),
        })
    }
}

/// One journal file as read at open: its header and its intact entries.
#[derive(Debug)]
struct Parsed {
    index: usize,
    header: Header,
    entries: Vec<ProducerEntry>,
}

/// Reads a journal file's bytes: `None` unless the header and the whole snapshot are
/// intact. Entries after the snapshot are read up to the first damaged one, or the
/// first that does not follow on from the one before (entries are written in offset
/// order, so anything else is the stale tail of an older life of the file).
fn parse(index: usize, bytes: &[u8]) -> Option<Parsed> {
    let header = Header::decode(bytes)?;
    let mut entries = Vec::new();
    let mut previous_end = 0u64;
    for chunk in bytes[PRODUCER_HEADER_BYTES..].chunks_exact(PRODUCER_ENTRY_BYTES) {
        let in_snapshot = entries.len() < header.snapshot_entries as usize;
        match ProducerEntry::decode(chunk) {
            // Snapshot entries are sorted by offset too; appended ones follow them.
            Some(entry) if entry.base_offset >= previous_end || in_snapshot => {
                previous_end = previous_end.max(entry.next_offset);
                entries.push(entry);
            }
            _ if in_snapshot => return None,
            _ => break,
        }
    }
    if entries.len() < header.snapshot_entries as usize {
        return None;
    }
    Some(Parsed {
        index,
        header,
        entries,
    })
}

/// The journal file being appended to.
#[derive(Debug)]
struct Current {
    index: usize,
    generation: u64,
    file: Arc<dyn VfsFile>,
    end: u64,
}

/// A log's producer journal: the writer's handle (see the module documentation).
#[derive(Debug)]
pub struct ProducerJournal {
    dir: PathBuf,
    vfs: Arc<dyn Vfs>,
    /// `None` until the first tagged batch: logs without idempotent producers have no
    /// journal and pay nothing.
    current: Option<Current>,
}

impl ProducerJournal {
    /// Opens the journal in `dir`, if there is one, cut back to `log_end`: an entry
    /// for a batch the log did not keep is removed (and the cut synced, so that it
    /// cannot come back). Returns the journal and the entries it holds, in offset
    /// order.
    pub(crate) fn open(
        vfs: Arc<dyn Vfs>,
        dir: &Path,
        log_end: u64,
    ) -> Result<(ProducerJournal, Vec<ProducerEntry>)> {
        let mut best: Option<Parsed> = None;
        for (index, name) in PRODUCER_JOURNAL_FILES.iter().enumerate() {
            let path = dir.join(name);
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("reading producer journal", &path, e)),
            };
            match parse(index, &bytes) {
                Some(parsed)
                    if best
                        .as_ref()
                        .is_none_or(|b| parsed.header.generation > b.header.generation) =>
                {
                    best = Some(parsed)
                }
                Some(_) => {}
                None => {
                    tracing::debug!(path = %path.display(), "producer journal file not usable; ignored")
                }
            }
        }
        let mut journal = ProducerJournal {
            dir: dir.to_path_buf(),
            vfs,
            current: None,
        };
        let Some(mut parsed) = best else {
            return Ok((journal, Vec::new()));
        };
        let kept = parsed
            .entries
            .iter()
            .take_while(|e| e.next_offset <= log_end)
            .count();
        // The snapshot may name batches a crash took too (it was written before they
        // were synced): those go, and the file is rewritten as a compaction would.
        let snapshot = parsed.header.snapshot_entries as usize;
        parsed.entries.truncate(kept);
        let path = dir.join(PRODUCER_JOURNAL_FILES[parsed.index]);
        let file = journal
            .vfs
            .open(&path)
            .map_err(|e| Error::io("opening producer journal", &path, e))?;
        let end = (PRODUCER_HEADER_BYTES + kept * PRODUCER_ENTRY_BYTES) as u64;
        journal.current = Some(Current {
            index: parsed.index,
            generation: parsed.header.generation,
            file: file.clone(),
            end,
        });
        if kept < snapshot {
            journal.compact(&parsed.entries)?;
        } else {
            file.set_len(end)
                .and_then(|()| file.sync_data())
                .map_err(|e| Error::io("cutting producer journal", &path, e))?;
        }
        Ok((journal, parsed.entries))
    }

    /// Bytes in the journal file being appended to (0 without a journal).
    pub fn len_bytes(&self) -> u64 {
        self.current.as_ref().map_or(0, |c| c.end)
    }

    /// Cuts the journal back to `len` bytes, undoing an [`append`](Self::append) whose
    /// batches were then not written.
    pub(crate) fn rewind(&mut self, len: u64) -> Result<()> {
        let Some(current) = self.current.as_mut() else {
            return Ok(());
        };
        if current.end <= len {
            return Ok(());
        }
        let path = self.dir.join(PRODUCER_JOURNAL_FILES[current.index]);
        current
            .file
            .set_len(len)
            .map_err(|e| Error::io("cutting producer journal", &path, e))?;
        current.end = len;
        Ok(())
    }

    /// Writes entries at the end of the journal, creating it first if there is none
    /// (a new file is synced, with the directory, before it is used). Returns the file
    /// written, for the syncer to sync with the round.
    pub(crate) fn append(&mut self, entries: &[ProducerEntry]) -> Result<Arc<dyn VfsFile>> {
        if self.current.is_none() {
            self.start_file(0, 1, &[])?;
        }
        let current = self.current.as_mut().ok_or(Error::Closed)?;
        let mut buf = Vec::with_capacity(entries.len() * PRODUCER_ENTRY_BYTES);
        for entry in entries {
            buf.extend_from_slice(&entry.encode());
        }
        let path = self.dir.join(PRODUCER_JOURNAL_FILES[current.index]);
        if let Err(e) = current.file.write_all_at(&buf, current.end) {
            // A partial write must not leave whole entries past the end: opening
            // would read them as batches that were never stored.
            current
                .file
                .set_len(current.end)
                .map_err(|e| Error::io("cutting producer journal", &path, e))?;
            return Err(Error::io("appending to producer journal", &path, e));
        }
        current.end += buf.len() as u64;
        Ok(current.file.clone())
    }

    /// Replaces the journal with `live`, the entries still needed (in offset order),
    /// written as the snapshot of the other file with the next generation, synced
    /// (with the directory) before it is used.
    pub fn compact(&mut self, live: &[ProducerEntry]) -> Result<()> {
        let (index, generation) = match &self.current {
            Some(current) => (1 - current.index, current.generation + 1),
            None => (0, 1),
        };
        self.start_file(index, generation, live)
    }

    fn start_file(
        &mut self,
        index: usize,
        generation: u64,
        snapshot: &[ProducerEntry],
    ) -> Result<()> {
        debug_assert!(
            snapshot
                .windows(2)
                .all(|w| w[0].next_offset <= w[1].base_offset),
            "snapshot entries are in offset order"
        );
        let path = self.dir.join(PRODUCER_JOURNAL_FILES[index]);
        let file = match self.vfs.open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => self
                .vfs
                .create(&path)
                .map_err(|e| Error::io("creating producer journal", &path, e))?,
            Err(e) => return Err(Error::io("opening producer journal", &path, e)),
        };
        let header = Header {
            generation,
            snapshot_entries: u32::try_from(snapshot.len()).unwrap_or(u32::MAX),
        };
        let mut buf =
            Vec::with_capacity(PRODUCER_HEADER_BYTES + snapshot.len() * PRODUCER_ENTRY_BYTES);
        buf.extend_from_slice(&header.encode());
        for entry in snapshot {
            buf.extend_from_slice(&entry.encode());
        }
        file.set_len(0)
            .and_then(|()| file.write_all_at(&buf, 0))
            .and_then(|()| file.sync_data())
            .map_err(|e| Error::io("writing producer journal", &path, e))?;
        self.vfs
            .sync_dir(&self.dir)
            .map_err(|e| Error::io("syncing directory", &self.dir, e))?;
        self.current = Some(Current {
            index,
            generation,
            file,
            end: buf.len() as u64,
        });
        Ok(())
    }
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::RealVfs;

    fn entry(producer_id: u64, sequence: u64, base_offset: u64, count: u64) -> ProducerEntry {
        ProducerEntry {
            tag: ProducerTag {
                producer_id,
                sequence,
            },
            base_offset,
            next_offset: base_offset + count,
        }
    }

    fn open(dir: &Path, end: u64) -> (ProducerJournal, Vec<ProducerEntry>) {
        ProducerJournal::open(Arc::new(RealVfs), dir, end).unwrap()
    }

    #[test]
    fn entries_round_trip_and_damage_is_seen() {
        let e = entry(7, 3, 100, 5);
        assert_eq!(ProducerEntry::decode(&e.encode()), Some(e));
        let mut bytes = e.encode();
        bytes[9] ^= 1;
        assert_eq!(ProducerEntry::decode(&bytes), None);
        assert_eq!(ProducerEntry::decode(&[0u8; PRODUCER_ENTRY_BYTES]), None);
    }

    #[test]
    fn a_journal_reopens_cut_back_to_the_log_end() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, entries) = open(dir.path(), 0);
        assert!(entries.is_empty());
        assert_eq!(journal.len_bytes(), 0, "no file until the first entry");
        let written = [entry(1, 0, 0, 2), entry(2, 0, 2, 1), entry(1, 1, 3, 4)];
        journal.append(&written[..2]).unwrap();
        journal.append(&written[2..]).unwrap();
        drop(journal);
        assert_eq!(open(dir.path(), 7).1, written);
        // The log lost its last batch: its entry goes, for good.
        assert_eq!(open(dir.path(), 3).1, written[..2]);
        assert_eq!(open(dir.path(), 7).1, written[..2]);
    }

    #[test]
    fn a_torn_tail_is_cut_and_appends_follow_the_intact_entries() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = open(dir.path(), 0);
        journal
            .append(&[entry(1, 0, 0, 1), entry(1, 1, 1, 1)])
            .unwrap();
        drop(journal);
        let path = dir.path().join(PRODUCER_JOURNAL_FILES[0]);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() - 5);
        std::fs::write(&path, &bytes).unwrap();
        let (mut journal, entries) = open(dir.path(), 10);
        assert_eq!(entries, [entry(1, 0, 0, 1)]);
        journal.append(&[entry(1, 1, 1, 1)]).unwrap();
        drop(journal);
        assert_eq!(open(dir.path(), 10).1.len(), 2);
    }

    #[test]
    fn compaction_switches_files_and_a_torn_compaction_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = open(dir.path(), 0);
        let all: Vec<_> = (0..10).map(|i| entry(1, i, i, 1)).collect();
        journal.append(&all).unwrap();
        journal.compact(&all[8..]).unwrap();
        journal.append(&[entry(1, 10, 10, 1)]).unwrap();
        drop(journal);
        let (_, entries) = open(dir.path(), 11);
        assert_eq!(entries, [all[8], all[9], entry(1, 10, 10, 1)]);
        // A compaction whose snapshot never made it whole: the older file is used.
        let newer = dir.path().join(PRODUCER_JOURNAL_FILES[1]);
        let bytes = std::fs::read(&newer).unwrap();
        std::fs::write(&newer, &bytes[..PRODUCER_HEADER_BYTES + 10]).unwrap();
        let (mut journal, entries) = open(dir.path(), 11);
        assert_eq!(entries, all);
        // And compacting again overwrites the damaged file, with a newer generation.
        journal.compact(&all[9..]).unwrap();
        drop(journal);
        assert_eq!(open(dir.path(), 11).1, [all[9]]);
    }

    #[test]
    fn a_log_rebuilds_its_entries_after_a_crash() {
        use crate::{Durability, Log, LogConfig};
        use protocol::batch::BatchBuilder;
        let batch = |n: usize| {
            let mut builder = BatchBuilder::new();
            for _ in 0..n {
                builder.push(1, None, Some(b"v"), &[]).unwrap();
            }
            builder.finish()
        };
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            durability: Durability::Always,
            ..LogConfig::default()
        };
        let tag = |sequence| {
            Some(ProducerTag {
                producer_id: 9,
                sequence,
            })
        };
        let mut log = Log::open(dir.path(), config.clone()).unwrap();
        log.append(&batch(1)).unwrap();
        let batches = [batch(2), batch(1), batch(3)];
        log.append_all_tagged(&batches, &[tag(0), None, tag(1)], |_| {})
            .unwrap();
        // Dropped without close: a crash, as far as the files are concerned.
        drop(log);
        let mut log = Log::open(dir.path(), config).unwrap();
        let entries = log.take_recovered_producers();
        assert_eq!(
            entries,
            [entry(9, 0, 1, 2), entry(9, 1, 4, 3)],
            "one entry per tagged batch, where it landed"
        );
        assert!(log.take_recovered_producers().is_empty());
        log.close().unwrap();
    }

    #[test]
    fn a_snapshot_naming_lost_batches_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = open(dir.path(), 0);
        journal
            .compact(&[entry(1, 0, 0, 1), entry(1, 1, 1, 1)])
            .unwrap();
        drop(journal);
        assert_eq!(open(dir.path(), 1).1, [entry(1, 0, 0, 1)]);
        assert_eq!(open(dir.path(), 5).1, [entry(1, 0, 0, 1)]);
    }
}
