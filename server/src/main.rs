//! `brokerd`: starts the broker. See `docs/operations.md`.

// Production code must not unwrap data it did not create; tests may.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use server::config::{LogFormat, ServerConfig};
use server::shutdown::ShutdownSignal;
use server::tls::Tls;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// Large single allocations are lazy maps: a request announcing billions of elements
/// to `kafka-protocol`'s decoders must not abort the broker (`lazy_alloc.rs`).
#[global_allocator]
static ALLOCATOR: server::lazy_alloc::LazyLargeAllocator = server::lazy_alloc::LazyLargeAllocator;

/// The broker daemon. With no arguments: data in ./data, listening on 127.0.0.1:7171.
#[derive(Debug, Parser)]
#[command(name = "brokerd", version, about)]
struct Args {
    /// Address to listen on; port 0 lets the OS pick (the first line printed names it).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Address the HTTP gateway listens on (default 127.0.0.1:7172; port 0 lets the OS
    /// pick: the second line printed names it). `http.enabled = false` turns it off.
    #[arg(long, value_name = "ADDR")]
    http_listen: Option<SocketAddr>,
    /// Address the Kafka-protocol listener listens on (off unless given here or as
    /// `kafka.listen`; port 0 lets the OS pick: a line `kafka listening on ADDR`
    /// names it).
    #[arg(long, value_name = "ADDR")]
    kafka_listen: Option<SocketAddr>,
    /// Data directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// TOML configuration file; flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    /// Create user NAME (or reset its password) with every permission, reading its
    /// password from the first line of standard input, then exit. Run it once, with
    /// no broker running on the data directory, to bootstrap a secured broker.
    #[arg(long, value_name = "NAME")]
    init_admin: Option<String>,
}

fn main() -> std::process::ExitCode {
    match start(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // Our errors' messages already name their causes ("opening …: Not a
            // directory"), so the message alone, once; no cause chain, no backtrace.
            eprintln!("brokerd: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn start(args: Args) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => ServerConfig::from_file(path)?,
        None => ServerConfig::default(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(listen) = args.http_listen {
        config.http.listen = listen;
    }
    if let Some(listen) = args.kafka_listen {
        config.kafka.listen = Some(listen);
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(format) = args.log_format {
        config.log_format = format;
    }
    init_logging(config.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Some(name) = args.init_admin {
        let password = read_password()?;
        runtime.block_on(server::init_admin(config, &name, &password))?;
        let mut stdout = std::io::stdout().lock();
        writeln!(
            stdout,
            "administrator {name:?} is ready; start brokerd to serve"
        )?;
        return Ok(());
    }
    runtime.block_on(run(config))
}

/// The first line of standard input, without its line ending; never echoed or
/// logged.
fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        anyhow::bail!("--init-admin reads the password from the first line of standard input, and it is empty");
    }
    Ok(password)
}

async fn run(config: ServerConfig) -> anyhow::Result<()> {
    let (broker, listener) = server::bind(config).await?;
    let address = listener.local_addr()?;
    // Handlers first, then the announcement: a supervisor (or a test) that reads the
    // address and at once sends SIGTERM must get a graceful shutdown, not the default
    // action that kills the process.
    let stops = Stops::install(listener.tls().is_some())?;
    {
        // The first line on stdout, for scripts and tests that start brokerd on port 0;
        // the second, when the gateway is on, names its address. One write, so a
        // reader that takes only the first line and closes the pipe breaks nothing.
        let mut announcement = format!("listening on {address}\n");
        if let Some(http) = listener.http_addr() {
            announcement.push_str(&format!("http listening on {}\n", http?));
        }
        if let Some(kafka) = listener.kafka_addr() {
            announcement.push_str(&format!("kafka listening on {}\n", kafka?));
        }
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(announcement.as_bytes())?;
        stdout.flush()?;
    }
    tracing::info!(%address, data_dir = %broker.config.data_dir.display(), "brokerd started");
    let tls = listener.tls();
    let signal = Arc::new(ShutdownSignal::new());
    let serving = tokio::spawn(server::serve(broker, listener, signal.clone()));
    stops.wait(tls).await;
    tracing::info!("signal received; shutting down gracefully");
    signal.trigger();
    serving.await?;
    Ok(())
}

/// The signals brokerd answers: SIGINT and SIGTERM stop it; with TLS, SIGHUP reloads
/// the certificate and key. Without TLS, SIGHUP keeps its default action (it ends
/// brokerd), as before TLS existed: there is nothing to reload.
struct Stops {
    interrupt: Signal,
    terminate: Signal,
    hangup: Option<Signal>,
}

impl Stops {
    /// Installs the handlers (from now on these signals no longer kill the process).
    fn install(reloads: bool) -> anyhow::Result<Stops> {
        Ok(Stops {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: match reloads {
                true => Some(signal(SignalKind::hangup())?),
                false => None,
            },
        })
    }

    /// Waits for SIGINT or SIGTERM, reloading `tls` on every SIGHUP meanwhile.
    async fn wait(mut self, tls: Option<Arc<Tls>>) {
        loop {
            tokio::select! {
                _ = self.interrupt.recv() => return,
                _ = self.terminate.recv() => return,
                Some(()) = next_hangup(&mut self.hangup) => {
                    if let Some(tls) = &tls {
                        reload(tls.clone()).await;
                    }
                }
            }
        }
    }
}

/// The next SIGHUP; never, without a handler.
async fn next_hangup(hangup: &mut Option<Signal>) -> Option<()> {
    match hangup {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

/// Rebuilds the TLS configuration from its files (blocking reads, off the runtime's
/// threads); new handshakes use it, open connections keep theirs. On failure the
/// configuration in use stays.
async fn reload(tls: Arc<Tls>) {
    match tokio::task::spawn_blocking(move || tls.reload()).await {
        Ok(Ok(())) => tracing::info!("SIGHUP: TLS certificate and key reloaded"),
        Ok(Err(error)) => tracing::error!(
            %error,
            "SIGHUP: TLS reload failed; the certificate in use stays"
        ),
        Err(error) => tracing::error!(%error, "SIGHUP: the TLS reload task failed"),
    }
}

fn init_logging(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour for a person at a terminal; none in a file, a pipe or journald.
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
