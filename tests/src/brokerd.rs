//! A `brokerd` child process: started on a loopback port the OS picks, with its data
//! in a new temporary directory, its address read from the first line it prints;
//! stopped gently (SIGTERM) or killed (SIGKILL), restarted over the same data, and
//! killed (its data removed) when dropped.
//!
//! Everything here returns [`LaunchError`] instead of panicking: `broker-bench` starts
//! its private broker with it at run time and tells the user what went wrong. The
//! panicking shorthands the tests use ([`Brokerd::start`] and friends) are in the
//! crate root, on top of these.

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use thiserror::Error;

/// The line brokerd prints first, followed by its address.
pub const LISTENING_PREFIX: &str = "listening on ";
/// The line brokerd prints second, followed by its HTTP gateway's address.
pub const HTTP_LISTENING_PREFIX: &str = "http listening on ";
/// The line brokerd prints after those, with `--kafka-listen`, followed by its Kafka
/// listener's address.
pub const KAFKA_LISTENING_PREFIX: &str = "kafka listening on ";
/// Where a new brokerd listens: loopback, on a port the OS picks.
pub const LISTEN_ANY_LOOPBACK_PORT: &str = "127.0.0.1:0";
/// How long brokerd may take to print its address, unless
/// [`Launch::startup_timeout`] says otherwise.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`Brokerd::try_restart`] retries while the old address is still taken.
pub const RESTART_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`Brokerd::terminate`] waits for brokerd to exit after SIGTERM (brokerd
/// itself gives in-flight work 10 s).
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between restart attempts.
const RESTART_RETRY_INTERVAL: Duration = Duration::from_millis(50);
/// How long a brokerd that closed its stdout without an address gets to exit by
/// itself, so that the error carries its own exit status rather than our SIGKILL.
const EXIT_GRACE: Duration = Duration::from_secs(1);
/// How often a bounded wait for an exit checks the child.
const EXIT_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// A problem finding, building, starting or stopping brokerd.
#[derive(Debug, Error)]
pub enum LaunchError {
    /// The path of the running executable is unknown.
    #[error("cannot tell where the running executable is: {source}")]
    CurrentExe {
        /// Why.
        source: io::Error,
    },
    /// The running executable is not in a cargo target directory, so its siblings
    /// cannot be found.
    #[error("{exe} is not in a cargo target directory (target/<profile>/); give the binary's path instead")]
    NoTargetDir {
        /// The running executable.
        exe: PathBuf,
    },
    /// Cargo could not build the binaries.
    #[error("`{command}` in {workspace} failed ({reason}); cargo's output above says why")]
    Build {
        /// The command line.
        command: String,
        /// Where it ran.
        workspace: PathBuf,
        /// Its exit status, or why it did not run.
        reason: String,
    },
    /// Cargo succeeded but the binary is not where it was expected.
    #[error(
        "`{command}` succeeded but there is no {path}; did the build use another CARGO_TARGET_DIR?"
    )]
    NotBuilt {
        /// The command line.
        command: String,
        /// Where the binary should be.
        path: PathBuf,
    },
    /// The temporary data directory could not be made.
    #[error("cannot create a data directory under {parent}: {source}")]
    DataDir {
        /// Where.
        parent: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file brokerd's log was to go to could not be opened.
    #[error("cannot open {path} for brokerd's log: {source}")]
    LogFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The process would not start.
    #[error("cannot start {path}: {source}")]
    Spawn {
        /// The binary.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// It exited (or closed its stdout and was killed) without announcing an address.
    #[error("{path} exited ({status}) without printing `listening on <addr>`; run it by hand to see its log")]
    Exited {
        /// The binary.
        path: PathBuf,
        /// How it ended.
        status: ExitStatus,
    },
    /// Its first line was not the address.
    #[error("{path} printed {line:?} instead of `listening on <addr>`; it was killed")]
    UnexpectedLine {
        /// The binary.
        path: PathBuf,
        /// What it printed.
        line: String,
    },
    /// It printed nothing in time.
    #[error("{path} printed no `listening on <addr>` within {timeout:?}; it was killed")]
    StartupTimeout {
        /// The binary.
        path: PathBuf,
        /// How long it had.
        timeout: Duration,
    },
    /// It did not come back on its old address.
    #[error("brokerd did not restart on {addr} within {timeout:?}")]
    Restart {
        /// The address it had, and was to listen on again.
        addr: String,
        /// How long restarting was retried.
        timeout: Duration,
        /// The last attempt's failure.
        source: Box<LaunchError>,
    },
    /// SIGTERM could not be sent; the process was killed instead.
    #[error("cannot send SIGTERM to brokerd (pid {pid}): {source}; it was killed")]
    Signal {
        /// The process.
        pid: u32,
        /// Why.
        source: io::Error,
    },
    /// It did not exit in time after SIGTERM; it was killed.
    #[error("brokerd (pid {pid}) did not exit within {timeout:?} of SIGTERM; it was killed")]
    StopTimeout {
        /// The process.
        pid: u32,
        /// How long it had.
        timeout: Duration,
    },
    /// Waiting for the process failed.
    #[error("cannot wait for brokerd (pid {pid}) to exit: {source}")]
    Wait {
        /// The process.
        pid: u32,
        /// Why.
        source: io::Error,
    },
}

/// How to start brokerd: which binary, with which extra arguments, where its data
/// goes, and how long it may take to announce its address.
///
/// ```no_run
/// use integration_tests::Launch;
///
/// # fn main() -> Result<(), integration_tests::LaunchError> {
/// let broker = Launch::new("target/release/brokerd")
///     .args(["--config", "brokerd.toml"])
///     .data_prefix("my-run-")
///     .start()?;
/// println!("brokerd at {}, data in {}", broker.addr(), broker.data_dir().display());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Launch {
    binary: PathBuf,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    data_parent: Option<PathBuf>,
    data_prefix: String,
    startup_timeout: Duration,
    log_file: Option<PathBuf>,
    /// `brokerd --init-admin NAME` with this password, before the first start.
    init_admin: Option<(String, String)>,
    /// Whether brokerd runs its HTTP gateway (on a port the OS picks).
    http: bool,
    /// Whether brokerd runs its Kafka listener (on a port the OS picks).
    kafka: bool,
}

impl Launch {
    /// Starts `binary` with no extra arguments, its data under the system temporary
    /// directory.
    pub fn new(binary: impl Into<PathBuf>) -> Launch {
        Launch {
            binary: binary.into(),
            args: Vec::new(),
            envs: Vec::new(),
            data_parent: None,
            data_prefix: "brokerd-".to_string(),
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
            log_file: None,
            init_admin: None,
            http: true,
            kafka: false,
        }
    }

    /// Also starts the Kafka-protocol listener (`--kafka-listen`, on a port the OS
    /// picks) and waits for its `kafka listening on` line: [`Brokerd::kafka_addr`].
    pub fn with_kafka(mut self) -> Launch {
        self.kafka = true;
        self
    }

    /// Neither passes `--http-listen` nor waits for the `http listening on` line: for
    /// a configuration with `http.enabled = false`.
    pub fn without_http(mut self) -> Launch {
        self.http = false;
        self
    }

    /// Arguments after `--listen ADDR --data-dir DIR`.
    pub fn args<I, S>(mut self, args: I) -> Launch
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// An environment variable for brokerd (say, to preload libfaketime).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Launch {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Makes the data directory under `parent` instead of the system temporary
    /// directory (to measure a particular disk, say).
    pub fn data_parent(mut self, parent: impl Into<PathBuf>) -> Launch {
        self.data_parent = Some(parent.into());
        self
    }

    /// How the data directory's name starts (`brokerd-` unless set).
    pub fn data_prefix(mut self, prefix: impl Into<String>) -> Launch {
        self.data_prefix = prefix.into();
        self
    }

    /// Appends brokerd's log (its stderr) to `path`, across restarts, instead of
    /// discarding it: for tests that check what it logs.
    pub fn log_to(mut self, path: impl Into<PathBuf>) -> Launch {
        self.log_file = Some(path.into());
        self
    }

    /// Before the first start, runs `brokerd --init-admin NAME` (with the same
    /// arguments and data directory) giving it `password`: a secured broker then has
    /// an administrator to log in as.
    pub fn init_admin(mut self, name: impl Into<String>, password: impl Into<String>) -> Launch {
        self.init_admin = Some((name.into(), password.into()));
        self
    }

    /// How long brokerd may take to print its address.
    pub fn startup_timeout(mut self, timeout: Duration) -> Launch {
        self.startup_timeout = timeout;
        self
    }

    /// Makes the data directory and starts brokerd on [`LISTEN_ANY_LOOPBACK_PORT`],
    /// its HTTP gateway on another such port (tests run in parallel: the default
    /// port would be taken).
    pub fn start(self) -> Result<Brokerd, LaunchError> {
        let parent = self.data_parent.clone().unwrap_or_else(std::env::temp_dir);
        let data_dir = tempfile::Builder::new()
            .prefix(&self.data_prefix)
            .tempdir_in(&parent)
            .map_err(|source| LaunchError::DataDir { parent, source })?;
        if let Some((name, password)) = &self.init_admin {
            init_admin(&self, data_dir.path(), name, password)?;
        }
        let listen = Addresses {
            native: LISTEN_ANY_LOOPBACK_PORT.to_string(),
            http: self.http.then(|| LISTEN_ANY_LOOPBACK_PORT.to_string()),
            kafka: self.kafka.then(|| LISTEN_ANY_LOOPBACK_PORT.to_string()),
        };
        let (child, addrs) = spawn(&self, data_dir.path(), &listen)?;
        Ok(Brokerd {
            launch: self,
            child: Some(child),
            addrs,
            data_dir,
        })
    }
}

/// A brokerd started by [`Launch::start`], with its own data directory. Killed, and
/// its data directory removed, when dropped.
#[derive(Debug)]
pub struct Brokerd {
    launch: Launch,
    /// `None` once stopped or killed.
    child: Option<Child>,
    addrs: Addresses,
    data_dir: tempfile::TempDir,
}

/// Where a brokerd listens: the native protocol, and the HTTP gateway and the Kafka
/// listener if they run.
#[derive(Debug, Clone)]
struct Addresses {
    native: String,
    http: Option<String>,
    kafka: Option<String>,
}

impl Brokerd {
    /// The `host:port` it listens on (the same across restarts).
    pub fn addr(&self) -> &str {
        &self.addrs.native
    }

    /// The `host:port` its HTTP gateway listens on (the same across restarts).
    ///
    /// # Panics
    ///
    /// If it was started [`Launch::without_http`].
    pub fn http_addr(&self) -> &str {
        match &self.addrs.http {
            Some(addr) => addr,
            None => panic!("this brokerd was started without its HTTP gateway"),
        }
    }

    /// The `host:port` its Kafka listener listens on (the same across restarts).
    ///
    /// # Panics
    ///
    /// If it was started without [`Launch::with_kafka`].
    pub fn kafka_addr(&self) -> &str {
        match &self.addrs.kafka {
            Some(addr) => addr,
            None => {
                panic!("this brokerd was started without its Kafka listener (Launch::with_kafka)")
            }
        }
    }

    /// Its process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Its data directory.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// SIGKILL, and wait for the process to go: no shutdown, no flushing; what it
    /// wrote survives in the page cache. Does nothing if it is not running.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_and_reap(&mut child);
        }
    }

    /// SIGTERM, and wait up to [`STOP_TIMEOUT`] for brokerd to finish in-flight work
    /// and close its logs. Returns how it exited, or `None` if it was not running.
    pub fn terminate(&mut self) -> Result<Option<ExitStatus>, LaunchError> {
        let Some(mut child) = self.child.take() else {
            return Ok(None);
        };
        let pid = child.id();
        if let Err(source) = send_sigterm(pid) {
            kill_and_reap(&mut child);
            return Err(LaunchError::Signal { pid, source });
        }
        match wait_for_exit(&mut child, STOP_TIMEOUT) {
            Ok(Some(status)) => Ok(Some(status)),
            Ok(None) => {
                kill_and_reap(&mut child);
                Err(LaunchError::StopTimeout {
                    pid,
                    timeout: STOP_TIMEOUT,
                })
            }
            Err(source) => {
                kill_and_reap(&mut child);
                Err(LaunchError::Wait { pid, source })
            }
        }
    }

    /// SIGHUP: brokerd reloads its TLS certificate and key. Fails if it is not
    /// running.
    pub fn send_hangup(&self) -> io::Result<()> {
        match &self.child {
            Some(child) => send_signal(child.id(), libc::SIGHUP),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "brokerd is not running",
            )),
        }
    }

    /// Kills brokerd if it runs, then starts it again with the same arguments, data
    /// directory and address; retries for up to [`RESTART_TIMEOUT`] while the old
    /// port is still taken.
    pub fn try_restart(&mut self) -> Result<(), LaunchError> {
        self.kill9();
        let deadline = Instant::now() + RESTART_TIMEOUT;
        loop {
            match spawn(&self.launch, self.data_dir.path(), &self.addrs) {
                Ok((child, addrs)) => {
                    self.child = Some(child);
                    self.addrs = addrs;
                    return Ok(());
                }
                // Most likely the address is not free yet.
                Err(LaunchError::Exited { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(RESTART_RETRY_INTERVAL);
                }
                Err(last) => {
                    return Err(LaunchError::Restart {
                        addr: self.addrs.native.clone(),
                        timeout: RESTART_TIMEOUT,
                        source: Box::new(last),
                    })
                }
            }
        }
    }
}

impl Drop for Brokerd {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs `brokerd --init-admin NAME` on `data_dir`, the password on its stdin.
fn init_admin(
    launch: &Launch,
    data_dir: &Path,
    name: &str,
    password: &str,
) -> Result<(), LaunchError> {
    let path = &launch.binary;
    let mut child = Command::new(path)
        .args(["--listen", LISTEN_ANY_LOOPBACK_PORT, "--data-dir"])
        .arg(data_dir)
        .args(&launch.args)
        .args(["--init-admin", name])
        .envs(launch.envs.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| LaunchError::Spawn {
            path: path.clone(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A failed write shows as the exit status below.
        let _ = writeln!(stdin, "{password}");
    }
    let pid = child.id();
    let status = child
        .wait()
        .map_err(|source| LaunchError::Wait { pid, source })?;
    if !status.success() {
        return Err(exited(path, &mut child));
    }
    Ok(())
}

/// Starts brokerd on `listen` over `data_dir` and reads its addresses from the first
/// lines of its stdout, within the launch's startup timeout.
fn spawn(
    launch: &Launch,
    data_dir: &Path,
    listen: &Addresses,
) -> Result<(Child, Addresses), LaunchError> {
    let path = &launch.binary;
    let stderr = match &launch.log_file {
        Some(log) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map(Stdio::from)
            .map_err(|source| LaunchError::LogFile {
                path: log.clone(),
                source,
            })?,
        None => Stdio::null(),
    };
    let mut command = Command::new(path);
    command.args(["--listen", &listen.native]);
    if let Some(http) = &listen.http {
        command.args(["--http-listen", http]);
    }
    if let Some(kafka) = &listen.kafka {
        command.args(["--kafka-listen", kafka]);
    }
    let mut child = command
        .arg("--data-dir")
        .arg(data_dir)
        .args(&launch.args)
        .envs(launch.envs.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|source| LaunchError::Spawn {
            path: path.clone(),
            source,
        })?;
    let Some(stdout) = child.stdout.take() else {
        // Not reached: stdout was piped above. Reported like a silent exit.
        return Err(exited(path, &mut child));
    };
    // `listening on <addr>`, then (with the gateway) `http listening on <addr>`,
    // then (with the Kafka listener) `kafka listening on <addr>`.
    let mut prefixes = vec![LISTENING_PREFIX];
    if listen.http.is_some() {
        prefixes.push(HTTP_LISTENING_PREFIX);
    }
    if listen.kafka.is_some() {
        prefixes.push(KAFKA_LISTENING_PREFIX);
    }
    let lines = first_lines(stdout, prefixes.len());
    let deadline = Instant::now() + launch.startup_timeout;
    let mut announced = Vec::with_capacity(prefixes.len());
    for prefix in &prefixes {
        let wait = deadline.saturating_duration_since(Instant::now());
        let line = match lines.recv_timeout(wait) {
            Ok(line) => line,
            Err(RecvTimeoutError::Disconnected) => return Err(exited(path, &mut child)),
            Err(RecvTimeoutError::Timeout) => {
                kill_and_reap(&mut child);
                return Err(LaunchError::StartupTimeout {
                    path: path.clone(),
                    timeout: launch.startup_timeout,
                });
            }
        };
        match line.trim().strip_prefix(prefix) {
            Some(addr) if !addr.is_empty() => announced.push(addr.to_string()),
            _ => {
                kill_and_reap(&mut child);
                return Err(LaunchError::UnexpectedLine {
                    path: path.clone(),
                    line,
                });
            }
        }
    }
    let mut announced = announced.into_iter();
    let native = announced.next().unwrap_or_default();
    let http = listen.http.as_ref().and_then(|_| announced.next());
    let kafka = listen.kafka.as_ref().and_then(|_| announced.next());
    Ok((
        child,
        Addresses {
            native,
            http,
            kafka,
        },
    ))
}

/// Sends the first `count` lines of `stdout` (fewer if it ends first), then keeps
/// reading so that brokerd never blocks on, or fails writing to, a full or closed
/// pipe.
fn first_lines(stdout: ChildStdout, count: usize) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        for _ in 0..count {
            let mut line = String::new();
            if !matches!(reader.read_line(&mut line), Ok(read) if read > 0) {
                break;
            }
            // The receiver may have timed out and gone; the line is then moot.
            let _ = tx.send(line);
        }
        drop(tx);
        // Ends when brokerd exits and the pipe closes.
        let _ = io::copy(&mut reader, &mut io::sink());
    });
    rx
}

/// The error for a brokerd that closed its stdout without an address: give it
/// [`EXIT_GRACE`] to exit by itself, so its own status is reported.
fn exited(path: &Path, child: &mut Child) -> LaunchError {
    let pid = child.id();
    let status = match wait_for_exit(child, EXIT_GRACE) {
        Ok(Some(status)) => Ok(status),
        Ok(None) => {
            let _ = child.kill();
            child.wait()
        }
        Err(e) => Err(e),
    };
    match status {
        Ok(status) => LaunchError::Exited {
            path: path.to_path_buf(),
            status,
        },
        Err(source) => {
            kill_and_reap(child);
            LaunchError::Wait { pid, source }
        }
    }
}

/// Waits up to `timeout` for `child` to exit; `None` if it still runs.
fn wait_for_exit(child: &mut Child, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(EXIT_POLL_INTERVAL);
    }
}

/// SIGKILL and reap. Errors mean it is gone already, which is what was wanted.
fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn send_sigterm(pid: u32) -> io::Result<()> {
    send_signal(pid, libc::SIGTERM)
}

fn send_signal(pid: u32, signal: libc::c_int) -> io::Result<()> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: kill(2) touches no memory of ours. The pid is our own child, not yet
    // reaped (it is reaped only after this), so it cannot name another process.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::ExitStatusExt;
    use std::sync::OnceLock;

    use super::*;

    /// Stand-ins for brokerd, written once before any test spawns a process: a file
    /// being written while another thread forks cannot be executed ("text file busy").
    fn fake(name: &str) -> PathBuf {
        static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
        let dir = DIR.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            for (name, body) in [
                (
                    "announces",
                    "echo 'listening on 127.0.0.1:7'; echo 'http listening on 127.0.0.1:8'; exec sleep 30",
                ),
                ("exits", "exit 3"),
                ("chatters", "echo hello; exec sleep 30"),
                ("silent", "exec sleep 30"),
            ] {
                let path = dir.path().join(name);
                std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            dir
        });
        dir.path().join(name)
    }

    #[test]
    fn the_first_line_gives_the_address_and_drop_removes_the_data() {
        let mut broker = Launch::new(fake("announces"))
            .data_prefix("launch-test-")
            .start()
            .unwrap();
        assert_eq!(broker.addr(), "127.0.0.1:7");
        assert_eq!(broker.http_addr(), "127.0.0.1:8");
        let data_dir = broker.data_dir().to_path_buf();
        assert!(data_dir.is_dir());
        let name = data_dir.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("launch-test-"), "{name}");

        broker.try_restart().unwrap();
        assert_eq!(broker.addr(), "127.0.0.1:7");
        assert_eq!(broker.http_addr(), "127.0.0.1:8");
        assert_eq!(broker.data_dir(), data_dir, "restarted over the same data");

        let status = broker.terminate().unwrap().expect("it was running");
        assert_eq!(status.signal(), Some(libc::SIGTERM));
        assert!(broker.terminate().unwrap().is_none(), "stopped already");
        drop(broker);
        assert!(!data_dir.exists(), "the data directory went with it");
    }

    #[test]
    fn failures_to_start_say_what_happened() {
        let missing = Path::new("/nonexistent/brokerd");
        let err = Launch::new(missing).start().unwrap_err();
        assert!(
            matches!(&err, LaunchError::Spawn { path, .. } if path == missing),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("cannot start /nonexistent/brokerd: "),
            "{err}"
        );

        let err = Launch::new(fake("exits")).start().unwrap_err();
        assert!(
            matches!(&err, LaunchError::Exited { status, .. } if status.code() == Some(3)),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("without printing `listening on <addr>`"),
            "{err}"
        );

        let err = Launch::new(fake("chatters")).start().unwrap_err();
        assert!(
            matches!(&err, LaunchError::UnexpectedLine { line, .. } if line == "hello\n"),
            "{err}"
        );

        let timeout = Duration::from_millis(200);
        let started = Instant::now();
        let err = Launch::new(fake("silent"))
            .startup_timeout(timeout)
            .start()
            .unwrap_err();
        assert!(
            matches!(&err, LaunchError::StartupTimeout { timeout: t, .. } if *t == timeout),
            "{err}"
        );
        assert!(
            started.elapsed() < DEFAULT_STARTUP_TIMEOUT,
            "gave up at the timeout"
        );

        let parent = fake("exits");
        let err = Launch::new(fake("announces"))
            .data_parent(&parent)
            .start()
            .unwrap_err();
        assert!(
            matches!(&err, LaunchError::DataDir { parent: p, .. } if *p == parent),
            "{err}"
        );
    }
}
