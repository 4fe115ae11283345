//! `broker-bench`: runs one workload against brokerd (its own, or `--addr`), over its
//! Kafka listener when built with the `kafka` feature, or, when built with the `nats` /
//! `redis` / `rabbitmq` features, against a peer broker; prints a table or `--json`. Exits 1 on an error, 2 if any message was lost, duplicated or failed.

// Production code must not unwrap data it did not create; tests may.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bench::drivers::brokerd::{Api, BrokerdDriver};
use bench::report::Report;
use bench::runner::{run, RunOptions};
use bench::workload::{parse_duration, Ack, Durability, Stop, Workload, WorkloadKind};
use clap::Parser;

/// Exit status when the run completed but delivery was not exact.
const EXIT_DELIVERY_FAILED: i32 = 2;

/// The broker to drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Broker {
    /// Our broker (started here unless --addr is given).
    Brokerd,
    /// Our broker over its Kafka listener (started here, with --kafka-listen, unless
    /// --addr names a Kafka listener; needs the `kafka` feature).
    Kafka,
    /// NATS JetStream (needs --addr and the `nats` feature).
    Nats,
    /// Redis Streams (needs --addr and the `redis` feature).
    Redis,
    /// RabbitMQ (needs --addr and the `rabbitmq` feature).
    Rabbitmq,
}

/// End-to-end benchmark for brokerd and its peers.
///
/// Without --addr, starts its own brokerd (next to this binary, else built with
/// cargo) on 127.0.0.1 with data in a temporary directory.
#[derive(Debug, Parser)]
#[command(name = "broker-bench", version, about, long_about = None)]
struct Args {
    /// produce, consume (pre-filled), pubsub (end-to-end latency), or queue.
    #[arg(long, value_enum, default_value = "produce")]
    workload: WorkloadKind,
    /// Which broker to drive.
    #[arg(long, value_enum, default_value = "brokerd")]
    broker: Broker,
    /// Address of a running broker (host:port); without it brokerd is started here.
    #[arg(long)]
    addr: Option<String>,
    /// The brokerd binary to start (default: next to broker-bench, else built).
    #[arg(long, env = "BROKERD")]
    brokerd: Option<PathBuf>,
    /// Parent directory of the started brokerd's data directory (default: the system temp dir).
    #[arg(long)]
    data_parent: Option<PathBuf>,
    /// A brokerd config file for the started brokerd (say, with a [tls] section).
    #[arg(long, conflicts_with = "addr")]
    brokerd_config: Option<PathBuf>,
    /// brokerd only: connect with TLS, trusting the CA certificates (PEM) in FILE.
    #[arg(long, env = "BROKER_TLS_CA", value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// brokerd only: the client certificate (PEM), for a broker that asks for one.
    #[arg(long, env = "BROKER_TLS_CERT", value_name = "FILE", requires_all = ["tls_ca", "tls_key"])]
    tls_cert: Option<PathBuf>,
    /// brokerd only: the private key (PEM) of --tls-cert.
    #[arg(long, env = "BROKER_TLS_KEY", value_name = "FILE", requires_all = ["tls_ca", "tls_cert"])]
    tls_key: Option<PathBuf>,
    /// brokerd only: the name the broker's certificate must be valid for (default: the
    /// host of the address).
    #[arg(
        long,
        env = "BROKER_TLS_SERVER_NAME",
        value_name = "NAME",
        requires = "tls_ca"
    )]
    tls_server_name: Option<String>,
    /// brokerd only: raw record batches and fetches, or the client library's Producer/Consumer.
    #[arg(long, value_enum, default_value = "raw")]
    api: Api,
    /// Total messages to send (split between producers).
    #[arg(long, conflicts_with = "duration")]
    messages: Option<u64>,
    /// Send for this long instead (e.g. 10s), warm-up included.
    #[arg(long, value_parser = duration_arg)]
    duration: Option<Duration>,
    /// Leave this much time out of the figures (e.g. 2s).
    #[arg(long, value_parser = duration_arg, default_value = "0s")]
    warmup: Duration,
    /// Payload bytes per message (at least 24: the benchmark header).
    #[arg(long, default_value_t = 1024)]
    message_size: usize,
    /// Producers, each with its own connection.
    #[arg(long, default_value_t = 1)]
    producers: u32,
    /// Consumers per consumer group, each with its own connection.
    #[arg(long, default_value_t = 1)]
    consumers: u32,
    /// Consumer groups; each receives every message.
    #[arg(long, default_value_t = 1)]
    consumer_groups: u32,
    /// Topics (producer i writes to topic i % topics; consumers read all).
    #[arg(long, default_value_t = 1)]
    topics: u32,
    /// Partitions per topic.
    #[arg(long, default_value_t = 1)]
    partitions: u32,
    /// Records per produce batch.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Produce batches awaiting acknowledgement, per producer.
    #[arg(long, default_value_t = 8)]
    in_flight: usize,
    /// Target rate in messages/s over all producers (default: as fast as possible).
    #[arg(long)]
    rate: Option<u64>,
    /// Topic durability: always, os or interval:<ms> (peers: see docs/benchmarks.md).
    #[arg(long, default_value = "always", value_parser = durability_arg)]
    durability: Durability,
    /// Acknowledgement level of produces.
    #[arg(long, value_enum, default_value = "durable")]
    ack: Ack,
    /// Give every message a traceparent header, so the broker traces all of them.
    #[arg(long)]
    trace: bool,
    /// Consumers give up this long after the last message once producers are done.
    #[arg(long, value_parser = duration_arg, default_value = "10s")]
    drain_timeout: Duration,
    /// Instead of a workload: open N connections one after another and report each
    /// one's set-up time (connect, TLS, Handshake, and SCRAM with --scram-user).
    #[arg(long, value_name = "N", conflicts_with_all = ["messages", "duration"])]
    connect_only: Option<u32>,
    /// brokerd only: every connection logs in as this SCRAM-SHA-256 user, its
    /// password in the environment variable BROKER_BENCH_SCRAM_PASSWORD. brokerd
    /// started here gets the user by `brokerd --init-admin` (give --brokerd-config a
    /// [security] section).
    #[arg(long, value_name = "NAME")]
    scram_user: Option<String>,
    /// brokerd only, plaintext: before the workload, open N more connections that
    /// complete their Handshake and then stay silent for the whole run (the idle
    /// services of a large deployment). brokerd must allow them
    /// (`[limits] max_connections`) and this process needs the descriptors
    /// (`ulimit -n`).
    #[arg(long, value_name = "N")]
    idle_connections: Option<u32>,
    /// Leave the run's topics in place afterwards (with --addr: to measure what the
    /// broker holds for them, as bench/scale.sh does).
    #[arg(long)]
    keep_topics: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

fn duration_arg(text: &str) -> Result<Duration, String> {
    parse_duration(text).map_err(|e| e.to_string())
}

fn durability_arg(text: &str) -> Result<Durability, String> {
    Durability::parse(text).map_err(|e| e.to_string())
}

impl Args {
    fn workload(&self) -> Workload {
        let stop = match (self.messages, self.duration) {
            (_, Some(duration)) => Stop::Duration(duration),
            (Some(n), None) => Stop::Messages(n),
            (None, None) => Stop::Messages(100_000),
        };
        Workload {
            kind: self.workload,
            producers: self.producers,
            consumers: if self.workload == WorkloadKind::Produce {
                0
            } else {
                self.consumers
            },
            consumer_groups: self.consumer_groups,
            topics: self.topics,
            partitions: self.partitions,
            message_size_bytes: self.message_size,
            batch_records: self.batch,
            in_flight_batches: self.in_flight,
            rate_msgs_per_sec: self.rate,
            stop,
            warmup: self.warmup,
            durability: self.durability,
            ack: self.ack,
            trace: self.trace,
        }
    }
}

/// Where --connect-only's SCRAM password comes from (not a flag: a flag shows in `ps`).
const SCRAM_PASSWORD_ENV: &str = "BROKER_BENCH_SCRAM_PASSWORD";

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    if let Some(connections) = args.connect_only {
        let report = runtime.block_on(run_connect_only(&args, connections))?;
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            print!("{}", report.to_table());
        }
        return Ok(());
    }
    let workload = args.workload();
    workload.validate()?;
    let report = runtime.block_on(run_broker(&args, &workload))?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.to_table());
    }
    if !report.ok {
        std::process::exit(EXIT_DELIVERY_FAILED);
    }
    Ok(())
}

async fn run_broker(args: &Args, workload: &Workload) -> anyhow::Result<Report> {
    let options = RunOptions {
        name_prefix: format!("bench-{}-{}", std::process::id(), unique_suffix()),
        progress: !args.quiet && !args.json,
        drain_timeout: args.drain_timeout,
        keep_topics: args.keep_topics,
    };
    match args.broker {
        Broker::Brokerd => {
            let scram = scram_credentials(args)?;
            let (_own, addr) = match &args.addr {
                Some(addr) => (None, addr.clone()),
                None => {
                    let own = start_brokerd(
                        args,
                        scram
                            .as_ref()
                            .map(|(user, password)| (user.as_str(), password.as_str())),
                    )?;
                    let addr = own.addr().to_string();
                    (Some(own), addr)
                }
            };
            let driver = BrokerdDriver::new(addr.clone(), args.api);
            let driver = match tls_config(args) {
                Some(tls) => driver.with_tls(tls),
                None => driver,
            };
            let driver = match scram {
                Some((user, password)) => driver.with_credentials(
                    bench::drivers::brokerd::Credentials::scram_sha_256(user, password),
                ),
                None => driver,
            };
            let driver = Arc::new(driver);
            let idle = match args.idle_connections {
                Some(count) => bench::connect::hold_idle(&addr, count)
                    .await
                    .with_context(|| format!("opening {count} idle connections"))?,
                None => Vec::new(),
            };
            let report = run(driver, workload, &options).await?;
            drop(idle);
            Ok(report)
        }
        Broker::Kafka => run_kafka(args, workload, &options).await,
        Broker::Nats => run_nats(args, workload, &options).await,
        Broker::Redis => run_redis(args, workload, &options).await,
        Broker::Rabbitmq => run_rabbitmq(args, workload, &options).await,
    }
}

fn start_brokerd(
    args: &Args,
    admin: Option<(&str, &str)>,
) -> anyhow::Result<bench::launcher::Brokerd> {
    Ok(bench::launcher::start(
        args.brokerd.as_deref(),
        args.data_parent.as_deref(),
        args.brokerd_config.as_deref(),
        admin,
        args.broker == Broker::Kafka,
    )?)
}

/// `--scram-user` and its password from [`SCRAM_PASSWORD_ENV`], if given.
fn scram_credentials(args: &Args) -> anyhow::Result<Option<(String, String)>> {
    let Some(user) = &args.scram_user else {
        return Ok(None);
    };
    let password = std::env::var(SCRAM_PASSWORD_ENV)
        .with_context(|| format!("--scram-user needs the password in {SCRAM_PASSWORD_ENV}"))?;
    Ok(Some((user.clone(), password)))
}

/// `--connect-only`: against `--addr`, or a brokerd started here (with the SCRAM user
/// made its admin).
async fn run_connect_only(
    args: &Args,
    connections: u32,
) -> anyhow::Result<bench::connect::ConnectReport> {
    use bench::connect::{ConnectOptions, Credentials, TlsFiles};
    anyhow::ensure!(
        args.broker == Broker::Brokerd,
        "--connect-only measures brokerd only"
    );
    let scram = scram_credentials(args)?.map(|(user, password)| Credentials { user, password });
    let (_own, addr) = match &args.addr {
        Some(addr) => (None, addr.clone()),
        None => {
            let admin = scram
                .as_ref()
                .map(|c| (c.user.as_str(), c.password.as_str()));
            let own = start_brokerd(args, admin)?;
            let addr = own.addr().to_string();
            (Some(own), addr)
        }
    };
    let tls = args.tls_ca.as_ref().map(|ca| {
        let host = addr
            .rsplit_once(':')
            .map_or(addr.as_str(), |(host, _)| host);
        TlsFiles {
            ca: ca.clone(),
            identity: args.tls_cert.clone().zip(args.tls_key.clone()),
            server_name: args
                .tls_server_name
                .clone()
                .unwrap_or_else(|| host.to_string()),
        }
    });
    let options = ConnectOptions {
        addr,
        tls,
        scram,
        connections,
    };
    Ok(bench::connect::measure(&options).await?)
}

/// The TLS settings of the `--tls-*` flags; `None` without `--tls-ca` (plaintext).
fn tls_config(args: &Args) -> Option<client::TlsConfig> {
    let mut tls = client::TlsConfig::new(args.tls_ca.clone()?);
    tls.cert_file = args.tls_cert.clone();
    tls.key_file = args.tls_key.clone();
    tls.server_name = args.tls_server_name.clone();
    Some(tls)
}

/// The `--addr` of a peer broker, which must be given.
#[cfg(any(feature = "nats", feature = "redis", feature = "rabbitmq"))]
fn peer_addr(args: &Args, server: &str) -> anyhow::Result<String> {
    args.addr
        .clone()
        .with_context(|| format!("this --broker needs --addr of a running {server}"))
}

/// The answer when a peer's driver was not compiled in.
#[cfg(not(all(
    feature = "nats",
    feature = "redis",
    feature = "rabbitmq",
    feature = "kafka"
)))]
fn without_feature(feature: &str) -> anyhow::Result<Report> {
    anyhow::bail!(
        "this broker-bench was built without the {feature} driver: build with `--features {feature}`"
    )
}

/// `--broker kafka`: the Kafka listener at `--addr`, or that of a brokerd started here.
#[cfg(feature = "kafka")]
async fn run_kafka(
    args: &Args,
    workload: &Workload,
    options: &RunOptions,
) -> anyhow::Result<Report> {
    anyhow::ensure!(
        args.scram_user.is_none() && args.tls_ca.is_none(),
        "--broker kafka speaks plaintext without SASL: drop --scram-user and --tls-*"
    );
    let (_own, addr) = match &args.addr {
        Some(addr) => (None, addr.clone()),
        None => {
            let own = start_brokerd(args, None)?;
            let addr = own.kafka_addr().to_string();
            (Some(own), addr)
        }
    };
    let driver = Arc::new(bench::drivers::kafka::KafkaDriver::new(addr));
    Ok(run(driver, workload, options).await?)
}

#[cfg(not(feature = "kafka"))]
async fn run_kafka(_: &Args, _: &Workload, _: &RunOptions) -> anyhow::Result<Report> {
    without_feature("kafka")
}

#[cfg(feature = "nats")]
async fn run_nats(
    args: &Args,
    workload: &Workload,
    options: &RunOptions,
) -> anyhow::Result<Report> {
    let addr = peer_addr(args, "nats-server")?;
    let driver = Arc::new(bench::drivers::nats::NatsDriver::connect(&addr).await?);
    Ok(run(driver, workload, options).await?)
}

#[cfg(not(feature = "nats"))]
async fn run_nats(_: &Args, _: &Workload, _: &RunOptions) -> anyhow::Result<Report> {
    without_feature("nats")
}

#[cfg(feature = "redis")]
async fn run_redis(
    args: &Args,
    workload: &Workload,
    options: &RunOptions,
) -> anyhow::Result<Report> {
    let addr = peer_addr(args, "redis-server")?;
    let driver = Arc::new(bench::drivers::redis::RedisDriver::connect(&addr).await?);
    Ok(run(driver, workload, options).await?)
}

#[cfg(not(feature = "redis"))]
async fn run_redis(_: &Args, _: &Workload, _: &RunOptions) -> anyhow::Result<Report> {
    without_feature("redis")
}

#[cfg(feature = "rabbitmq")]
async fn run_rabbitmq(
    args: &Args,
    workload: &Workload,
    options: &RunOptions,
) -> anyhow::Result<Report> {
    let addr = peer_addr(args, "rabbitmq-server")?;
    let driver = Arc::new(bench::drivers::rabbitmq::RabbitMqDriver::connect(&addr).await?);
    Ok(run(driver, workload, options).await?)
}

#[cfg(not(feature = "rabbitmq"))]
async fn run_rabbitmq(_: &Args, _: &Workload, _: &RunOptions) -> anyhow::Result<Report> {
    without_feature("rabbitmq")
}

/// Distinguishes runs started in the same second by the same process id.
fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() % 1_000_000_000)
}
