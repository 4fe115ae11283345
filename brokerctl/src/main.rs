//! `brokerctl`: administer and use a brokerd from the shell.
//!
//! Every command connects to `--addr` (or `$BROKER_ADDR`, or brokerd's default
//! address), over TLS when `--tls-ca` (or `$BROKER_TLS_CA`) is given, prints a human-readable table by default and JSON with `--json`, and
//! exits non-zero with a message on stderr when the broker is unreachable or refuses
//! the request. See `docs/client.md` for every command with examples.
//!
//! Owns the command line: argument parsing (clap), one module per command family,
//! the table and JSON renderings, and exit statuses. It is its own package so that
//! its dependencies (clap, anyhow, serde_json) stay out of the `client` library.
//!
//! Must never: talk to the broker except through `client::Client` (no sockets or
//! frames of its own, so the tool exercises exactly what library users get); put
//! anything but a command's output on stdout (errors and progress go to stderr, so
//! the output pipes); panic or fail when the reader of its output goes away (it
//! exits 0); exit 0 when a request failed or a produced line was not acknowledged;
//! or commit (or ack), with `consume --group`, a message its reader did not take.
// Production code must not unwrap data it did not create; tests may.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// `println!` panics on a closed stdout (`brokerctl topics | true`); write with
// `outln!`/`out!` (module `output`), which return the error.
#![deny(clippy::print_stdout)]

#[macro_use]
mod output;

mod acls;
mod completions;
mod consume;
mod dlq;
mod follow;
mod format;
mod groups;
mod input;
mod login;
mod produce;
mod progress;
mod routes;
mod services;
mod stats;
mod table;
mod topics;
mod traces;
mod users;
mod when;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use client::{Client, ClientConfig, TlsConfig};

/// Connection attempts before giving up: a CLI should fail fast when the broker is
/// down, but ride out a broker that is just starting.
const CONNECT_ATTEMPTS: u32 = 3;
/// Delay before the second connection attempt; doubles after that.
const CONNECT_BACKOFF_INITIAL_MS: u64 = 100;
/// Largest delay between connection attempts.
const CONNECT_BACKOFF_MAX_MS: u64 = 1_000;

/// Command-line client for brokerd.
#[derive(Debug, Parser)]
#[command(name = "brokerctl", version, about, propagate_version = true)]
pub struct Cli {
    /// Broker address (host:port).
    #[arg(long, env = "BROKER_ADDR", default_value = client::DEFAULT_ADDR, global = true)]
    pub addr: String,
    /// Print JSON instead of tables (consume: one JSON object per message and line).
    #[arg(long, global = true)]
    pub json: bool,
    /// Connect with TLS, trusting the CA certificates (PEM) in FILE for the broker's
    /// certificate.
    #[arg(long, env = "BROKER_TLS_CA", global = true, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// This client's TLS certificate (PEM), for a broker that asks for one.
    #[arg(long, env = "BROKER_TLS_CERT", global = true, value_name = "FILE", requires_all = ["tls_ca", "tls_key"])]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "BROKER_TLS_KEY", global = true, value_name = "FILE", requires_all = ["tls_ca", "tls_cert"])]
    pub tls_key: Option<PathBuf>,
    /// The name the broker's certificate must be valid for (default: the host of --addr).
    #[arg(
        long,
        env = "BROKER_TLS_SERVER_NAME",
        global = true,
        value_name = "NAME",
        requires = "tls_ca"
    )]
    pub tls_server_name: Option<String>,
    /// Authenticate as USER; the password comes from BROKER_PASSWORD or
    /// --password-file (never from the command line, where `ps` would show it).
    #[arg(long, env = "BROKER_USER", global = true, value_name = "USER")]
    pub user: Option<String>,
    /// Read the password of --user from the first line of PATH.
    #[arg(long, global = true, value_name = "PATH")]
    pub password_file: Option<PathBuf>,
    /// SASL mechanism: SCRAM-SHA-256 or PLAIN (PLAIN only over TLS).
    #[arg(
        long,
        env = "BROKER_SASL_MECHANISM",
        global = true,
        default_value = "SCRAM-SHA-256",
        value_name = "MECHANISM"
    )]
    pub sasl_mechanism: client::Mechanism,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List topics, or create, describe, alter, grow or delete one.
    Topics(topics::TopicsArgs),
    /// Send each line of standard input as one message.
    Produce(produce::ProduceArgs),
    /// Print messages of a topic, optionally as a consumer group member.
    Consume(consume::ConsumeArgs),
    /// List consumer groups, or describe one.
    Groups(groups::GroupsArgs),
    /// List, peek at, replay or purge a topic's dead letters.
    Dlq(dlq::DlqArgs),
    /// Service registry: list, describe, watch, or register an instance.
    Services(services::ServicesArgs),
    /// Routing rules: list, add, delete.
    Routes(routes::RoutesArgs),
    /// Publish each line of standard input with a routing key.
    Publish(routes::PublishArgs),
    /// Show what the broker did to a traced message, as a tree of spans.
    Trace(traces::TraceArgs),
    /// List recent traces.
    Traces(traces::TracesArgs),
    /// Server uptime, connections and per-topic rates.
    Stats,
    /// Who the broker takes this connection for, and how it authenticated.
    Whoami,
    /// Users: list, add, passwd (new password on standard input), delete.
    Users(users::UsersArgs),
    /// Access-control lists: list, add, delete.
    Acls(acls::AclsArgs),
    /// Print a shell completion script (bash, zsh, fish, ...); contacts no broker.
    /// For bash: `brokerctl completions bash > /etc/bash_completion.d/brokerctl`.
    Completions(completions::CompletionsArgs),
}

/// `brokerctl services register NAME --addr ADDR` names the *instance's* address
/// with `--addr`, while everywhere else `--addr` is the broker's. After the words
/// `services register`, `--addr` is therefore read as the instance address; the
/// broker address then goes before `services` (or in `BROKER_ADDR`).
pub fn rewrite_register_addr(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let position = args
        .windows(2)
        .position(|w| w[0] == "services" && w[1] == "register");
    let Some(start) = position else { return args };
    args.into_iter()
        .enumerate()
        .map(|(i, arg)| {
            if i > start + 1 && arg == "--addr" {
                "--instance-addr".into()
            } else if i > start + 1 && arg.to_str().is_some_and(|a| a.starts_with("--addr=")) {
                arg.to_str()
                    .map(|a| a.replacen("--addr=", "--instance-addr=", 1).into())
                    .unwrap_or(arg)
            } else {
                arg
            }
        })
        .collect()
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(rewrite_register_addr(std::env::args_os().collect()));
    if let Command::Completions(args) = &cli.command {
        return completions::print(args);
    }
    if let Err(message) = check(&cli) {
        eprintln!("brokerctl: error: {message}");
        // clap's status for a usage error.
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("brokerctl: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        // The reader of our output is gone (`| head`): nobody is left to tell.
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("brokerctl: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Usage errors clap cannot express, found before connecting.
fn check(cli: &Cli) -> Result<(), String> {
    match &cli.command {
        Command::Services(args) => services::check(args),
        Command::Consume(args) => consume::check(args, cli.json),
        Command::Acls(args) => acls::check(args),
        _ => Ok(()),
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut config = ClientConfig::default()
        .client_name(format!("brokerctl/{}", env!("CARGO_PKG_VERSION")))
        .reconnect_max_attempts(CONNECT_ATTEMPTS)
        .reconnect_backoff(
            Duration::from_millis(CONNECT_BACKOFF_INITIAL_MS),
            Duration::from_millis(CONNECT_BACKOFF_MAX_MS),
        );
    if let Some(tls) = tls_config(&cli) {
        config = config.tls(tls);
    }
    let login = login::Login {
        user: cli.user.clone(),
        password_file: cli.password_file.clone(),
        mechanism: cli.sasl_mechanism,
    };
    if let Some(credentials) = login.credentials(std::env::var(client::PASSWORD_ENV).ok())? {
        config = config.credentials(credentials);
    }
    let client = Client::connect_with(cli.addr.clone(), config).await?;
    let json = cli.json;
    match cli.command {
        Command::Topics(args) => topics::run(&client, args, json).await,
        Command::Produce(args) => produce::run(&client, args, json).await,
        Command::Consume(args) => consume::run(&client, args, json).await,
        Command::Groups(args) => groups::run(&client, args, json).await,
        Command::Dlq(args) => dlq::run(&client, args, json).await,
        Command::Services(args) => services::run(&client, args, json).await,
        Command::Routes(args) => routes::run(&client, args, json).await,
        Command::Publish(args) => routes::publish(&client, args, json).await,
        Command::Trace(args) => traces::trace(&client, args, json).await,
        Command::Traces(args) => traces::traces(&client, args, json).await,
        Command::Stats => stats::run(&client, json).await,
        Command::Whoami => users::whoami(&client, json).await,
        Command::Users(args) => users::run(&client, args, json).await,
        Command::Acls(args) => acls::run(&client, args, json).await,
        // Answered in `main`, before connecting.
        Command::Completions(args) => Ok(completions::print(&args)),
    }
}

/// The TLS settings of the `--tls-*` flags; `None` without `--tls-ca` (plaintext).
fn tls_config(cli: &Cli) -> Option<TlsConfig> {
    let mut tls = TlsConfig::new(cli.tls_ca.clone()?);
    tls.cert_file = cli.tls_cert.clone();
    tls.key_file = cli.tls_key.clone();
    tls.server_name = cli.tls_server_name.clone();
    Some(tls)
}

/// Parses `KEY=VALUE` (the value may contain `=`).
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// Prints a JSON value on one line.
pub fn print_json(value: &serde_json::Value) -> std::io::Result<()> {
    outln!("{value}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn tls_flags_are_global_and_a_client_certificate_needs_its_key_and_a_ca() {
        let cli = Cli::try_parse_from([
            "brokerctl",
            "topics",
            "--tls-ca",
            "ca.pem",
            "--tls-cert",
            "me.pem",
            "--tls-key",
            "me-key.pem",
            "--tls-server-name",
            "broker.internal",
        ])
        .unwrap();
        assert_eq!(
            tls_config(&cli),
            Some(
                TlsConfig::new("ca.pem")
                    .client_certificate("me.pem", "me-key.pem")
                    .server_name("broker.internal")
            )
        );
        let plain = Cli::try_parse_from(["brokerctl", "topics"]).unwrap();
        assert_eq!(tls_config(&plain), None);
        for incomplete in [
            &[
                "brokerctl",
                "--tls-ca",
                "ca.pem",
                "--tls-cert",
                "me.pem",
                "topics",
            ][..],
            &[
                "brokerctl",
                "--tls-key",
                "k.pem",
                "--tls-cert",
                "me.pem",
                "topics",
            ],
            &["brokerctl", "--tls-server-name", "b", "topics"],
        ] {
            assert!(Cli::try_parse_from(incomplete).is_err(), "{incomplete:?}");
        }
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli = Cli::try_parse_from(["brokerctl", "topics", "--json", "--addr", "h:1"]).unwrap();
        assert!(cli.json);
        assert_eq!(cli.addr, "h:1");
        let cli = Cli::try_parse_from(["brokerctl", "--json", "stats"]).unwrap();
        assert!(cli.json && matches!(cli.command, Command::Stats));
    }

    #[test]
    fn login_flags_are_global_and_the_mechanism_is_checked() {
        let cli = Cli::try_parse_from([
            "brokerctl",
            "users",
            "--user",
            "admin",
            "--password-file",
            "/run/pw",
            "--sasl-mechanism",
            "plain",
        ])
        .unwrap();
        assert_eq!(cli.user.as_deref(), Some("admin"));
        assert_eq!(
            cli.password_file.as_deref(),
            Some(std::path::Path::new("/run/pw"))
        );
        assert_eq!(cli.sasl_mechanism, client::Mechanism::Plain);
        let error = Cli::try_parse_from(["brokerctl", "--sasl-mechanism", "GSSAPI", "whoami"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown SASL mechanism"), "{error}");
        // No flag takes the password itself.
        assert!(Cli::try_parse_from(["brokerctl", "--password", "pw", "whoami"]).is_err());
    }

    #[test]
    fn register_takes_addr_as_the_instance_address() {
        let args = [
            "brokerctl",
            "--addr",
            "broker:1",
            "services",
            "register",
            "search",
            "--addr",
            "10.0.0.1:80",
        ];
        let args = rewrite_register_addr(args.iter().map(Into::into).collect());
        let cli = Cli::try_parse_from(args).unwrap();
        assert_eq!(cli.addr, "broker:1");
        assert!(matches!(cli.command, Command::Services(_)));
        let untouched = rewrite_register_addr(
            ["brokerctl", "topics", "--addr", "b:2"]
                .iter()
                .map(Into::into)
                .collect(),
        );
        assert_eq!(Cli::try_parse_from(untouched).unwrap().addr, "b:2");
    }

    #[test]
    fn key_value_pairs() {
        assert_eq!(
            parse_key_value("durability=interval:100").unwrap(),
            ("durability".into(), "interval:100".into())
        );
        assert_eq!(
            parse_key_value("a=b=c").unwrap(),
            ("a".into(), "b=c".into())
        );
        assert_eq!(parse_key_value("k=").unwrap(), ("k".into(), String::new()));
        assert!(parse_key_value("novalue").is_err());
        assert!(parse_key_value("=v").is_err());
    }
}
