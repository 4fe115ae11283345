//! The seam between the log and the file system.
//!
//! Every call that changes what is on disk goes through [`Vfs`] and [`VfsFile`], so a
//! test can put a fault-injecting layer ([`crate::sim::SimVfs`]) in between and decide,
//! at a simulated power loss, which unsynced bytes survive. Reads do not go through the
//! seam: they use memory maps of the real files, which is also what a real page cache
//! shows after a write.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::Arc;

/// A file opened for writing by the log.
pub trait VfsFile: Send + Sync + Debug {
    /// Writes all of `buf` at `position`.
    fn write_all_at(&self, buf: &[u8], position: u64) -> io::Result<()>;
    /// Writes the buffers back to back at `position`, as one `pwritev` where possible.
    fn write_vectored_all_at(&self, bufs: &[&[u8]], position: u64) -> io::Result<()> {
        let mut at = position;
        for buf in bufs {
            self.write_all_at(buf, at)?;
            at += buf.len() as u64;
        }
        Ok(())
    }
    /// Forces written data (and the size) to stable storage: `fdatasync`.
    fn sync_data(&self) -> io::Result<()>;
    /// Reserves disk space for `[0, len)`, extending the file with zeros if shorter.
    fn allocate(&self, len: u64) -> io::Result<()>;
    /// Truncates or extends the file to exactly `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// The real file, for memory-mapping and reading.
    fn file(&self) -> &File;
}

/// The file-system operations the log needs.
pub trait Vfs: Send + Sync + Debug {
    /// Creates a new file, failing if it exists.
    fn create(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>>;
    /// Opens an existing file for reading and writing.
    fn open(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creations, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealVfs;

/// A real file.
#[derive(Debug)]
pub struct RealFile(File);

impl VfsFile for RealFile {
    fn write_all_at(&self, buf: &[u8], position: u64) -> io::Result<()> {
        self.0.write_all_at(buf, position)
    }

    fn write_vectored_all_at(&self, bufs: &[&[u8]], position: u64) -> io::Result<()> {
        pwritev_all(&self.0, bufs, position)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        let current = self.0.metadata()?.len();
        if len <= current {
            return Ok(());
        }
        let offset = libc::off_t::try_from(current).map_err(io::Error::other)?;
        let extra = libc::off_t::try_from(len - current).map_err(io::Error::other)?;
        // SAFETY: plain syscall on a file descriptor we own; no memory is passed.
        let rc = unsafe { libc::fallocate(self.0.as_raw_fd(), 0, offset, extra) };
        if rc == 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            // File systems without fallocate: fall back to a sparse extension. Space is
            // then not reserved, but writes go through write(2), never a mapping, so a
            // full disk still surfaces as ENOSPC from the write rather than SIGBUS.
            Some(libc::EOPNOTSUPP) => self.0.set_len(len),
            _ => Err(error),
        }
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn file(&self) -> &File {
        &self.0
    }
}

impl Vfs for RealVfs {
    fn create(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        Ok(Arc::new(RealFile(file)))
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Arc::new(RealFile(file)))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// Most buffers handed to one `pwritev` call: Linux's `IOV_MAX`, which POSIX
/// systems may not set lower than 16 but Linux, the target, fixes at 1024.
const MAX_IOVECS: usize = 1024;

/// `pwritev` until every byte is written, resuming after short writes.
fn pwritev_all(file: &File, bufs: &[&[u8]], position: u64) -> io::Result<()> {
    // One vector for the whole call; a short write advances it in place.
    let mut iovecs: Vec<libc::iovec> = bufs
        .iter()
        .filter(|b| !b.is_empty())
        .map(|b| libc::iovec {
            iov_base: b.as_ptr() as *mut libc::c_void,
            iov_len: b.len(),
        })
        .collect();
    let mut position = position;
    // `iovecs[first..]` is what is left to write; `iovecs[first]` may be partly written.
    let mut first = 0;
    while first < iovecs.len() {
        let pending = &iovecs[first..iovecs.len().min(first + MAX_IOVECS)];
        let offset = libc::off_t::try_from(position).map_err(io::Error::other)?;
        // SAFETY: every iovec points into a slice of `bufs`, borrowed for the whole
        // call (a partly written one at a later point of the same slice); the kernel
        // only reads from them.
        let written = unsafe {
            libc::pwritev(
                file.as_raw_fd(),
                pending.as_ptr(),
                pending.len() as libc::c_int,
                offset,
            )
        };
        if written < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        if written == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "pwritev wrote nothing",
            ));
        }
        position += written as u64;
        let mut left = written as usize;
        while left > 0 {
            let iov = &mut iovecs[first];
            if left >= iov.iov_len {
                left -= iov.iov_len;
                first += 1;
            } else {
                iov.iov_base = (iov.iov_base as *mut u8).wrapping_add(left) as *mut libc::c_void;
                iov.iov_len -= left;
                left = 0;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectored_writes_land_back_to_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = RealVfs.create(&path).unwrap();
        file.write_vectored_all_at(&[b"ab", b"", b"cde"], 3)
            .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"\0\0\0abcde");
    }
}
