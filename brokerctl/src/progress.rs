//! Progress bars on standard error for brokerctl's long work: producing a large file,
//! consuming many messages into a file, replaying dead letters.
//!
//! A bar is drawn only for a person watching: standard error must be a terminal, and
//! the stream the work reads or writes must not be (a bar between messages printed
//! on the same terminal, or while someone types the lines to produce, would be in the
//! way). Whether to draw is [`decide`], a pure function of those facts; the bars
//! themselves are indicatif's, which limits how often it redraws, so counting each
//! message costs an atomic add, not a write.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a bar is redrawn at most, per second.
const REFRESH_PER_SECOND: u8 = 10;

/// What long work a bar shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// `produce`: lines read from standard input.
    Produce,
    /// `consume`: messages written to standard output.
    Consume,
    /// `dlq replay`: dead letters sent back; its output is one summary line at the end.
    Replay,
}

/// Where standard input, output and error go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terminals {
    /// Standard input is a terminal.
    pub stdin: bool,
    /// Standard output is a terminal.
    pub stdout: bool,
    /// Standard error is a terminal.
    pub stderr: bool,
}

impl Terminals {
    /// This process's.
    pub fn now() -> Terminals {
        Terminals {
            stdin: std::io::stdin().is_terminal(),
            stdout: std::io::stdout().is_terminal(),
            stderr: std::io::stderr().is_terminal(),
        }
    }
}

/// Whether `work` gets a bar: only on a terminal's standard error, and only when the
/// stream the work runs through is not that terminal too.
pub fn decide(work: Work, terminals: Terminals) -> bool {
    terminals.stderr
        && match work {
            Work::Produce => !terminals.stdin,
            Work::Consume => !terminals.stdout,
            Work::Replay => true,
        }
}

/// How a bar counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Messages.
    Messages,
    /// Bytes of input.
    Bytes,
}

/// A progress bar, or nothing when none is drawn.
#[derive(Debug)]
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// The bar for `work`, drawn only if [`decide`] says so for this process: to
    /// `total` when it is known, else a counter.
    pub fn start(work: Work, total: Option<u64>, unit: Unit) -> Progress {
        if !decide(work, Terminals::now()) {
            return Progress(None);
        }
        let counted = match unit {
            Unit::Messages => "{human_pos}/{human_len} messages ({per_sec}, {eta} left)",
            Unit::Bytes => "{bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
        };
        let (bar, template) = match total {
            Some(total) => (ProgressBar::new(total), format!("{{wide_bar}} {counted}")),
            None => (
                ProgressBar::new_spinner(),
                match unit {
                    Unit::Messages => "{spinner} {human_pos} messages ({per_sec})".to_string(),
                    Unit::Bytes => "{spinner} {bytes} ({bytes_per_sec})".to_string(),
                },
            ),
        };
        // The templates are constants of this module: a bad one is a bug here, and
        // then the default style is still a working bar.
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style);
        }
        bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(REFRESH_PER_SECOND));
        Progress(Some(bar))
    }

    /// Counts `n` more done.
    pub fn advance(&self, n: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(n);
        }
    }
}

impl Drop for Progress {
    /// Removes the bar, so the summary that follows starts on a clean line.
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// The size of standard input when it is a regular file (`produce < big.txt`), for
/// a bar to the end; `None` for a pipe or a terminal.
pub fn stdin_file_bytes() -> Option<u64> {
    let stat = rustix::fs::fstat(std::io::stdin()).ok()?;
    let is_file =
        rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::RegularFile;
    is_file.then(|| u64::try_from(stat.st_size).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terminals(stdin: bool, stdout: bool, stderr: bool) -> Terminals {
        Terminals {
            stdin,
            stdout,
            stderr,
        }
    }

    #[test]
    fn no_bar_without_a_terminal_on_stderr() {
        for work in [Work::Produce, Work::Consume, Work::Replay] {
            for (stdin, stdout) in [(false, false), (true, false), (false, true), (true, true)] {
                assert!(!decide(work, terminals(stdin, stdout, false)), "{work:?}");
            }
        }
    }

    #[test]
    fn no_bar_over_the_stream_the_work_uses() {
        // Someone typing the lines to produce, or reading consumed messages on the
        // terminal, gets no bar in the way.
        assert!(!decide(Work::Produce, terminals(true, false, true)));
        assert!(!decide(Work::Consume, terminals(false, true, true)));
        // The file being produced, or the file consumed into, gets one.
        assert!(decide(Work::Produce, terminals(false, true, true)));
        assert!(decide(Work::Consume, terminals(true, false, true)));
        // A replay prints only its summary, at the end.
        assert!(decide(Work::Replay, terminals(true, true, true)));
    }

    #[test]
    fn a_progress_that_is_not_shown_counts_nothing_and_draws_nothing() {
        let progress = Progress(None);
        progress.advance(5);
        assert!(progress.0.is_none());
    }
}
