//! Standard output for a tool that lives in pipes.
//!
//! Two rules. First, a closed standard output (`brokerctl topics | head -1`,
//! `| true`) is not an error: every write returns its `io::Error` instead of panicking
//! the way `println!` does ([`outln!`] and [`out!`]), and `main` turns a broken pipe
//! into a quiet exit with status 0 ([`is_broken_pipe`]).
//!
//! Second, a message that is committed or acked must have reached the reader, not
//! just the pipe: `consume --group G | head -2` must commit 2, although the first
//! writes of a fast writer all land in the pipe's buffer before `head` has read
//! anything, and `head` exits with the rest unread. [`Lines`] therefore, when asked to
//! confirm and standard output is a pipe, writes one line, then waits until the pipe
//! holds no unread bytes (the reader took the line with a `read`) or has no reader
//! left (the line was lost with it). Only one line is ever in the pipe, so a reader
//! that stops after N lines has read exactly N. The price is one reader wake-up per
//! line, which is why only committing and acking consumers ask for it; a terminal or
//! a file has no unread bytes to wait for, and a flush is enough there.

use std::io::{self, StdoutLock, Write};
use std::os::fd::AsFd;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::FileType;

/// `println!` that returns the write's `io::Result` instead of panicking on a closed
/// standard output.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)
    }};
}

/// `print!` that returns the write's `io::Result` instead of panicking on a closed
/// standard output.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout(), $($arg)*)
    }};
}

/// Checks of a pipe's unread bytes made by sleeping the thread briefly, before
/// falling back to the runtime's (millisecond) timer: a reader that keeps up (`head`,
/// `grep`, `wc`) takes a line within microseconds.
const CONFIRM_SPIN_CHECKS: u32 = 64;
/// The thread sleep between two of those first checks.
const CONFIRM_SPIN_SLEEP_US: u64 = 20;
/// The wait between two checks for a reader that is slow (a pager, a human).
const CONFIRM_SLOW_POLL_MS: u64 = 5;

/// True if `error`, or any error in its chain, is a write to a closed pipe.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// What a pipe's reader has done with what was written to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PipeState {
    /// Nothing unread: the reader took every byte.
    Drained,
    /// Bytes unread, and a reader that may still take them.
    Unread,
    /// Bytes unread, and no reader left to take them.
    ReaderGone,
}

/// Pure: the state from the pipe's unread byte count and whether it has no reader.
/// A reader that took everything and then left did get every line.
fn pipe_state(unread_bytes: u64, no_reader: bool) -> PipeState {
    match (unread_bytes, no_reader) {
        (0, _) => PipeState::Drained,
        (_, false) => PipeState::Unread,
        (_, true) => PipeState::ReaderGone,
    }
}

/// Standard output, line by line, for consumers that count what they printed.
#[derive(Debug)]
pub struct Lines {
    stdout: StdoutLock<'static>,
    /// Set when lines must be confirmed read and standard output is a pipe.
    confirm_pipe: bool,
}

impl Lines {
    /// Standard output; with `confirm`, [`write_message`](Self::write_message)
    /// returns only once a pipe's reader took what it wrote.
    pub fn new(confirm: bool) -> Lines {
        let stdout = io::stdout().lock();
        let is_pipe = rustix::fs::fstat(stdout.as_fd())
            .is_ok_and(|stat| FileType::from_raw_mode(stat.st_mode) == FileType::Fifo);
        Lines {
            stdout,
            confirm_pipe: confirm && is_pipe,
        }
    }

    /// Writes one message's output (usually a line, its newline included), flushes,
    /// and (if confirming) waits for the reader to take it. `Ok` means it reached the
    /// reader; output whose reader went away first is a `BrokenPipe` error, like a
    /// write to a closed pipe.
    pub async fn write_message(&mut self, output: &[u8]) -> io::Result<()> {
        self.stdout.write_all(output)?;
        self.stdout.flush()?;
        if self.confirm_pipe {
            self.wait_until_read().await?;
        }
        Ok(())
    }

    async fn wait_until_read(&self) -> io::Result<()> {
        let mut checks = 0u32;
        loop {
            match self.state()? {
                PipeState::Drained => return Ok(()),
                PipeState::ReaderGone => {
                    return Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "the reader of standard output exited before reading the line",
                    ))
                }
                PipeState::Unread => {}
            }
            checks = checks.saturating_add(1);
            if checks <= CONFIRM_SPIN_CHECKS {
                // Short enough not to hold up the runtime's other tasks (heartbeats).
                std::thread::sleep(Duration::from_micros(CONFIRM_SPIN_SLEEP_US));
            } else {
                tokio::time::sleep(Duration::from_millis(CONFIRM_SLOW_POLL_MS)).await;
            }
        }
    }

    fn state(&self) -> io::Result<PipeState> {
        let fd = self.stdout.as_fd();
        let unread = rustix::io::ioctl_fionread(fd)?;
        let mut fds = [PollFd::new(&fd, PollFlags::OUT)];
        let now = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        rustix::event::poll(&mut fds, Some(&now))?;
        // A pipe's write end polls as an error once every read end is closed.
        let no_reader = fds[0].revents().contains(PollFlags::ERR);
        Ok(pipe_state(unread, no_reader))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drained_pipe_was_read_even_if_the_reader_left() {
        assert_eq!(pipe_state(0, false), PipeState::Drained);
        assert_eq!(pipe_state(0, true), PipeState::Drained);
        assert_eq!(pipe_state(5, false), PipeState::Unread);
        assert_eq!(pipe_state(5, true), PipeState::ReaderGone);
    }

    #[test]
    fn broken_pipes_are_found_anywhere_in_the_chain() {
        let error = anyhow::Error::from(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(is_broken_pipe(&error));
        assert!(is_broken_pipe(&error.context("printing the table")));
        let other = anyhow::Error::from(io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(!is_broken_pipe(&other));
    }
}
