//! The broker's shared state: what every request handler gets a handle to, and the
//! background tasks it owns.

use crate::producers::ProducerIds;
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::config::ServerConfig;
use crate::data_lock::DataDirLock;
use crate::error::BrokerError;
use crate::group::offsets::Offsets;
use crate::group::Groups;
use crate::metrics::Metrics;
use crate::queue::Queues;
use crate::routes::Routes;
use crate::security::Security;
use crate::services::Services;
use crate::stats::Stats;
use crate::tasks::{Stopped, Tasks};
use crate::topics::{TopicConfig, Topics};
use crate::traces::Traces;

/// Everything a request handler may touch.
#[derive(Debug)]
pub struct Broker {
    /// The configuration the broker runs with.
    pub config: ServerConfig,
    /// What a new topic starts from before its request's settings: `[topic_defaults]`,
    /// checked once when the broker opens, so a CreateTopic can only fail on what it
    /// asked for.
    pub topic_defaults: TopicConfig,
    /// The clock every timer of the broker reads.
    pub clock: Arc<dyn Clock>,
    /// All topics.
    pub topics: Arc<Topics>,
    /// Consumer groups.
    pub groups: Arc<Groups>,
    /// Kafka clients' consumer groups (the classic protocol); their committed
    /// offsets are in `groups`' offsets.
    pub kafka_groups: Arc<crate::kafka::group::KafkaGroups>,
    /// Counters.
    pub stats: Arc<Stats>,
    /// What the metrics count as it happens (histograms, answers by operation); the
    /// rest is read from the owners when `/metrics` is scraped ([`crate::metrics`]).
    pub metrics: Arc<Metrics>,
    /// Queue groups: per-message delivery, retries, dead letters.
    pub queues: Arc<Queues>,
    /// The service registry.
    pub services: Arc<Services>,
    /// Routing rules.
    pub routes: Arc<Routes>,
    /// Trace spans of traced messages.
    pub traces: Arc<Traces>,
    /// Idempotent producers' ids.
    pub producer_ids: Arc<ProducerIds>,
    /// Users, ACLs, and the authentication policy.
    pub security: Arc<Security>,
    /// Every background task the broker started (dispatchers, the span writer, the
    /// periodic jobs of `serve`).
    pub tasks: Arc<Tasks>,
    /// The data directory's lock, held for as long as the broker lives (`bind` takes
    /// it before the broker opens; in-process tests open without one).
    data_lock: Option<DataDirLock>,
}

impl Broker {
    /// Opens the data directory on the system clock. See [`open_with_clock`](Self::open_with_clock).
    pub fn open(config: ServerConfig) -> Result<Broker, BrokerError> {
        Self::open_with_clock(config, Arc::new(SystemClock::new()))
    }

    /// Keeps the data directory's lock until the broker is dropped.
    pub fn hold_lock(&mut self, lock: DataDirLock) {
        self.data_lock = Some(lock);
    }

    /// Opens the data directory: every topic's logs are recovered and the internal
    /// topics replayed (blocking I/O, but inside the runtime: queue dispatchers and the
    /// span writer start among [`tasks`](Self::tasks)). The caller makes sure no other
    /// process has the directory open: [`crate::bind`] takes its
    /// [`DataDirLock`] first.
    pub fn open_with_clock(
        config: ServerConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Broker, BrokerError> {
        let topic_defaults = config
            .default_topic_config()
            .map_err(|e| BrokerError::InvalidConfig(e.to_string()))?;
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| storage::Error::io("creating data directory", &config.data_dir, e))?;
        let tasks = Arc::new(Tasks::new());
        let metrics = Arc::new(Metrics::default());
        let producer_ids = Arc::new(ProducerIds::open(&config.data_dir)?);
        let sync_workers = storage::SyncWorkers::start(config.storage.sync_workers)
            .map_err(|e| BrokerError::InvalidConfig(format!("storage.sync_workers: {e}")))?;
        tracing::info!(
            threads = sync_workers.threads(),
            "durability workers started"
        );
        let index_handles = open_index_handles(config.storage.index_handles)?;
        let mapped_segments = open_mapped_segments(config.storage.mapped_segments)?;
        let topics = Arc::new(Topics::open_with(
            &config.data_dir,
            storage::LogOptions {
                clock: clock.clone(),
                sync_observer: Some(metrics.sync_observer()),
                sync_workers: Some(sync_workers),
                index_handles: Some(index_handles),
                mapped_segments: Some(mapped_segments),
                ..storage::LogOptions::default()
            },
        )?);
        let offsets = Arc::new(Offsets::open(&topics, clock.clone())?);
        let export = crate::traces::otlp::ExportConfig::from_config(&config.tracing, config.listen)
            .map_err(|e| BrokerError::InvalidConfig(format!("tracing.otlp_endpoint: {e}")))?
            .map(|export| crate::traces::otlp::start(export, &tasks));
        let traces = Traces::open_exporting(
            &topics,
            &tasks,
            config.tracing.sample_unsampled,
            clock.clone(),
            export,
        )?;
        let recorded = |group: &str, topic: &str| {
            offsets
                .group(group)
                .filter(|g| g.topic == topic)
                .map(|g| g.settings.config)
                .unwrap_or_default()
        };
        let queues = Arc::new(Queues::open(
            topics.clone(),
            tasks.clone(),
            traces.clone(),
            clock.clone(),
            metrics.clone(),
            recorded,
        )?);
        let groups = Arc::new(Groups::new(
            config.groups.clone(),
            topics.clone(),
            offsets,
            queues.clone(),
            clock.clone(),
        ));
        groups.adopt_unrecorded()?;
        let services = Arc::new(Services::open(&topics, clock.clone())?);
        if let Some(name) = &config.routing.unroutable_topic {
            ensure_unroutable_topic(&topics, &config, name)?;
        }
        let routes = Arc::new(Routes::open(
            topics.clone(),
            config.routing.unroutable_topic.clone(),
            traces.clone(),
            clock.clone(),
        )?);
        let security = Arc::new(Security::open(&config, &topics, clock.clone())?);
        let kafka_groups = Arc::new(crate::kafka::group::KafkaGroups::new(
            config.groups.clone(),
            clock.clone(),
        ));
        Ok(Broker {
            security,
            config,
            topic_defaults,
            clock,
            topics,
            groups,
            kafka_groups,
            stats: Arc::new(Stats::default()),
            metrics,
            queues,
            services,
            routes,
            traces,
            producer_ids,
            tasks,
            data_lock: None,
        })
    }

    /// Compacts every internal topic whose compaction is due (blocking I/O).
    pub fn compact_internal_topics(&self) -> Result<(), BrokerError> {
        self.groups.offsets().compact()?;
        self.queues.compact()?;
        self.services.compact()?;
        self.security.compact()?;
        self.routes.compact()
    }

    /// Stops the background tasks (waiting up to `grace`) and then closes every log
    /// cleanly, syncing it (blocking I/O on the blocking pool).
    pub async fn close(&self, grace: std::time::Duration) -> Stopped {
        let stopped = self.tasks.stop(grace).await;
        let topics = self.topics.clone();
        if let Err(error) = tokio::task::spawn_blocking(move || topics.close_all()).await {
            tracing::error!(%error, "closing the logs failed");
        }
        stopped
    }
}

/// Creates the configured unroutable topic if it does not exist yet, with the topic
/// defaults, so that `routing.unroutable_topic` never names a missing topic (every
/// unmatched publish would be refused as `unknown_topic` instead).
/// The budget of index write handles every log shares: `configured`, or a quarter of
/// the open-file limit (`open_files.rs`). Logged, with the limit, so that an
/// operator reading about reopened index files knows which number to raise.
fn open_index_handles(configured: Option<usize>) -> Result<storage::IndexHandles, BrokerError> {
    let soft = crate::open_files::soft_limit().ok();
    let budget = configured
        .unwrap_or_else(|| crate::open_files::default_index_handles(soft.unwrap_or(1024)));
    let handles = storage::IndexHandles::new(budget)
        .map_err(|e| BrokerError::InvalidConfig(format!("storage.index_handles: {e}")))?;
    tracing::info!(
        budget,
        open_file_limit = soft,
        configured = configured.is_some(),
        "index write handles budgeted: past the budget, the least recently written index files are closed and reopened on demand"
    );
    Ok(handles)
}

/// The budget of mapped sealed segments every log shares: `configured`, or a sixth of
/// `vm.max_map_count` (`open_files.rs`). Logged with the limit, like the handles.
fn open_mapped_segments(configured: Option<usize>) -> Result<storage::MappedSegments, BrokerError> {
    let limit = crate::open_files::max_map_count();
    let budget = configured
        .unwrap_or_else(|| crate::open_files::default_mapped_segments(limit.unwrap_or(65_530)));
    let mapped = storage::MappedSegments::new(budget)
        .map_err(|e| BrokerError::InvalidConfig(format!("storage.mapped_segments: {e}")))?;
    tracing::info!(
        budget,
        max_map_count = limit,
        configured = configured.is_some(),
        "mapped sealed segments budgeted: past the budget, the least recently read are unmapped and mapped again when read"
    );
    Ok(mapped)
}

fn ensure_unroutable_topic(
    topics: &Topics,
    config: &ServerConfig,
    name: &str,
) -> Result<(), BrokerError> {
    if topics.get(name).is_ok() {
        return Ok(());
    }
    let defaults = config
        .default_topic_config()
        .map_err(|e| BrokerError::InvalidConfig(e.to_string()))?;
    topics.create(name, defaults, false)?;
    tracing::info!(
        topic = name,
        "created the unroutable topic named by routing.unroutable_topic"
    );
    Ok(())
}
