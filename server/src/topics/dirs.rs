//! The topics directory on disk, `<data_dir>/topics/`: what each of its entries is,
//! and the changes to it that must survive a crash whole (writing a `topic.toml`,
//! deleting a topic's directory).
//!
//! A topic is a directory holding `topic.toml`. Creating one writes `topic.toml`
//! (atomically) before any partition log, so a crash leaves either no `topic.toml`
//! and nothing else but its temporary file (an unfinished create, removed), or a
//! topic. Deleting one first renames its directory to `<name>~deleting` (`~` is not
//! allowed in topic names), so a crash leaves either the topic or a directory the
//! next start finishes removing. Anything else without `topic.toml` is not ours to
//! judge: the broker never deletes it, says so at startup, and refuses to create a
//! topic over it.

use std::io;
use std::path::{Path, PathBuf};

use crate::error::BrokerError;

/// File holding a topic's configuration.
pub const TOPIC_FILE: &str = "topic.toml";
/// What [`write_atomically`] writes `topic.toml` as before renaming it.
const TOPIC_FILE_TMP: &str = "topic.tmp";
/// Suffix of a topic directory being deleted.
const DELETING_SUFFIX: &str = "~deleting";
/// Deepest level [`contents`] counts files at (a topic holds partition directories
/// holding files; anything deeper is not the broker's).
const MAX_CONTENT_DEPTH: u32 = 4;

/// What one entry of the topics directory is.
#[derive(Debug, PartialEq, Eq)]
pub enum Entry {
    /// A topic: its `topic.toml` is there.
    Topic,
    /// A create that stopped before its `topic.toml` was in place: the directory is
    /// empty or holds only the temporary file. Nothing of value; removable.
    Unfinished,
    /// A directory without `topic.toml` that holds files: not opened, never deleted.
    Orphan(Contents),
    /// A deletion that stopped midway; to be finished.
    Deleting,
    /// Not a directory, or a name that is no topic's: left alone.
    Other,
}

/// Files below a directory, for messages about one the broker will not touch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Contents {
    /// Regular files.
    pub files: u64,
    /// Their sizes, summed.
    pub bytes: u64,
}

impl std::fmt::Display for Contents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} file(s), {} bytes", self.files, self.bytes)
    }
}

/// Classifies the entry `name` at `path`.
pub fn classify(path: &Path, name: &str) -> io::Result<Entry> {
    if !path.is_dir() {
        return Ok(Entry::Other);
    }
    if name.ends_with(DELETING_SUFFIX) {
        return Ok(Entry::Deleting);
    }
    if super::validate_topic_name(name).is_err() {
        return Ok(Entry::Other);
    }
    if path.join(TOPIC_FILE).exists() {
        return Ok(Entry::Topic);
    }
    let mut only_tmp = true;
    for entry in std::fs::read_dir(path)? {
        if entry?.file_name() != TOPIC_FILE_TMP {
            only_tmp = false;
            break;
        }
    }
    if only_tmp {
        return Ok(Entry::Unfinished);
    }
    Ok(Entry::Orphan(contents(path, 0)?))
}

/// Counts the files below `dir`, down to [`MAX_CONTENT_DEPTH`].
fn contents(dir: &Path, depth: u32) -> io::Result<Contents> {
    let mut total = Contents::default();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_file() {
            total.files += 1;
            total.bytes += entry.metadata()?.len();
        } else if kind.is_dir() && depth < MAX_CONTENT_DEPTH {
            let below = contents(&entry.path(), depth + 1)?;
            total.files += below.files;
            total.bytes += below.bytes;
        }
    }
    Ok(total)
}

/// The refusal to create topic `name` over a directory holding `contents`.
pub fn obstructed(name: &str, contents: Contents) -> BrokerError {
    BrokerError::TopicDirectoryInTheWay {
        topic: name.to_string(),
        contents: contents.to_string(),
    }
}

/// Removes an [`Entry::Unfinished`] directory.
pub fn remove_unfinished(path: &Path) -> Result<(), BrokerError> {
    debug_assert!(!path.join(TOPIC_FILE).exists(), "never a topic");
    std::fs::remove_dir_all(path)
        .map_err(|e| storage::Error::io("removing an unfinished topic create", path, e).into())
}

/// Deletes the topic directory `path` so that a crash midway leaves it whole or
/// marked for deletion: renamed (durably) to `<name>~deleting`, then removed.
pub fn delete_topic_dir(path: &Path) -> Result<(), BrokerError> {
    let doomed = deleting_path(path);
    if doomed.exists() {
        // A previous delete of a topic of this name that failed midway.
        finish_deleting(&doomed)?;
    }
    std::fs::rename(path, &doomed)
        .map_err(|e| storage::Error::io("renaming topic dir for deletion", path, e))?;
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    finish_deleting(&doomed)
}

/// Removes an [`Entry::Deleting`] directory.
pub fn finish_deleting(path: &Path) -> Result<(), BrokerError> {
    debug_assert!(path.to_string_lossy().ends_with(DELETING_SUFFIX));
    std::fs::remove_dir_all(path)
        .map_err(|e| storage::Error::io("removing deleted topic dir", path, e).into())
}

fn deleting_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(DELETING_SUFFIX);
    path.with_file_name(name)
}

/// Writes `bytes` to `path` so that a crash leaves the old file or the new one: a
/// temporary file, synced, renamed over `path`, and the directory synced.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), BrokerError> {
    use std::io::Write;
    let tmp = path.with_file_name(TOPIC_FILE_TMP);
    let io = |op, e| BrokerError::Storage(storage::Error::io(op, path, e));
    let mut file = std::fs::File::create(&tmp).map_err(|e| io("creating", e))?;
    file.write_all(bytes).map_err(|e| io("writing", e))?;
    file.sync_all().map_err(|e| io("syncing", e))?;
    std::fs::rename(&tmp, path).map_err(|e| io("renaming", e))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), BrokerError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| storage::Error::io("syncing directory", dir, e).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name);
        std::fs::create_dir_all(at("topic/0")).unwrap();
        std::fs::write(at("topic/topic.toml"), "x").unwrap();
        std::fs::create_dir(at("empty")).unwrap();
        std::fs::create_dir(at("tmp-only")).unwrap();
        std::fs::write(at("tmp-only/topic.tmp"), "x").unwrap();
        std::fs::create_dir_all(at("orphan/0")).unwrap();
        std::fs::write(at("orphan/0/00000000000000000000.log"), [0u8; 100]).unwrap();
        std::fs::write(at("orphan/note"), [0u8; 5]).unwrap();
        std::fs::create_dir(at("old~deleting")).unwrap();
        std::fs::write(at("file"), "x").unwrap();
        std::fs::create_dir(at("bad name")).unwrap();
        let kind = |name: &str| classify(&at(name), name).unwrap();
        assert_eq!(kind("topic"), Entry::Topic);
        assert_eq!(kind("empty"), Entry::Unfinished);
        assert_eq!(kind("tmp-only"), Entry::Unfinished);
        assert_eq!(
            kind("orphan"),
            Entry::Orphan(Contents {
                files: 2,
                bytes: 105
            })
        );
        assert_eq!(kind("old~deleting"), Entry::Deleting);
        assert_eq!(kind("file"), Entry::Other);
        assert_eq!(kind("bad name"), Entry::Other);
    }

    #[test]
    fn a_deleted_directory_is_gone_and_a_stale_deletion_does_not_stop_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let topic = dir.path().join("t");
        std::fs::create_dir_all(topic.join("0")).unwrap();
        std::fs::create_dir_all(dir.path().join("t~deleting/0")).unwrap();
        delete_topic_dir(&topic).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
