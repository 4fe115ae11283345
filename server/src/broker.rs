//! The broker's shared state: what every connection task gets a handle to.

use std::sync::Arc;

use crate::config::ServerConfig;
use crate::error::BrokerError;
use crate::group::offsets::OffsetStore;
use crate::group::Coordinator;
use crate::queue::QueueManager;
use crate::registry::ServiceRegistry;
use crate::routes::Routes;
use crate::shutdown::ShutdownSignal;
use crate::stats::Stats;
use crate::topics::TopicRegistry;
use crate::traces::Tracer;

/// Everything a request handler may touch.
#[derive(Debug)]
pub struct Broker {
    /// The configuration the broker runs with.
    pub config: ServerConfig,
    /// All topics.
    pub topics: Arc<TopicRegistry>,
    /// Consumer groups.
    pub groups: Arc<Coordinator>,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Queue groups: per-message delivery, retries, dead letters.
    pub queues: Arc<QueueManager>,
    /// The service registry.
    pub services: Arc<ServiceRegistry>,
    /// Routing rules.
    pub routes: Arc<Routes>,
    /// Trace spans of traced messages.
    pub tracer: Arc<Tracer>,
    /// Stops tasks the broker itself started (queue dispatchers).
    background: ShutdownSignal,
}

impl Broker {
    /// Stops the broker's own background tasks.
    pub fn stop_background(&self) {
        self.background.trigger();
    }

    /// Opens the data directory: every topic's logs are recovered and committed
    /// offsets and queue state replayed (blocking I/O, but inside the runtime: queue
    /// dispatchers are spawned).
    pub fn open(config: ServerConfig) -> Result<Broker, BrokerError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| storage::Error::io("creating data directory", &config.data_dir, e))?;
        let topics = Arc::new(TopicRegistry::open(&config.data_dir)?);
        let offsets = Arc::new(OffsetStore::open(&topics)?);
        let background = ShutdownSignal::new();
        let tracer = Tracer::open(
            &topics,
            background.subscribe(),
            config.tracing.sample_unsampled,
        )?;
        let queues = Arc::new(QueueManager::open(
            topics.clone(),
            background.subscribe(),
            tracer.clone(),
        )?);
        let groups = Arc::new(Coordinator::new(
            config.groups.clone(),
            topics.clone(),
            offsets,
            queues.clone(),
        ));
        let services = Arc::new(ServiceRegistry::open(
            &topics,
            Arc::new(storage::SystemClock),
        )?);
        let routes = Arc::new(Routes::open(
            topics.clone(),
            config.routing.unroutable_topic.clone(),
            tracer.clone(),
        )?);
        Ok(Broker {
            config,
            topics,
            groups,
            stats: Arc::new(Stats::default()),
            queues,
            services,
            routes,
            tracer,
            background,
        })
    }
}
