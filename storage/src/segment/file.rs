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
use std::sync::Arc;

use memmap2::{Mmap, MmapOptions};

use super::{index_capacity, IndexRepair, Segment};
use crate::error::{Error, Result};
use crate::format::{self, SegmentHeader, SEGMENT_HEADER_BYTES};
use crate::index::{IndexAccess, IndexFile, IndexKind};
use crate::vfs::{Vfs, VfsFile};

/// An opened segment file: the file, its map, its size, and its header if valid.
pub(crate) type OpenedFile = (Arc<dyn VfsFile>, Mmap, u64, Option<SegmentHeader>);

impl Segment {
    /// Creates a new, empty segment file with its header, reserving `preallocate` bytes.
    /// Returns the segment and the file, for its writer.
    pub(crate) fn create(
        access: &IndexAccess,
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
            map: Arc::new(map),
            end_position: AtomicU64::new(SEGMENT_HEADER_BYTES),
            next_offset: AtomicU64::new(base_offset),
            max_timestamp_ms: AtomicI64::new(i64::MIN),
            offset_index,
            time_index,
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
    /// indexes. The file itself stays with the caller: the writer keeps the active
    /// segment's, and a sealed segment's is closed once mapped.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn assemble(
        path: PathBuf,
        header: SegmentHeader,
        map: Mmap,
        end_position: u64,
        next_offset: u64,
        max_timestamp_ms: Option<i64>,
        offset_index: IndexFile,
        time_index: IndexFile,
        repair: IndexRepair,
    ) -> Segment {
        Segment {
            base_offset: header.base_offset,
            path,
            created_ms: header.created_ms,
            map: Arc::new(map),
            end_position: AtomicU64::new(end_position),
            next_offset: AtomicU64::new(next_offset),
            max_timestamp_ms: AtomicI64::new(max_timestamp_ms.unwrap_or(i64::MIN)),
            offset_index,
            time_index,
            repair,
            last_damage_reported: AtomicU64::new(u64::MAX),
        }
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
