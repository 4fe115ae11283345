//! How a segment's file comes to be: created new, or opened from disk by recovery.
//!
//! [`Segment::create`] writes the segment header and two empty indexes sized for the
//! whole capacity, and reserves space ahead of the writer. Opening is two steps because
//! only recovery knows where an existing segment's data ends (from the clean-shutdown
//! marker, or by walking it): [`Segment::open_file`] opens and maps the file and reads
//! its header, and [`Segment::assemble`] builds the segment once that end, the next
//! offset and the (possibly rebuilt) indexes are decided. Either way the map covers the
//! segment's whole capacity from the start, so readers never see it remapped.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::{Arc, Mutex, Weak};

use memmap2::{Mmap, MmapOptions};

use super::{index_capacity, IndexRepair, MapSlot, Maps, Segment};
use crate::error::{Error, Result};
use crate::format::{self, SegmentHeader, SEGMENT_HEADER_BYTES};
use crate::index::{FileAccess, IndexFile, IndexKind};
use crate::vfs::{Vfs, VfsFile};

/// An opened segment file: the file, its map, its size, and its header if valid.
pub(crate) type OpenedFile = (Arc<dyn VfsFile>, Mmap, u64, Option<SegmentHeader>);

impl Segment {
    /// Creates a new, empty segment file with its header, reserving `preallocate` bytes.
    /// Returns the segment and the file, for its writer.
    pub(crate) fn create(
        access: &FileAccess,
        dir: &Path,
        base_offset: u64,
        created_ms: i64,
        capacity: u64,
        preallocate: u64,
        index_interval_bytes: u32,
    ) -> Result<(Segment, Arc<dyn VfsFile>)> {
        let path = format::segment_path(dir, base_offset);
        let vfs = &access.vfs;
        let file = vfs
            .create(&path)
            .map_err(|e| Error::io("creating segment", &path, e))?;
        let reserved = preallocate.clamp(SEGMENT_HEADER_BYTES, capacity);
        file.allocate(reserved)
            .map_err(|e| Error::io("reserving segment space", &path, e))?;
        let header = SegmentHeader {
            base_offset,
            created_ms,
        }
        .encode();
        file.write_all_at(&header, 0)
            .map_err(|e| Error::io("writing segment header", &path, e))?;
        let entries = index_capacity(capacity, index_interval_bytes);
        let reserve = index_capacity(reserved, index_interval_bytes);
        let offset_index = IndexFile::write_new(
            access,
            &format::offset_index_path(dir, base_offset),
            IndexKind::Offset,
            base_offset,
            &[],
            entries,
            reserve,
        )?;
        let time_index = IndexFile::write_new(
            access,
            &format::time_index_path(dir, base_offset),
            IndexKind::Time,
            base_offset,
            &[],
            entries,
            reserve,
        )?;
        let map = map_file(&path, file.as_ref(), capacity)?;
        let segment = Segment {
            base_offset,
            path,
            created_ms,
            capacity,
            maps: Mutex::new(MapSlot::Held(Arc::new(Maps::new(
                map,
                offset_index,
                time_index,
            )))),
            budget_id: access.mapped.register(),
            budget: access.mapped.clone(),
            end_position: AtomicU64::new(SEGMENT_HEADER_BYTES),
            next_offset: AtomicU64::new(base_offset),
            max_timestamp_ms: AtomicI64::new(i64::MIN),
            repair: IndexRepair::new(vfs.clone(), index_interval_bytes),
            last_damage_reported: AtomicU64::new(u64::MAX),
        };
        Ok((segment, file))
    }

    /// Opens an existing segment file and maps `capacity` bytes of it (at least its
    /// current size). Returns the segment with end position and next offset unset
    /// (the caller sets them from recovery) and the header, or `None` for the header
    /// if the file does not start with a valid one.
    pub(crate) fn open_file(vfs: &dyn Vfs, path: &Path, capacity: u64) -> Result<OpenedFile> {
        let file = vfs
            .open(path)
            .map_err(|e| Error::io("opening segment", path, e))?;
        let len = file
            .file()
            .metadata()
            .map_err(|e| Error::io("reading segment size", path, e))?
            .len();
        let capacity = capacity.max(len).max(SEGMENT_HEADER_BYTES);
        let map = map_file(path, file.as_ref(), capacity)?;
        let header = if len >= SEGMENT_HEADER_BYTES {
            SegmentHeader::decode(&map[..SEGMENT_HEADER_BYTES as usize])
        } else {
            None
        };
        Ok((file, map, len, header))
    }

    /// Assembles a segment from an opened file's map and its (possibly rebuilt)
    /// indexes, holding its maps (recovery checks them; a sealed segment then lets
    /// them go with [`release_maps`](Self::release_maps)). The file itself stays with
    /// the caller: the writer keeps the active segment's, and a sealed segment's is
    /// closed once mapped.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn assemble(
        access: &FileAccess,
        path: PathBuf,
        header: SegmentHeader,
        maps: Maps,
        end_position: u64,
        next_offset: u64,
        max_timestamp_ms: Option<i64>,
        index_interval_bytes: u32,
    ) -> Segment {
        Segment {
            base_offset: header.base_offset,
            path,
            created_ms: header.created_ms,
            capacity: maps.data.len() as u64,
            maps: Mutex::new(MapSlot::Held(Arc::new(maps))),
            budget_id: access.mapped.register(),
            budget: access.mapped.clone(),
            end_position: AtomicU64::new(end_position),
            next_offset: AtomicU64::new(next_offset),
            max_timestamp_ms: AtomicI64::new(max_timestamp_ms.unwrap_or(i64::MIN)),
            repair: IndexRepair::new(access.vfs.clone(), index_interval_bytes),
            last_damage_reported: AtomicU64::new(u64::MAX),
        }
    }

    /// A sealed segment just recovered: unmaps it until it is first read, so that
    /// opening a log maps only its active segment.
    pub(crate) fn release_maps(&self) {
        *self.maps.lock().unwrap_or_else(|p| p.into_inner()) = MapSlot::Budgeted(Weak::new());
    }

    /// Maps a sealed segment again: its data, cut to its end when it was sealed, and
    /// its sealed indexes, trusted as recovery checked them at open; if an index has
    /// gone missing or is no longer whole since, it is rebuilt from the data as
    /// recovery would.
    pub(super) fn reopen(&self) -> Result<Maps> {
        let vfs = &self.repair.vfs;
        let (_, map, len, header) = Segment::open_file(vfs.as_ref(), &self.path, 0)?;
        let end = self.end_position();
        if header.map(|h| h.base_offset) != Some(self.base_offset) || len < end {
            return Err(Error::Corrupt {
                path: self.path.clone(),
                position: len,
                reason: format!(
                    "the sealed segment changed on disk since it was opened (now {len} bytes, \
                     sealed at {end})"
                ),
            });
        }
        let access = FileAccess {
            vfs: vfs.clone(),
            handles: None,
            mapped: self.budget.clone(),
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let base = self.base_offset;
        let offset_path = format::offset_index_path(dir, base);
        let time_path = format::time_index_path(dir, base);
        let offset = IndexFile::open(&access, &offset_path, IndexKind::Offset, base, 0)?;
        let time = IndexFile::open(&access, &time_path, IndexKind::Time, base, 0)?;
        if let (Some(offset_index), Some(time_index)) = (offset, time) {
            return Ok(Maps::new(map, offset_index, time_index));
        }
        tracing::warn!(segment = %self.path.display(), "index of a sealed segment missing or damaged when mapped again; rebuilding it from the segment");
        let interval = self.repair.index_interval_bytes();
        let walk = super::walk(&map, &self.path, base, end, u64::MAX, interval);
        let mut rebuilt = Vec::with_capacity(2);
        for (path, kind, entries) in [
            (&offset_path, IndexKind::Offset, &walk.offset_entries),
            (&time_path, IndexKind::Time, &walk.time_entries),
        ] {
            let index = IndexFile::write_new(&access, path, kind, base, entries, 0, 0)?;
            index.seal()?;
            rebuilt.push(index);
        }
        let time_index = rebuilt.pop().ok_or(Error::Closed)?;
        let offset_index = rebuilt.pop().ok_or(Error::Closed)?;
        Ok(Maps::new(map, offset_index, time_index))
    }
}

fn map_file(path: &Path, file: &dyn VfsFile, capacity: u64) -> Result<Mmap> {
    let len =
        usize::try_from(capacity).map_err(|_| Error::Config("segment too large to map".into()))?;
    // SAFETY: the log owns the file. The map may extend past the file's current size
    // (space is reserved in steps); readers only touch bytes below the published end
    // position, which is always inside the file.
    unsafe { MmapOptions::new().len(len).map(file.file()) }
        .map_err(|e| Error::io("mapping segment", path, e))
}
