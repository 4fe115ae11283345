//! A fault-injecting file system for power-loss tests.
//!
//! `kill -9` keeps the page cache, so it cannot show what an unsynced write loses.
//! [`SimVfs`] passes every operation through to the real files (so memory-mapped
//! readers see what a page cache would show) and keeps, per file, a model of what is
//! on stable storage: the contents as of the last successful `sync_data`, plus the
//! operations since. At [`SimVfs::crash`] the real files are rewritten to one possible
//! post-power-loss state, chosen by a seeded generator:
//!
//! - [`CrashMode::DropUnsynced`]: every unsynced byte, creation and removal is lost;
//! - [`CrashMode::KeepRandomPages`]: each unsynced 4 KiB page piece survives or not;
//! - [`CrashMode::TearLastWrite`]: everything survives but the last write, cut short.
//!
//! [`FaultPlan`] makes the n-th write fail with ENOSPC or EIO, or the n-th sync fail
//! with EIO. A failed sync behaves as Linux does: the dirty data is marked clean
//! anyway, so it may or may not be on disk, and a later successful sync does not
//! write it.
//!
//! This module is test support; it is public so that integration tests and benches can
//! use it, and it is never used by the broker.

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::vfs::{Vfs, VfsFile};

/// Page size the simulation tears writes at.
pub const SIM_PAGE_BYTES: u64 = 4096;

/// Which post-crash state to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Lose everything not synced.
    DropUnsynced,
    /// Keep a random subset of unsynced page pieces (and directory changes).
    KeepRandomPages,
    /// Keep everything except a random tail of the last unsynced write.
    TearLastWrite,
}

/// Which operation fails, counted from when the plan is armed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// The n-th (0-based) `write_all_at` fails with ENOSPC, writing nothing.
    pub enospc_at_write: Option<u64>,
    /// The n-th `write_all_at` writes part of its data, then fails with EIO.
    pub eio_at_write: Option<u64>,
    /// The n-th `sync_data` fails with EIO.
    pub eio_at_sync: Option<u64>,
}

#[derive(Debug, Clone)]
enum Op {
    Write { position: u64, data: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Default, Clone)]
struct FileModel {
    durable: Vec<u8>,
    /// Operations since the last sync, in order.
    pending: Vec<Op>,
    /// Operations whose sync failed: they may or may not be on disk.
    limbo: Vec<Op>,
}

#[derive(Debug)]
struct SimState {
    rng: u64,
    files: BTreeMap<PathBuf, FileModel>,
    /// Created since the last directory sync: may vanish.
    created: HashSet<PathBuf>,
    /// Removed since the last directory sync: may come back.
    removed: BTreeMap<PathBuf, FileModel>,
    plan: FaultPlan,
    writes: u64,
    syncs: u64,
    injected: Vec<String>,
}

impl SimState {
    fn next(&mut self) -> u64 {
        // splitmix64: small, seedable, good enough to pick faults.
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

/// The simulated file system. Cheap to clone; clones share state.
#[derive(Debug, Clone)]
pub struct SimVfs {
    state: Arc<Mutex<SimState>>,
}

fn lock(state: &Mutex<SimState>) -> MutexGuard<'_, SimState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl SimVfs {
    /// A simulation seeded with `seed`, with no faults armed.
    pub fn new(seed: u64) -> SimVfs {
        SimVfs {
            state: Arc::new(Mutex::new(SimState {
                rng: seed,
                files: BTreeMap::new(),
                created: HashSet::new(),
                removed: BTreeMap::new(),
                plan: FaultPlan::default(),
                writes: 0,
                syncs: 0,
                injected: Vec::new(),
            })),
        }
    }

    /// Arms `plan`, counting operations from now.
    pub fn arm(&self, plan: FaultPlan) {
        let mut state = lock(&self.state);
        state.plan = plan;
        state.writes = 0;
        state.syncs = 0;
    }

    /// Disarms all faults.
    pub fn disarm(&self) {
        lock(&self.state).plan = FaultPlan::default();
    }

    /// Faults injected so far, described.
    pub fn injected(&self) -> Vec<String> {
        lock(&self.state).injected.clone()
    }

    /// A random number from the simulation's generator, for tests that want their
    /// choices to follow the same seed.
    pub fn random(&self) -> u64 {
        lock(&self.state).next()
    }

    /// Simulates power loss: rewrites every tracked file to a state the disk could be
    /// in, then forgets all unsynced history (the new state is what is durable). The
    /// log using this file system must be dropped first.
    pub fn crash(&self, mode: CrashMode) -> io::Result<()> {
        let mut state = lock(&self.state);
        let files: Vec<(PathBuf, FileModel)> =
            std::mem::take(&mut state.files).into_iter().collect();
        let removed: Vec<(PathBuf, FileModel)> =
            std::mem::take(&mut state.removed).into_iter().collect();
        let created = std::mem::take(&mut state.created);
        for (path, model) in files {
            let vanish = created.contains(&path)
                && match mode {
                    CrashMode::DropUnsynced => true,
                    CrashMode::KeepRandomPages => state.coin(),
                    CrashMode::TearLastWrite => false,
                };
            if vanish {
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => continue,
                }
            }
            let contents = surviving_contents(&mut state, &model, mode);
            std::fs::write(&path, &contents)?;
            state.files.insert(
                path,
                FileModel {
                    durable: contents,
                    ..FileModel::default()
                },
            );
        }
        for (path, model) in removed {
            let comes_back = match mode {
                CrashMode::DropUnsynced => true,
                CrashMode::KeepRandomPages => state.coin(),
                CrashMode::TearLastWrite => false,
            };
            if comes_back && !created.contains(&path) {
                std::fs::write(&path, &model.durable)?;
                state.files.insert(
                    path,
                    FileModel {
                        durable: model.durable,
                        ..FileModel::default()
                    },
                );
            }
        }
        Ok(())
    }

    fn model_for(&self, path: &Path) -> io::Result<()> {
        let mut state = lock(&self.state);
        if !state.files.contains_key(path) {
            // A file from before the simulation started: what is there is durable.
            let durable = std::fs::read(path)?;
            state.files.insert(
                path.to_path_buf(),
                FileModel {
                    durable,
                    ..FileModel::default()
                },
            );
        }
        Ok(())
    }
}

fn apply(contents: &mut Vec<u8>, op: &Op) {
    match op {
        Op::Write { position, data } => {
            let end = *position as usize + data.len();
            if contents.len() < end {
                contents.resize(end, 0);
            }
            contents[*position as usize..end].copy_from_slice(data);
        }
        Op::SetLen(len) => contents.resize(*len as usize, 0),
    }
}

fn surviving_contents(state: &mut SimState, model: &FileModel, mode: CrashMode) -> Vec<u8> {
    let mut contents = model.durable.clone();
    // Operations whose sync failed: each may or may not have reached the disk.
    for op in &model.limbo {
        if state.coin() {
            apply(&mut contents, op);
        }
    }
    let last_write = model
        .pending
        .iter()
        .rposition(|op| matches!(op, Op::Write { .. }));
    for (i, op) in model.pending.iter().enumerate() {
        match (mode, op) {
            (CrashMode::DropUnsynced, _) => {}
            (CrashMode::KeepRandomPages, Op::Write { position, data }) => {
                // Split at page boundaries; each piece survives on its own.
                let mut at = *position;
                let end = position + data.len() as u64;
                while at < end {
                    let piece_end = ((at / SIM_PAGE_BYTES) + 1) * SIM_PAGE_BYTES;
                    let piece_end = piece_end.min(end);
                    if state.coin() {
                        let from = (at - position) as usize;
                        let to = (piece_end - position) as usize;
                        apply(
                            &mut contents,
                            &Op::Write {
                                position: at,
                                data: data[from..to].to_vec(),
                            },
                        );
                    }
                    at = piece_end;
                }
            }
            (CrashMode::KeepRandomPages, op) => {
                if state.coin() {
                    apply(&mut contents, op);
                }
            }
            (CrashMode::TearLastWrite, Op::Write { position, data }) if Some(i) == last_write => {
                let keep = state.below(data.len() as u64) as usize;
                apply(
                    &mut contents,
                    &Op::Write {
                        position: *position,
                        data: data[..keep].to_vec(),
                    },
                );
            }
            (CrashMode::TearLastWrite, op) => apply(&mut contents, op),
        }
    }
    contents
}

/// A file of the simulated file system.
#[derive(Debug)]
pub struct SimFile {
    path: PathBuf,
    file: File,
    state: Arc<Mutex<SimState>>,
}

impl SimFile {
    fn record(&self, op: Op) {
        let mut state = lock(&self.state);
        if let Some(model) = state.files.get_mut(&self.path) {
            model.pending.push(op);
        }
    }
}

impl VfsFile for SimFile {
    fn write_all_at(&self, buf: &[u8], position: u64) -> io::Result<()> {
        let fault = {
            let mut state = lock(&self.state);
            let n = state.writes;
            state.writes += 1;
            if state.plan.enospc_at_write == Some(n) {
                state
                    .injected
                    .push(format!("ENOSPC at write {n} to {}", self.path.display()));
                Some(libc::ENOSPC)
            } else if state.plan.eio_at_write == Some(n) {
                state
                    .injected
                    .push(format!("EIO at write {n} to {}", self.path.display()));
                Some(libc::EIO)
            } else {
                None
            }
        };
        match fault {
            Some(libc::ENOSPC) => Err(io::Error::from_raw_os_error(libc::ENOSPC)),
            Some(errno) => {
                let part = &buf[..buf.len() / 2];
                self.file.write_all_at(part, position)?;
                self.record(Op::Write {
                    position,
                    data: part.to_vec(),
                });
                Err(io::Error::from_raw_os_error(errno))
            }
            None => {
                self.file.write_all_at(buf, position)?;
                self.record(Op::Write {
                    position,
                    data: buf.to_vec(),
                });
                Ok(())
            }
        }
    }

    fn write_vectored_all_at(&self, bufs: &[&[u8]], position: u64) -> io::Result<()> {
        // One pwritev is one operation for fault injection and tearing.
        self.write_all_at(&bufs.concat(), position)
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut state = lock(&self.state);
        let n = state.syncs;
        state.syncs += 1;
        let fail = state.plan.eio_at_sync == Some(n);
        if fail {
            state
                .injected
                .push(format!("EIO at sync {n} of {}", self.path.display()));
        }
        let Some(model) = state.files.get_mut(&self.path) else {
            return Ok(());
        };
        let pending = std::mem::take(&mut model.pending);
        if fail {
            model.limbo.extend(pending);
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        for op in &pending {
            apply(&mut model.durable, op);
        }
        self.file.sync_data()
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        let current = self.file.metadata()?.len();
        if len > current {
            self.file.set_len(len)?;
            self.record(Op::SetLen(len));
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.record(Op::SetLen(len));
        Ok(())
    }

    fn file(&self) -> &File {
        &self.file
    }
}

impl Vfs for SimVfs {
    fn create(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        let mut state = lock(&self.state);
        state.files.insert(path.to_path_buf(), FileModel::default());
        state.created.insert(path.to_path_buf());
        state.removed.remove(path);
        Ok(Arc::new(SimFile {
            path: path.to_path_buf(),
            file,
            state: self.state.clone(),
        }))
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        self.model_for(path)?;
        Ok(Arc::new(SimFile {
            path: path.to_path_buf(),
            file,
            state: self.state.clone(),
        }))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)?;
        let mut state = lock(&self.state);
        if let Some(model) = state.files.remove(path) {
            if !state.created.remove(path) {
                state.removed.insert(path.to_path_buf(), model);
            }
        }
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = lock(&self.state);
        state.created.retain(|p| p.parent() != Some(dir));
        state.removed.retain(|p, _| p.parent() != Some(dir));
        drop(state);
        File::open(dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsynced_writes_are_lost_and_synced_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let vfs = SimVfs::new(1);
        let path = dir.path().join("f");
        let file = vfs.create(&path).unwrap();
        vfs.sync_dir(dir.path()).unwrap();
        file.write_all_at(b"hello", 0).unwrap();
        file.sync_data().unwrap();
        file.write_all_at(b" world", 5).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"hello world");
        drop(file);
        vfs.crash(CrashMode::DropUnsynced).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"hello");
    }

    #[test]
    fn unsynced_creations_vanish_and_failed_syncs_do_not_persist() {
        let dir = tempfile::tempdir().unwrap();
        let vfs = SimVfs::new(2);
        let kept = dir.path().join("kept");
        let file = vfs.create(&kept).unwrap();
        vfs.sync_dir(dir.path()).unwrap();
        let gone = dir.path().join("gone");
        vfs.create(&gone).unwrap();
        vfs.arm(FaultPlan {
            eio_at_sync: Some(0),
            ..FaultPlan::default()
        });
        file.write_all_at(b"data", 0).unwrap();
        assert!(file.sync_data().is_err());
        assert!(
            file.sync_data().is_ok(),
            "a retried sync succeeds without writing the data"
        );
        drop(file);
        vfs.crash(CrashMode::DropUnsynced).unwrap();
        assert!(!gone.exists());
        let left = std::fs::read(&kept).unwrap();
        assert!(left.is_empty() || left == b"data");
    }
}
