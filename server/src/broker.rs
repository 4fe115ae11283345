//! The broker's shared state: what every connection task gets a handle to.

use std::sync::Arc;

use crate::config::ServerConfig;
use crate::error::BrokerError;
use crate::group::offsets::Offsets;
use crate::group::Groups;
use crate::queue::Queues;
use crate::routes::Routes;
use crate::services::Services;
use crate::shutdown::ShutdownSignal;
use crate::stats::Stats;
use crate::topics::Topics;
use crate::traces::Traces;

/// Everything a request handler may touch.
#[derive(Debug)]
pub struct Broker {
    /// The configuration the broker runs with.
    pub config: ServerConfig,
    /// All topics.
    pub topics: Arc<Topics>,
    /// Consumer groups.
    pub groups: Arc<Groups>,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Queue groups: per-message delivery, retries, dead letters.
    pub queues: Arc<Queues>,
    /// The service registry.
    pub services: Arc<Services>,
    /// Routing rules.
    pub routes: Arc<Routes>,
    /// Trace spans of traced messages.
    pub traces: Arc<Traces>,
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
        let topics = Arc::new(Topics::open(&config.data_dir)?);
        let offsets = Arc::new(Offsets::open(&topics)?);
        let background = ShutdownSignal::new();
        let traces = Traces::open(
            &topics,
            background.subscribe(),
            config.tracing.sample_unsampled,
        )?;
        let queues = Arc::new(Queues::open(
            topics.clone(),
            background.subscribe(),
            traces.clone(),
        )?);
        let groups = Arc::new(Groups::new(
            config.groups.clone(),
            topics.clone(),
            offsets,
            queues.clone(),
        ));
        let services = Arc::new(Services::open(&topics, Arc::new(storage::SystemClock))?);
        let routes = Arc::new(Routes::open(
            topics.clone(),
            config.routing.unroutable_topic.clone(),
            traces.clone(),
        )?);
        Ok(Broker {
            config,
            topics,
            groups,
            stats: Arc::new(Stats::default()),
            queues,
            services,
            routes,
            traces,
            background,
        })
    }
}
