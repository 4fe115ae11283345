//! Sparse, memory-mapped index files and the pure searches over them.
//!
//! An index file is a 16-byte header followed by fixed-size entries. The writer appends
//! entries with `pwrite` into space reserved up front and then publishes the new count
//! with a release store; readers load the count and binary-search the mapped entries
//! without taking a lock.
//!
//! An index keeps no descriptor of its own: readers need only the map, and the writer
//! of an active index borrows one from the log's [`IndexHandles`] for each write,
//! which may have closed it since (`handles.rs`). The one exception is an index whose
//! files a repair replaced at the same paths: reopening by path would then write into
//! the new file, so it pins the descriptor of the file it maps instead.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use memmap2::{Mmap, MmapOptions};

use crate::error::{Error, Result};
use crate::format::{
    OffsetEntry, TimeEntry, INDEX_HEADER_BYTES, OFFSET_ENTRY_BYTES, TIME_ENTRY_BYTES,
};
use crate::handles::IndexHandles;
use crate::maps::MappedSegments;
use crate::vfs::{Vfs, VfsFile};

/// How a log's files are opened: the file system, the handle budget an index's writer
/// borrows descriptors from (`None`: a sealed index, never written), and the budget of
/// mapped sealed segments.
#[derive(Debug, Clone)]
pub(crate) struct FileAccess {
    pub(crate) vfs: Arc<dyn Vfs>,
    pub(crate) handles: Option<IndexHandles>,
    pub(crate) mapped: MappedSegments,
}

/// How the writer of an index gets a descriptor for its file.
#[derive(Debug)]
enum Handle {
    /// Borrowed from the budget as `id`; reopened by path if closed meanwhile.
    Cached { handles: IndexHandles, id: u64 },
    /// The index's own descriptor: its path may no longer name the file it maps.
    Pinned(Arc<dyn VfsFile>),
    /// Not written any more (sealed, or opened read-only); a write opens the path.
    Closed,
}

/// Which of the two index kinds a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IndexKind {
    /// relative offset -> position
    Offset,
    /// max timestamp so far -> relative offset, position
    Time,
}

impl IndexKind {
    pub(crate) fn entry_bytes(self) -> usize {
        match self {
            IndexKind::Offset => OFFSET_ENTRY_BYTES,
            IndexKind::Time => TIME_ENTRY_BYTES,
        }
    }

    pub(crate) fn magic(self) -> [u8; 8] {
        match self {
            IndexKind::Offset => crate::format::OFFSET_INDEX_MAGIC,
            IndexKind::Time => crate::format::TIME_INDEX_MAGIC,
        }
    }
}

/// Index entries buffered before one `pwrite`.
pub(crate) const INDEX_FLUSH_ENTRIES: u32 = 32;

/// One index file, mapped for reading.
#[derive(Debug)]
pub(crate) struct IndexFile {
    kind: IndexKind,
    path: PathBuf,
    vfs: Arc<dyn Vfs>,
    /// Held for the whole of each write, so that a repair's pin (which must happen
    /// before the repair replaces the file) never races a reopen by path.
    handle: std::sync::Mutex<Handle>,
    map: Mmap,
    /// Entries the map covers: the most the index may ever hold.
    capacity_entries: u32,
    /// Entries the file has disk space for (writer only). Grown with the segment's own
    /// reservation ([`reserve`](Self::reserve)), so an entry is never written without
    /// space for it and an idle segment's index holds little disk.
    reserved_entries: AtomicU32,
    entries: AtomicU32,
    /// Entries pushed but not yet written (writer only; the lock is never contended).
    pending: std::sync::Mutex<Vec<u8>>,
}

impl IndexFile {
    /// Writes a fresh index file holding `entries` (encoded, back to back) with room for
    /// `capacity_entries` in all, disk space reserved for `reserve_entries` of them,
    /// replacing any file at `path`.
    pub(crate) fn write_new(
        access: &FileAccess,
        path: &Path,
        kind: IndexKind,
        base_offset: u64,
        entries: &[u8],
        capacity_entries: u32,
        reserve_entries: u32,
    ) -> Result<IndexFile> {
        let entry_bytes = kind.entry_bytes();
        debug_assert_eq!(entries.len() % entry_bytes, 0);
        let count = (entries.len() / entry_bytes) as u32;
        let capacity_entries = capacity_entries.max(count);
        let reserve_entries = reserve_entries.clamp(count, capacity_entries);
        let vfs = access.vfs.as_ref();
        if path.exists() {
            vfs.remove(path)
                .map_err(|e| Error::io("removing stale index", path, e))?;
        }
        let file = vfs
            .create(path)
            .map_err(|e| Error::io("creating index", path, e))?;
        let len = INDEX_HEADER_BYTES + u64::from(capacity_entries) * entry_bytes as u64;
        let reserved = INDEX_HEADER_BYTES + u64::from(reserve_entries) * entry_bytes as u64;
        file.allocate(reserved)
            .map_err(|e| Error::io("reserving index space", path, e))?;
        let header = crate::format::encode_index_header(kind.magic(), base_offset);
        file.write_all_at(&header, 0)
            .map_err(|e| Error::io("writing index", path, e))?;
        if !entries.is_empty() {
            file.write_all_at(entries, INDEX_HEADER_BYTES)
                .map_err(|e| Error::io("writing index", path, e))?;
        }
        Self::map(
            kind,
            path,
            access,
            file,
            len,
            Counts {
                count,
                capacity_entries,
                reserved_entries: reserve_entries,
            },
        )
    }

    /// Opens an existing index whose file holds exactly its entries (as left by
    /// [`seal`](Self::seal)), with room for `capacity_entries` if the segment is still to
    /// be written (disk space for them comes with [`reserve`](Self::reserve)). `None` if the file is missing or its header or size is wrong;
    /// the caller then rebuilds it from the segment.
    pub(crate) fn open(
        access: &FileAccess,
        path: &Path,
        kind: IndexKind,
        base_offset: u64,
        capacity_entries: u32,
    ) -> Result<Option<IndexFile>> {
        let file = match access.vfs.open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("opening index", path, e)),
        };
        let len = file
            .file()
            .metadata()
            .map_err(|e| Error::io("reading index size", path, e))?
            .len();
        let entry_bytes = kind.entry_bytes() as u64;
        if len < INDEX_HEADER_BYTES || !(len - INDEX_HEADER_BYTES).is_multiple_of(entry_bytes) {
            return Ok(None);
        }
        let count = u32::try_from((len - INDEX_HEADER_BYTES) / entry_bytes).unwrap_or(u32::MAX);
        let capacity_entries = capacity_entries.max(count);
        let full_len = INDEX_HEADER_BYTES + u64::from(capacity_entries) * entry_bytes;
        let counts = Counts {
            count,
            capacity_entries,
            reserved_entries: count,
        };
        let index = Self::map(kind, path, access, file, full_len, counts)?;
        if !crate::format::index_header_matches(&index.map, kind.magic(), base_offset) {
            return Ok(None);
        }
        Ok(Some(index))
    }

    /// Maps `len` bytes of `file`, which then serves as the writer's first handle (or
    /// closes, for an index that is not written).
    fn map(
        kind: IndexKind,
        path: &Path,
        access: &FileAccess,
        file: Arc<dyn VfsFile>,
        len: u64,
        counts: Counts,
    ) -> Result<IndexFile> {
        let map_len =
            usize::try_from(len).map_err(|_| Error::Config("index too large to map".into()))?;
        // SAFETY: the file is owned by this log. The map may reach past the file's end
        // (disk space is reserved in steps); readers touch only published entries,
        // which were written and so lie inside the file, and nothing truncates the file
        // below them (`seal` cuts only what follows the last entry).
        let map = unsafe { MmapOptions::new().len(map_len).map(file.file()) }
            .map_err(|e| Error::io("mapping index", path, e))?;
        let handle = match &access.handles {
            Some(handles) => {
                let id = handles.register();
                handles.insert(id, file);
                Handle::Cached {
                    handles: handles.clone(),
                    id,
                }
            }
            None => Handle::Closed,
        };
        Ok(IndexFile {
            kind,
            path: path.to_path_buf(),
            vfs: access.vfs.clone(),
            handle: std::sync::Mutex::new(handle),
            map,
            capacity_entries: counts.capacity_entries,
            reserved_entries: AtomicU32::new(counts.reserved_entries),
            entries: AtomicU32::new(counts.count),
            pending: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Runs `op` on a descriptor of the file the index maps, holding the handle for
    /// the whole of it.
    fn with_file<T>(
        &self,
        what: &'static str,
        op: impl FnOnce(&dyn VfsFile) -> std::io::Result<T>,
    ) -> Result<T> {
        let handle = self.handle.lock().unwrap_or_else(|p| p.into_inner());
        let file = match &*handle {
            Handle::Cached { handles, id } => handles.get(*id, self.vfs.as_ref(), &self.path),
            Handle::Pinned(file) => Ok(file.clone()),
            Handle::Closed => self.vfs.open(&self.path),
        }
        .map_err(|e| Error::io("opening index", &self.path, e))?;
        op(file.as_ref()).map_err(|e| Error::io(what, &self.path, e))
    }

    /// Keeps a descriptor of the file the index maps for the rest of its life: called
    /// before a repair replaces the file at the same path, after which reopening by
    /// path would reach the new file. A closed (sealed) index is never written again
    /// and needs none.
    pub(crate) fn pin(&self) -> Result<()> {
        let mut handle = self.handle.lock().unwrap_or_else(|p| p.into_inner());
        if let Handle::Cached { handles, id } = &*handle {
            let file = handles
                .get(*id, self.vfs.as_ref(), &self.path)
                .map_err(|e| Error::io("opening index", &self.path, e))?;
            handles.forget(*id);
            *handle = Handle::Pinned(file);
        }
        Ok(())
    }

    /// Makes sure the file has disk space for `entries` entries (at most its
    /// capacity), so that writing them can never fail for want of space. Writer only.
    pub(crate) fn reserve(&self, entries: u32) -> Result<()> {
        let entries = entries.min(self.capacity_entries);
        if entries <= self.reserved_entries.load(Ordering::Relaxed) {
            return Ok(());
        }
        let len = INDEX_HEADER_BYTES + u64::from(entries) * self.kind.entry_bytes() as u64;
        self.with_file("reserving index space", |file| file.allocate(len))?;
        self.reserved_entries.store(entries, Ordering::Relaxed);
        Ok(())
    }

    /// The file's path (for reports).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The published entries, encoded back to back.
    pub(crate) fn entries(&self) -> &[u8] {
        let count = self.entries.load(Ordering::Acquire) as usize;
        let start = INDEX_HEADER_BYTES as usize;
        &self.map[start..start + count * self.kind.entry_bytes()]
    }

    /// Number of published entries.
    pub(crate) fn len(&self) -> u32 {
        self.entries.load(Ordering::Acquire)
    }

    /// Appends one encoded entry. Entries are buffered and written
    /// [`INDEX_FLUSH_ENTRIES`] at a time (one `pwrite` instead of one per batch);
    /// readers see them once written, and until then simply walk a little further from
    /// the previous entry, which is always correct. Returns `false` (and keeps nothing)
    /// when the reserved room is used up: the index just gets sparser.
    pub(crate) fn push(&self, entry: &[u8]) -> Result<bool> {
        debug_assert_eq!(entry.len(), self.kind.entry_bytes());
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let buffered = (pending.len() / self.kind.entry_bytes()) as u32;
        if self.entries.load(Ordering::Relaxed) + buffered >= self.capacity_entries {
            return Ok(false);
        }
        pending.extend_from_slice(entry);
        if buffered + 1 >= INDEX_FLUSH_ENTRIES {
            self.write_pending(&mut pending)?;
        }
        Ok(true)
    }

    /// Writes buffered entries and publishes them.
    pub(crate) fn flush(&self) -> Result<()> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        self.write_pending(&mut pending)
    }

    fn write_pending(&self, pending: &mut Vec<u8>) -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let count = self.entries.load(Ordering::Relaxed);
        debug_assert!(
            count as usize + pending.len() / self.kind.entry_bytes()
                <= self.reserved_entries.load(Ordering::Relaxed) as usize,
            "index entries are written only into reserved space"
        );
        let position = INDEX_HEADER_BYTES + u64::from(count) * self.kind.entry_bytes() as u64;
        self.with_file("writing index", |file| file.write_all_at(pending, position))?;
        let added = (pending.len() / self.kind.entry_bytes()) as u32;
        pending.clear();
        self.entries.store(count + added, Ordering::Release);
        Ok(())
    }

    /// Cuts the file to exactly its entries and syncs it, so that a later open knows
    /// the count from the size; its descriptor then closes, for good.
    pub(crate) fn seal(&self) -> Result<()> {
        self.flush()?;
        let len = INDEX_HEADER_BYTES + u64::from(self.len()) * self.kind.entry_bytes() as u64;
        // One descriptor for both: a closed index would otherwise open its path twice.
        self.with_file("truncating and syncing index", |file| {
            file.set_len(len)?;
            file.sync_data()
        })?;
        self.close_handle();
        Ok(())
    }

    fn close_handle(&self) {
        let mut handle = self.handle.lock().unwrap_or_else(|p| p.into_inner());
        if let Handle::Cached { handles, id } = &*handle {
            handles.forget(*id);
        }
        *handle = Handle::Closed;
    }
}

impl Drop for IndexFile {
    fn drop(&mut self) {
        self.close_handle();
    }
}

/// Entry counts of an index being mapped.
#[derive(Debug, Clone, Copy)]
struct Counts {
    /// Entries it holds.
    count: u32,
    /// Most entries the map covers.
    capacity_entries: u32,
    /// Entries the file has disk space for.
    reserved_entries: u32,
}

/// The last offset entry whose relative offset is at most `relative_offset`.
pub(crate) fn offset_floor(entries: &[u8], relative_offset: u32) -> Option<OffsetEntry> {
    let count = entries.len() / OFFSET_ENTRY_BYTES;
    let entry = |i: usize| {
        OffsetEntry::decode(&entries[i * OFFSET_ENTRY_BYTES..(i + 1) * OFFSET_ENTRY_BYTES])
    };
    let after = partition_point(count, |i| entry(i).relative_offset <= relative_offset);
    after.checked_sub(1).map(entry)
}

/// The last time entry whose max timestamp is below `timestamp_ms`: every record before
/// its batch is older than `timestamp_ms`, so a search can start there.
pub(crate) fn time_floor_below(entries: &[u8], timestamp_ms: i64) -> Option<TimeEntry> {
    let count = entries.len() / TIME_ENTRY_BYTES;
    let entry =
        |i: usize| TimeEntry::decode(&entries[i * TIME_ENTRY_BYTES..(i + 1) * TIME_ENTRY_BYTES]);
    let after = partition_point(count, |i| entry(i).max_timestamp_ms < timestamp_ms);
    after.checked_sub(1).map(entry)
}

/// The last time entry, if any.
pub(crate) fn last_time_entry(entries: &[u8]) -> Option<TimeEntry> {
    let count = entries.len() / TIME_ENTRY_BYTES;
    count
        .checked_sub(1)
        .map(|i| TimeEntry::decode(&entries[i * TIME_ENTRY_BYTES..(i + 1) * TIME_ENTRY_BYTES]))
}

/// Iterates decoded offset entries.
pub(crate) fn offset_entries(entries: &[u8]) -> impl Iterator<Item = OffsetEntry> + '_ {
    entries
        .chunks_exact(OFFSET_ENTRY_BYTES)
        .map(OffsetEntry::decode)
}

/// Iterates decoded time entries.
pub(crate) fn time_entries(entries: &[u8]) -> impl Iterator<Item = TimeEntry> + '_ {
    entries
        .chunks_exact(TIME_ENTRY_BYTES)
        .map(TimeEntry::decode)
}

/// First index in `0..count` for which `pred` is false, given that `pred` is true for a
/// prefix of the range and false after it.
fn partition_point(count: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, count);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(pairs: &[(u32, u32)]) -> Vec<u8> {
        pairs
            .iter()
            .flat_map(|&(relative_offset, position)| {
                OffsetEntry {
                    relative_offset,
                    position,
                }
                .encode()
            })
            .collect()
    }

    #[test]
    fn offset_floor_finds_the_entry_at_or_before() {
        let entries = offsets(&[(0, 32), (10, 4000), (20, 9000)]);
        assert_eq!(offset_floor(&entries, 0).map(|e| e.position), Some(32));
        assert_eq!(offset_floor(&entries, 9).map(|e| e.position), Some(32));
        assert_eq!(offset_floor(&entries, 10).map(|e| e.position), Some(4000));
        assert_eq!(offset_floor(&entries, 1000).map(|e| e.position), Some(9000));
        assert_eq!(offset_floor(&[], 5), None);
    }

    #[test]
    fn time_floor_is_strictly_below() {
        let entries: Vec<u8> = [(100, 0, 32), (200, 5, 500), (300, 9, 900)]
            .iter()
            .flat_map(|&(max_timestamp_ms, relative_offset, position)| {
                TimeEntry {
                    max_timestamp_ms,
                    relative_offset,
                    position,
                }
                .encode()
            })
            .collect();
        assert_eq!(time_floor_below(&entries, 100), None);
        assert_eq!(
            time_floor_below(&entries, 101).map(|e| e.position),
            Some(32)
        );
        assert_eq!(
            time_floor_below(&entries, 300).map(|e| e.position),
            Some(500)
        );
        assert_eq!(
            time_floor_below(&entries, 301).map(|e| e.position),
            Some(900)
        );
        assert_eq!(
            last_time_entry(&entries).map(|e| e.max_timestamp_ms),
            Some(300)
        );
    }
}
