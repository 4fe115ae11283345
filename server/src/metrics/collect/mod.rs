//! The scrape-time collector: reads the live owners' state and the counters they
//! hold, one family at a time. Nothing here runs on a request's path.

mod groups;
mod server;
mod topics;

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use super::Metrics;
use crate::broker::Broker;
use crate::group::Groups;
use crate::queue::Queues;
use crate::stats::Stats;
use crate::topics::Topics;
use crate::traces::Traces;

/// The owners a scrape reads, shared with the broker.
#[derive(Debug)]
pub(super) struct BrokerCollector {
    topics: Arc<Topics>,
    groups: Arc<Groups>,
    queues: Arc<Queues>,
    stats: Arc<Stats>,
    traces: Arc<Traces>,
    metrics: Arc<Metrics>,
}

impl BrokerCollector {
    /// Reads `broker`'s owners.
    pub(super) fn new(broker: &Broker) -> BrokerCollector {
        BrokerCollector {
            topics: broker.topics.clone(),
            groups: broker.groups.clone(),
            queues: broker.queues.clone(),
            stats: broker.stats.clone(),
            traces: broker.traces.clone(),
            metrics: broker.metrics.clone(),
        }
    }
}

impl Collector for BrokerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        topics::encode(&mut encoder, &self.topics)?;
        groups::encode(&mut encoder, &self.groups, &self.queues)?;
        server::encode(&mut encoder, &self.stats, &self.traces, &self.metrics)
    }
}

/// One family of counters: `name` (the encoder adds `_total`), `help`, and a value per
/// label set.
fn counters<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in series {
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// One family of gauges, like [`counters`].
fn gauges<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in series {
        ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}
