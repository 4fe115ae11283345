//! The process's open-file limit. Every connection, segment, index and map costs
//! descriptors, and the soft `RLIMIT_NOFILE` a shell or systemd hands a process is
//! often 1,024, far below its hard limit: brokerd raises its own soft limit to the
//! hard one at start (capped at [`MAX_OPEN_FILES`]) and logs what it got, so a
//! broker with thousands of partitions does not fail with EMFILE under a limit the
//! operator never chose.
//!
//! Must never lower a limit, or fail startup because the limit cannot be changed
//! (it logs and runs under the limit it has).

/// The highest soft limit brokerd asks for: Linux's default `fs.nr_open`, the most a
/// process may set even when the hard limit is unlimited.
pub const MAX_OPEN_FILES: u64 = 1 << 20;

/// The open-file limit before and after [`raise`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFileLimit {
    /// The soft limit brokerd started with.
    pub before: u64,
    /// The soft limit now.
    pub soft: u64,
    /// The hard limit (`u64::MAX`: unlimited).
    pub hard: u64,
}

/// The soft limit to ask for, pure: the hard limit, capped at [`MAX_OPEN_FILES`],
/// never below the current soft limit.
pub fn target(soft: u64, hard: u64) -> u64 {
    hard.min(MAX_OPEN_FILES).max(soft)
}

/// The current `RLIMIT_NOFILE`, soft and hard.
fn current() -> std::io::Result<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the valid, exclusively borrowed struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(limit)
}

/// Raises the soft `RLIMIT_NOFILE` to [`target`]; the limits before and after.
pub fn raise() -> std::io::Result<OpenFileLimit> {
    let limit = current()?;
    let before = limit.rlim_cur;
    let wanted = target(before, limit.rlim_max);
    if wanted > before {
        let raised = libc::rlimit {
            rlim_cur: wanted,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads one valid rlimit; it changes only this process.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(OpenFileLimit {
        before,
        soft: wanted,
        hard: limit.rlim_max,
    })
}

/// Raises the limit and logs the outcome: what it was raised from and to, or why it
/// could not be.
pub fn raise_and_log() -> Option<OpenFileLimit> {
    match raise() {
        Ok(limit) if limit.soft > limit.before => {
            tracing::info!(
                from = limit.before,
                to = limit.soft,
                hard = limit.hard,
                "raised the open-file limit (RLIMIT_NOFILE) to its hard limit"
            );
            Some(limit)
        }
        Ok(limit) => {
            tracing::info!(
                soft = limit.soft,
                hard = limit.hard,
                max = MAX_OPEN_FILES,
                "open-file limit (RLIMIT_NOFILE) kept: already at the hard limit or the most brokerd asks for"
            );
            Some(limit)
        }
        Err(error) => {
            tracing::warn!(%error, "could not raise the open-file limit (RLIMIT_NOFILE)");
            None
        }
    }
}

/// The soft limit the process runs under now.
pub fn soft_limit() -> std::io::Result<u64> {
    current().map(|limit| limit.rlim_cur)
}

/// Fewest index write handles brokerd budgets for by default, however low the limit.
pub const MIN_DEFAULT_INDEX_HANDLES: usize = 64;

/// The default budget of index write handles under an open-file limit of `soft`,
/// pure: a quarter of it, leaving the rest to connections, the active segments' data
/// files and everything else; at least [`MIN_DEFAULT_INDEX_HANDLES`].
pub fn default_index_handles(soft: u64) -> usize {
    let quarter = usize::try_from(soft / 4).unwrap_or(usize::MAX);
    quarter.max(MIN_DEFAULT_INDEX_HANDLES)
}

/// The kernel's limit on memory maps per process (`vm.max_map_count`), where the
/// platform says; Linux's default is 65,530.
pub fn max_map_count() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|text| text.trim().parse().ok())
}

/// Fewest sealed segments brokerd keeps mapped by default, however low the limit.
pub const MIN_DEFAULT_MAPPED_SEGMENTS: usize = 64;

/// The default budget of mapped sealed segments under `max_map_count`, pure: each
/// takes three maps (data and two indexes), and half the maps are left to the active
/// segments (three each too), connections' buffers and the allocator; so a sixth of
/// the limit, at least [`MIN_DEFAULT_MAPPED_SEGMENTS`].
pub fn default_mapped_segments(max_map_count: u64) -> usize {
    let sixth = usize::try_from(max_map_count / 6).unwrap_or(usize::MAX);
    sixth.max(MIN_DEFAULT_MAPPED_SEGMENTS)
}

/// Descriptors the process holds now (`/proc/self/fd`), where the platform has it.
pub fn open_descriptors() -> Option<usize> {
    std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|entries| entries.count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_map_budget_is_a_sixth_of_the_limit() {
        assert_eq!(default_mapped_segments(65_530), 10_921);
        assert_eq!(default_mapped_segments(60), MIN_DEFAULT_MAPPED_SEGMENTS);
        assert!(max_map_count().is_some_and(|n| n > 0));
    }

    #[test]
    fn the_default_index_budget_is_a_quarter_of_the_limit() {
        assert_eq!(default_index_handles(20_000), 5_000);
        assert_eq!(default_index_handles(1_024), 256);
        assert_eq!(default_index_handles(100), MIN_DEFAULT_INDEX_HANDLES);
        assert_eq!(default_index_handles(1 << 20), 1 << 18);
    }

    #[test]
    fn the_target_is_the_hard_limit_capped_and_never_lower() {
        assert_eq!(target(1024, 524_288), 524_288);
        assert_eq!(target(1024, u64::MAX), MAX_OPEN_FILES);
        assert_eq!(target(1024, 1024), 1024);
        assert_eq!(target(4096, 2048), 4096, "never lowered");
        assert_eq!(target(2 * MAX_OPEN_FILES, u64::MAX), 2 * MAX_OPEN_FILES);
    }

    #[test]
    fn raising_reaches_the_target_and_is_idempotent() {
        let first = raise().unwrap();
        assert_eq!(first.soft, target(first.before, first.hard));
        let again = raise().unwrap();
        assert_eq!(again.before, first.soft);
        assert_eq!(again.soft, first.soft);
        assert!(open_descriptors().unwrap() > 0);
    }
}
