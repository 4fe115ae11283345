//! Idempotent producers: the broker-wide id allocator ([`ProducerIds`]) and each
//! partition's deduplication table ([`table`]).
//!
//! A producer asks for an id once (`InitProducer`) and then tags each batch with it
//! and a per-partition sequence number. The partition checks the tag against its
//! [`ProducerTable`](table::ProducerTable) under the same lock as the append, so a
//! retried batch is recognised and answered with the offsets it got the first time
//! instead of being stored again. The table is rebuilt at open from the log's producer
//! journal (`storage::producers`), so this holds across restarts too.
//!
//! Simpler than Kafka where it can be: ids are never reused, so there is no producer
//! epoch (a producer that must start its sequences over asks for a new id), and
//! sequences count batches, not records, in a `u64` that never wraps. Kafka's
//! producers, which have epochs and count records, ride on the same table and journal
//! ([`kafka`]).

pub mod kafka;
pub mod table;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::BrokerError;

/// File in the data directory holding the first producer id not yet handed out.
pub const PRODUCER_IDS_FILE: &str = "producer-ids";

/// Ids reserved per write of [`PRODUCER_IDS_FILE`]: a restart skips what was reserved
/// and not used, so the file is written (and synced) once per this many producers.
pub const PRODUCER_ID_BLOCK: u64 = 1024;

/// Hands out producer ids, unique across restarts: each id is below a limit that was
/// durably recorded before the id was given out, and a restart starts at that limit.
#[derive(Debug)]
pub struct ProducerIds {
    path: PathBuf,
    state: Mutex<IdState>,
}

#[derive(Debug)]
struct IdState {
    next: u64,
    /// Ids below this may be handed out; it is on disk.
    reserved: u64,
}

impl ProducerIds {
    /// Opens the allocator of the data directory `dir`. Ids start at 1.
    pub fn open(dir: &Path) -> Result<ProducerIds, BrokerError> {
        let path = dir.join(PRODUCER_IDS_FILE);
        let next = match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse::<u64>().map_err(|_| {
                BrokerError::Internal(format!(
                    "{} does not hold a producer id ({text:?}); restore it or remove it \
                     only if no idempotent producer of the old ids is still running",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 1,
            Err(e) => return Err(storage::Error::io("reading", &path, e).into()),
        };
        Ok(ProducerIds {
            path,
            state: Mutex::new(IdState {
                next: next.max(1),
                reserved: next.max(1),
            }),
        })
    }

    /// A new producer id (blocking I/O once per [`PRODUCER_ID_BLOCK`] ids).
    pub fn allocate(&self) -> Result<u64, BrokerError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.next >= state.reserved {
            let reserved = state.next.saturating_add(PRODUCER_ID_BLOCK);
            write_durably(&self.path, &reserved.to_string())?;
            state.reserved = reserved;
        }
        let id = state.next;
        state.next += 1;
        debug_assert!(
            id < state.reserved,
            "an id is handed out only once reserved"
        );
        Ok(id)
    }
}

impl ProducerIds {
    /// Whether `id` may have been handed out by this allocator, before or since a
    /// restart: it is below the next id (ids a restart skipped count too, so this
    /// never refuses an id that was handed out).
    pub fn issued(&self, id: u64) -> bool {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (1..state.next).contains(&id)
    }
}

/// Replaces `path` with `text`: temporary file, sync, rename, sync the directory.
fn write_durably(path: &Path, text: &str) -> Result<(), BrokerError> {
    use std::io::Write;
    let io = |op: &'static str, p: &Path, e| BrokerError::from(storage::Error::io(op, p, e));
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).map_err(|e| io("creating", &tmp, e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| io("writing", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io("renaming", &tmp, e))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("syncing directory", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let ids = ProducerIds::open(dir.path()).unwrap();
        let first: Vec<u64> = (0..3).map(|_| ids.allocate().unwrap()).collect();
        assert_eq!(first, [1, 2, 3]);
        drop(ids);
        let ids = ProducerIds::open(dir.path()).unwrap();
        let after = ids.allocate().unwrap();
        assert!(after > 3, "a restart never hands out an id again: {after}");
        assert_eq!(after, 1 + PRODUCER_ID_BLOCK);
        assert!(ids.issued(2), "an id of the earlier run");
        assert!(ids.issued(after) && !ids.issued(after + 1) && !ids.issued(0));
    }
}
