//! Index damage found while reading, and its repair.
//!
//! A reader trusts an index entry only once the batch header it points at confirms it:
//! the header parses, its batch lies inside the data, and it carries the offset the
//! entry claims. The check costs nothing, since a seek reads that header anyway. An
//! entry that fails is index damage, never log damage: the read walks the segment from
//! its first batch instead (slow, always right), the damage is logged at ERROR, and the
//! segment's indexes are rebuilt from a walk over its batch headers. The rebuilt entries
//! serve this run's readers at once (below the end they were built to; the writer's own
//! entries above it), and replace the index files on disk, so the next open finds them
//! whole. The writer of the active segment keeps appending to its old, now unlinked,
//! files; sealing a segment whose index was repaired writes the files once more from a
//! full walk.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::{walk, Maps, Segment};
use crate::error::Result;
use crate::format::{self, OffsetEntry, TimeEntry};
use crate::index::{self, FileAccess, IndexFile, IndexKind};
use crate::vfs::Vfs;

/// What a segment needs to rebuild its indexes, and the rebuilt entries once it has.
#[derive(Debug)]
pub(crate) struct IndexRepair {
    pub(super) vfs: Arc<dyn Vfs>,
    index_interval_bytes: u32,
    /// Set once damage was found; readers then consult `rebuilt`.
    damaged: AtomicBool,
    /// Held while rebuilding, so that two readers that trip on the same entry walk once.
    rebuilt: Mutex<Option<Arc<Rebuilt>>>,
}

/// Index entries rebuilt from the data, covering batches below `end_position`.
#[derive(Debug)]
struct Rebuilt {
    offset_entries: Vec<u8>,
    time_entries: Vec<u8>,
    end_position: u64,
    /// Relative offset of the first batch at or past `end_position`.
    end_relative: u32,
}

/// Which index an entry that failed its check came from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum DamagedEntry {
    Offset(OffsetEntry),
    Time(TimeEntry),
}

impl DamagedEntry {
    fn position(self) -> u64 {
        u64::from(match self {
            DamagedEntry::Offset(e) => e.position,
            DamagedEntry::Time(e) => e.position,
        })
    }

    fn relative_offset(self) -> u32 {
        match self {
            DamagedEntry::Offset(e) => e.relative_offset,
            DamagedEntry::Time(e) => e.relative_offset,
        }
    }
}

impl IndexRepair {
    /// Nothing repaired yet; rebuilds use `vfs` and place entries every
    /// `index_interval_bytes`, as the writer does.
    pub(crate) fn new(vfs: Arc<dyn Vfs>, index_interval_bytes: u32) -> IndexRepair {
        IndexRepair {
            vfs,
            index_interval_bytes,
            damaged: AtomicBool::new(false),
            rebuilt: Mutex::new(None),
        }
    }

    fn rebuilt(&self) -> Option<Arc<Rebuilt>> {
        if !self.damaged.load(Ordering::Acquire) {
            return None;
        }
        self.rebuilt
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The spacing of index entries, in bytes of data.
    pub(crate) fn index_interval_bytes(&self) -> u32 {
        self.index_interval_bytes
    }

    /// Whether damage was found in this run (the writer then rewrites the index files
    /// when it seals the segment).
    pub(crate) fn was_damaged(&self) -> bool {
        self.damaged.load(Ordering::Acquire)
    }
}

impl Segment {
    /// The offset-index entry to start a seek for `relative` from: the rebuilt
    /// entries below the end they cover, the writer's entries above it.
    pub(super) fn offset_entry_floor(&self, maps: &Maps, relative: u32) -> Option<OffsetEntry> {
        let mapped = index::offset_floor(maps.offset_index.entries(), relative);
        let Some(rebuilt) = self.repair.rebuilt() else {
            return mapped;
        };
        mapped
            .filter(|e| e.relative_offset >= rebuilt.end_relative)
            .or_else(|| index::offset_floor(&rebuilt.offset_entries, relative))
    }

    /// The time-index entry to start a search for `timestamp_ms` from (as
    /// [`offset_entry_floor`](Self::offset_entry_floor)).
    pub(super) fn time_entry_floor(&self, maps: &Maps, timestamp_ms: i64) -> Option<TimeEntry> {
        let mapped = index::time_floor_below(maps.time_index.entries(), timestamp_ms);
        let Some(rebuilt) = self.repair.rebuilt() else {
            return mapped;
        };
        mapped
            .filter(|e| u64::from(e.position) >= rebuilt.end_position)
            .or_else(|| index::time_floor_below(&rebuilt.time_entries, timestamp_ms))
    }

    /// An index entry did not land on the batch it claims: logs it and rebuilds the
    /// indexes, unless a rebuild already covers that entry. The caller then seeks from
    /// the first batch. A failure to write the rebuilt files is logged, not returned:
    /// the read itself does not depend on them.
    pub(super) fn index_damaged(&self, maps: &Maps, entry: DamagedEntry, found: &str) {
        let mut rebuilt = self
            .repair
            .rebuilt
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let covered = rebuilt
            .as_ref()
            .is_some_and(|r| entry.position() < r.end_position);
        if covered && self.repair.damaged.load(Ordering::Acquire) {
            return;
        }
        let (kind, index_path) = match entry {
            DamagedEntry::Offset(_) => ("offset", maps.offset_index.path()),
            DamagedEntry::Time(_) => ("time", maps.time_index.path()),
        };
        tracing::error!(
            index = %index_path.display(),
            kind,
            claims_offset = self.base_offset + u64::from(entry.relative_offset()),
            points_at = entry.position(),
            %found,
            "index entry does not land on its batch: seeking without it and rebuilding the index"
        );
        let end = self.end_position();
        let walk = walk(
            &maps.data,
            &self.path,
            self.base_offset,
            end,
            u64::MAX, // headers only: CRCs are checked when batches are read
            self.repair.index_interval_bytes,
        );
        let end_relative = u32::try_from(walk.next_offset - self.base_offset).unwrap_or(u32::MAX);
        let fresh = Rebuilt {
            offset_entries: walk.offset_entries,
            time_entries: walk.time_entries,
            end_position: walk.end_position,
            end_relative,
        };
        if let Err(error) = self.write_indexes(maps, &fresh.offset_entries, &fresh.time_entries) {
            tracing::error!(segment = %self.path.display(), %error, "writing the rebuilt index failed; the next open rebuilds it");
        }
        *rebuilt = Some(Arc::new(fresh));
        self.repair.damaged.store(true, Ordering::Release);
    }

    /// Rewrites both index files from a walk over every batch (after a repair, when the
    /// segment is sealed and its end is final).
    pub(super) fn rewrite_indexes(&self, maps: &Maps) -> Result<()> {
        let walk = walk(
            &maps.data,
            &self.path,
            self.base_offset,
            self.end_position(),
            u64::MAX,
            self.repair.index_interval_bytes,
        );
        self.write_indexes(maps, &walk.offset_entries, &walk.time_entries)
    }

    /// Replaces the index files on disk with `offset_entries` and `time_entries`, sealed
    /// (cut to size and synced). Readers keep the maps they have: the old files live on
    /// unlinked until those are dropped.
    fn write_indexes(&self, maps: &Maps, offset_entries: &[u8], time_entries: &[u8]) -> Result<()> {
        let Some(dir) = self.path.parent() else {
            return Ok(());
        };
        // The writer of the active segment goes on writing to the files it maps, now
        // to be unlinked: it must keep their descriptors rather than reopen the paths.
        maps.offset_index.pin()?;
        maps.time_index.pin()?;
        let access = FileAccess {
            vfs: self.repair.vfs.clone(),
            handles: None,
            mapped: self.budget.clone(),
        };
        let vfs = access.vfs.as_ref();
        let files = [
            (
                format::offset_index_path(dir, self.base_offset),
                IndexKind::Offset,
                offset_entries,
            ),
            (
                format::time_index_path(dir, self.base_offset),
                IndexKind::Time,
                time_entries,
            ),
        ];
        for (path, kind, entries) in files {
            IndexFile::write_new(&access, &path, kind, self.base_offset, entries, 0, 0)?.seal()?;
        }
        if !self.path.exists() {
            // Retention removed the segment meanwhile: leave no orphan index behind.
            for path in [
                format::offset_index_path(dir, self.base_offset),
                format::time_index_path(dir, self.base_offset),
            ] {
                let _ = vfs.remove(&path);
            }
        }
        Ok(())
    }
}
