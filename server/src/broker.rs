//! The broker's shared state: what every connection task gets a handle to.

use std::sync::Arc;

use crate::config::ServerConfig;
use crate::error::BrokerError;
use crate::group::offsets::OffsetStore;
use crate::group::Coordinator;
use crate::stats::Stats;
use crate::topics::TopicRegistry;

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
}

impl Broker {
    /// Opens the data directory: every topic's logs are recovered and committed
    /// offsets replayed (blocking I/O; call before serving).
    pub fn open(config: ServerConfig) -> Result<Broker, BrokerError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| storage::Error::io("creating data directory", &config.data_dir, e))?;
        let topics = Arc::new(TopicRegistry::open(&config.data_dir)?);
        let offsets = Arc::new(OffsetStore::open(&topics)?);
        let groups = Arc::new(Coordinator::new(
            config.groups.clone(),
            topics.clone(),
            offsets,
        ));
        Ok(Broker {
            config,
            topics,
            groups,
            stats: Arc::new(Stats::default()),
        })
    }
}
