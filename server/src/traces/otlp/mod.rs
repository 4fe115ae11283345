//! OTLP export of trace spans: every span the broker writes to `__traces` is also
//! sent to an OpenTelemetry collector (Jaeger, Tempo, the OpenTelemetry Collector)
//! over OTLP/HTTP with binary protobuf (`POST <endpoint>/v1/traces`), configured by
//! `[tracing] otlp_endpoint`.
//!
//! The span writer hands each span it wrote to the [`ExportQueue`] (`try_send`: it
//! never waits; a full queue drops and counts), and one exporter task
//! ([`export`]) batches them, maps them ([`map`], pure) and posts them
//! ([`client`]), retrying ([`retry`]) within bounds. A collector that is slow, down
//! or refusing costs spans (counted in [`ExportCounters`]) and a rate-limited
//! warning ([`warn`]), never a produce's time.
//!
//! Span ids are exported as the broker derives them (`traces::ids`), so the
//! producer's span (the `traceparent` a message carries), the broker's spans and a
//! consumer's span continuing that context form one trace.

pub mod client;
mod endpoint;
pub mod export;
pub mod map;
mod queue;
pub mod retry;
mod warn;

use std::sync::Arc;
use std::time::Duration;

pub use endpoint::{Endpoint, EndpointError, TRACES_PATH};
pub use queue::{ExportCounters, ExportQueue, ExportStats};

use crate::config::TracingConfig;
use crate::tasks::Tasks;

/// Everything the exporter needs, from `[tracing]`.
#[derive(Debug, Clone)]
pub struct ExportConfig {
    /// Where spans go.
    pub endpoint: Endpoint,
    /// `service.name` of the exported resource.
    pub service_name: String,
    /// `service.instance.id` of the exported resource.
    pub instance_id: String,
    /// Spans the queue holds, at most.
    pub queue_spans: usize,
    /// How requests are batched, timed and retried.
    pub batching: export::Batching,
}

impl ExportConfig {
    /// The export `tracing` configures, `None` without an `otlp_endpoint`;
    /// `listen` is the native listener's address, the default instance id.
    pub fn from_config(
        tracing: &TracingConfig,
        listen: std::net::SocketAddr,
    ) -> Result<Option<ExportConfig>, EndpointError> {
        let Some(endpoint) = &tracing.otlp_endpoint else {
            return Ok(None);
        };
        Ok(Some(ExportConfig {
            endpoint: Endpoint::parse(endpoint)?,
            service_name: tracing.otlp_service_name.clone(),
            instance_id: tracing
                .otlp_instance_id
                .clone()
                .unwrap_or_else(|| listen.to_string()),
            queue_spans: tracing.otlp_queue_spans,
            batching: export::Batching {
                batch_spans: tracing.otlp_batch_spans,
                flush_interval: Duration::from_millis(tracing.otlp_flush_interval_ms),
                timeout: Duration::from_millis(tracing.otlp_timeout_ms),
                retry: retry::RetryPolicy {
                    max_retries: tracing.otlp_max_retries,
                    initial_backoff: Duration::from_millis(tracing.otlp_retry_backoff_ms),
                    max_backoff: Duration::from_millis(tracing.otlp_retry_backoff_max_ms),
                },
            },
        }))
    }
}

/// Starts the exporter task among `tasks` (inside the runtime) and returns the
/// queue that feeds it. The task ends once the queue's sender is dropped and what it
/// held is sent.
pub fn start(config: ExportConfig, tasks: &Tasks) -> ExportQueue {
    let counters = Arc::new(ExportCounters::default());
    let (queue, rx) = ExportQueue::bounded(config.queue_spans, counters.clone());
    let collector = client::Collector::new(config.endpoint.clone(), config.batching.timeout);
    let resource = map::resource(&config.service_name, &config.instance_id);
    tracing::info!(endpoint = %config.endpoint, "exporting trace spans over OTLP/HTTP");
    let exporter = export::Exporter::new(
        collector,
        resource,
        config.batching,
        counters,
        tasks.shutdown(),
    );
    tasks.spawn("otlp span exporter", exporter.run(rx));
    queue
}
