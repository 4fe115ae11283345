//! `brokerd`: the broker server.
//!
//! This crate is where the network meets the disk. Its layers, outside in:
//! - listeners: the native protocol's ([`connection`]: one task per socket that reads
//!   frames, admits them and answers; over TLS when configured, [`tls`]) and the HTTP
//!   gateway's ([`http`]: REST/JSON over HTTP/1.1 and HTTP/2, the same TLS);
//! - the request layer every listener calls ([`handlers`]: one dispatch table from a
//!   typed request to its handler, with a per-session [`handlers::Context`]);
//! - the owners of the broker's state, reached through [`broker::Broker`]: topics and
//!   each partition's single writer ([`topics`], [`partition`]), consumer groups and
//!   committed offsets ([`group`]), queue groups ([`queue`]), the service registry
//!   ([`services`]), routing rules ([`routes`]), trace spans ([`traces`]), with the
//!   plumbing they share ([`internal`] for their internal topics, [`delivery`] for
//!   pushing under credit);
//! - and what cuts across: the injected [`clock`], the owned background [`tasks`],
//!   the one error type and error frame ([`error`]).
//!
//! Wire encoding and every record layout live in `protocol`, the log in `storage`; this
//! crate never parses bytes itself and never writes a file format of its own beyond a
//! topic's `topic.toml`.
//!
//! It must never panic on client input, never hold a lock across `.await`, and never
//! let one connection make it buffer without bound (see [`config::LimitsConfig`]).

#![warn(missing_docs)]
// Production code must not unwrap data it did not create; tests may.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod broker;
pub mod clock;
pub mod config;
pub mod connection;
pub mod data_lock;
pub mod delivery;
pub mod error;
pub mod group;
pub mod handlers;
pub mod http;
pub mod internal;
pub mod kafka;
pub mod lazy_alloc;
pub mod metrics;
pub mod open_files;
pub mod partition;
pub mod partitioner;
pub mod producers;
pub mod queue;
pub mod reply;
pub mod routes;
pub mod security;
pub mod services;
pub mod shutdown;
pub mod stats;
pub mod subscription;
pub mod tasks;
pub mod tls;
pub mod topics;
pub mod traces;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::broker::Broker;
use crate::config::ServerConfig;
use crate::internal::COMPACTION_INTERVAL;
use crate::shutdown::ShutdownSignal;
use crate::tasks::{every_blocking, TASK_SHUTDOWN_GRACE};
use crate::tls::Tls;
use crate::topics::Topics;

/// How long shutdown waits for connections to finish their in-flight requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// Another brokerd has the data directory, or it cannot be locked.
    #[error(transparent)]
    Locked(#[from] data_lock::LockError),
    /// A file of `[tls]` is missing or wrong.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The data directory could not be opened.
    #[error("cannot open the data directory: {0}")]
    Open(#[from] error::BrokerError),
    /// The listener could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address asked for.
        address: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The Kafka listener could not be bound.
    #[error("cannot listen for Kafka clients on {address}: {source} (set kafka.listen or --kafka-listen to another address)")]
    KafkaListen {
        /// The address asked for.
        address: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP gateway's listener could not be bound.
    #[error("cannot listen for HTTP on {address}: {source} (set http.listen or --http-listen to another address, or http.enabled = false)")]
    HttpListen {
        /// The address asked for.
        address: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// The broker's listeners: the native one (its socket, and its TLS configuration
/// when it has one), the HTTP gateway's, unless `http.enabled = false`, and the
/// Kafka one when `kafka.listen` is set.
#[derive(Debug)]
pub struct Listener {
    tcp: TcpListener,
    tls: Option<Arc<Tls>>,
    http: Option<http::HttpListener>,
    kafka: Option<kafka::KafkaListener>,
}

impl Listener {
    /// The address the native listener is bound to.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.tcp.local_addr()
    }

    /// The address the HTTP gateway is bound to; `None` when it is off.
    pub fn http_addr(&self) -> Option<std::io::Result<std::net::SocketAddr>> {
        self.http.as_ref().map(http::HttpListener::local_addr)
    }

    /// The address the Kafka listener is bound to; `None` when it is off.
    pub fn kafka_addr(&self) -> Option<std::io::Result<std::net::SocketAddr>> {
        self.kafka.as_ref().map(kafka::KafkaListener::local_addr)
    }

    /// Its TLS configuration (to reload on SIGHUP); `None` for plaintext.
    pub fn tls(&self) -> Option<Arc<Tls>> {
        self.tls.clone()
    }
}

/// Checks the configuration and reads the TLS files, locks the data directory, binds
/// the listeners (native, then HTTP), then opens (recovers) the data directory: in that order, so that
/// neither a broker with a bad certificate, nor a second broker on a live directory,
/// nor one whose port is taken touches a file. Separate from [`serve`] so that the
/// caller can print the bound address before serving.
pub async fn bind(config: ServerConfig) -> Result<(Arc<Broker>, Listener), StartError> {
    config.validate()?;
    // Before any topic opens: thousands of partitions need more descriptors than a
    // default soft limit of 1,024.
    let open_files = open_files::raise_and_log();
    let tls = match &config.tls {
        Some(settings) => Some(Arc::new(Tls::load(settings.clone())?)),
        None => None,
    };
    let lock = data_lock::DataDirLock::acquire(&config.data_dir)?;
    let listen = config.listen;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| StartError::Listen {
            address: listen,
            source,
        })?;
    // The broker knows the address it is bound to (port 0 resolved): the span export
    // names its instance by it.
    let mut config = config;
    if let Ok(bound) = listener.local_addr() {
        config.listen = bound;
    }
    let http = match config.http.enabled {
        true => {
            let address = config.http.listen;
            let bound = http::HttpListener::bind(address, tls.clone())
                .await
                .map_err(|source| StartError::HttpListen { address, source })?;
            Some(bound)
        }
        false => None,
    };
    let kafka = match config.kafka.listen {
        Some(address) => Some(
            kafka::KafkaListener::bind(address, config.kafka.advertised.as_deref(), tls.clone())
                .await
                .map_err(|source| StartError::KafkaListen { address, source })?,
        ),
        None => None,
    };
    let mut broker = tokio::task::spawn_blocking(move || Broker::open(config))
        .await
        .map_err(|e| error::BrokerError::Internal(format!("opening the broker failed: {e}")))??;
    broker.hold_lock(lock);
    warn_if_short_of_descriptors(open_files);
    let listener = Listener {
        tcp: listener,
        tls,
        http,
        kafka,
    };
    Ok((Arc::new(broker), listener))
}

/// With every log open, a warning when the descriptors held already use more than
/// half the open-file limit: the limit, not the broker, then bounds how many more
/// connections and partitions it can take.
fn warn_if_short_of_descriptors(limit: Option<open_files::OpenFileLimit>) {
    let (Some(limit), Some(held)) = (limit, open_files::open_descriptors()) else {
        return;
    };
    let held = held as u64;
    if held.saturating_mul(2) > limit.soft {
        tracing::warn!(
            held,
            limit = limit.soft,
            hard = limit.hard,
            "brokerd already holds more than half of its open-file limit; raise the hard RLIMIT_NOFILE (LimitNOFILE= under systemd)"
        );
    } else {
        tracing::info!(held, limit = limit.soft, "open descriptors after startup");
    }
}

/// Creates (or, if it exists, resets the password of) the user `name` and grants it
/// every operation on every resource, so that a secured broker has a first
/// administrator: `brokerd --init-admin NAME`. Locks the data directory, so it runs
/// only while no broker does. The password is turned into a SCRAM verifier here and
/// never stored.
pub async fn init_admin(
    config: ServerConfig,
    name: &str,
    password: &str,
) -> Result<(), StartError> {
    use protocol::ops::security::{AclBinding, Operation, PatternType, Permission, ResourceType};
    config.validate()?;
    security::users::validate_name(name)?;
    let lock = data_lock::DataDirLock::acquire(&config.data_dir)?;
    let mut broker = tokio::task::spawn_blocking(move || Broker::open(config))
        .await
        .map_err(|e| error::BrokerError::Internal(format!("opening the broker failed: {e}")))??;
    broker.hold_lock(lock);
    let credential = auth::scram::StoredCredential::generate(
        password,
        auth::scram::DEFAULT_ITERATIONS,
        &mut rand::thread_rng(),
    )
    .map_err(|e| error::BrokerError::InvalidRequest(e.to_string()))?
    .to_user_credential(name);
    let users = &broker.security.users;
    let exists = users.list().iter().any(|u| u.name == name);
    users.put(credential, !exists).await?;
    let everything = ResourceType::ALL
        .iter()
        .map(|&resource| AclBinding {
            principal: name.to_string(),
            resource,
            pattern: PatternType::Prefix,
            name: String::new(),
            operation: Operation::All,
            permission: Permission::Allow,
        })
        .collect();
    broker.security.acls.create(everything).await?;
    tracing::info!(target: "audit", op = "InitAdmin", user = %name, created = !exists, "administrator initialised");
    broker.close(TASK_SHUTDOWN_GRACE).await;
    Ok(())
}

/// Serves until `shutdown` fires, then stops accepting, lets connections finish,
/// and closes every log cleanly.
pub async fn serve(broker: Arc<Broker>, listener: Listener, signal: Arc<ShutdownSignal>) {
    let Listener {
        tcp: listener,
        tls,
        http,
        kafka,
    } = listener;
    start_periodic_jobs(&broker);
    let http = http.map(|http| tokio::spawn(http::serve(http, broker.clone(), signal.subscribe())));
    let kafka =
        kafka.map(|kafka| tokio::spawn(kafka::serve(kafka, broker.clone(), signal.subscribe())));
    let connections_allowed = Arc::new(Semaphore::new(broker.config.limits.max_connections));
    let refusals = Arc::new(Semaphore::new(connection::refuse::MAX_LINGERING_REFUSALS));
    let mut connections = JoinSet::new();
    let mut shutdown = signal.subscribe();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.recv() => break,
        };
        let (socket, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        broker.stats.count_accepted(stats::ListenerKind::Native);
        while connections.try_join_next().is_some() {}
        match connections_allowed.clone().try_acquire_owned() {
            Ok(permit) => {
                let broker = broker.clone();
                let shutdown = signal.subscribe();
                let tls = tls.clone();
                connections.spawn(async move {
                    connection::accept::serve_socket(socket, peer, tls, broker, shutdown).await;
                    drop(permit);
                });
            }
            Err(_) => {
                tracing::warn!(%peer, "refusing connection: too many open");
                broker.stats.count_closed(stats::Closed::OverLimit);
                // A bounded number linger to answer; past that, closed at once.
                if let Ok(lingering) = refusals.clone().try_acquire_owned() {
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        connection::accept::refuse_socket(socket, tls).await;
                        drop(lingering);
                    });
                }
            }
        }
    }
    tracing::info!("shutting down: no new connections; finishing in-flight requests");
    drop(listener);
    signal.trigger();
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("connections still busy after {SHUTDOWN_GRACE:?}; closing anyway");
        connections.abort_all();
    }
    if let Some(http) = http {
        // It has its own grace period; this only waits for it to end.
        let _ = http.await;
    }
    if let Some(kafka) = kafka {
        let _ = kafka.await;
    }
    broker.close(TASK_SHUTDOWN_GRACE).await;
    tracing::info!("all logs synced and closed cleanly");
}

/// The broker's periodic jobs, owned by its tasks: session expiry, empty groups, rates, retention,
/// service expiry, and compaction of the internal topics.
fn start_periodic_jobs(broker: &Arc<Broker>) {
    let tasks = &broker.tasks;
    tasks.spawn(
        "session reaper",
        group::run_session_reaper(broker.groups.clone(), tasks.shutdown()),
    );
    tasks.spawn(
        "empty group expiry",
        group::run_group_expiry(
            broker.groups.clone(),
            broker.kafka_groups.clone(),
            tasks.shutdown(),
        ),
    );
    tasks.spawn(
        "rate sampler",
        stats::run_sampler(
            broker.stats.clone(),
            broker.topics.clone(),
            tasks.shutdown(),
        ),
    );
    tasks.spawn(
        "service expiry",
        services::run_expiry(broker.services.clone(), tasks.shutdown()),
    );
    tasks.spawn(
        "retention",
        every_blocking(
            "retention",
            Duration::from_millis(broker.config.retention.check_interval_ms),
            tasks.shutdown(),
            broker.topics.clone(),
            Topics::enforce_retention,
        ),
    );
    tasks.spawn(
        "compaction",
        every_blocking(
            "compaction of internal topics",
            COMPACTION_INTERVAL,
            tasks.shutdown(),
            broker.clone(),
            Broker::compact_internal_topics,
        ),
    );
}
