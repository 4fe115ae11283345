//! Service discovery: register instances, discover healthy ones, watch changes.
//!
//! An instance registers with a TTL and a background task heartbeats it (every third
//! of the TTL) until [`InstanceHandle::close`] deregisters it. If the broker forgot
//! the instance (it expired, or the broker lost it), the heartbeat registers it again.
//! Watching tails the broker's internal topic `__registry`, where every change is a
//! record.

use std::time::Duration;

use protocol::ops::registry::{
    DescribeServiceRequest, InstanceInfo, InstanceRequest, RegisterRequest, RegistryEvent,
    ServiceSummary, REGISTRY_TOPIC,
};
use protocol::ops::Empty;
use protocol::{ErrorCode, Request, Response};
use tokio::task::JoinHandle;

use crate::admin::{entries, expect_response};
use crate::connection::Client;
use crate::error::ClientError;
use crate::fetcher::PartitionReader;
use protocol::ops::registry::SNAPSHOT_HEADER;

/// What an instance registers.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Service name.
    pub service: String,
    /// Instance id, unique within the service.
    pub instance_id: String,
    /// Where it is reached.
    pub address: String,
    /// Tags for filtering, e.g. `("zone", "eu-1")`.
    pub tags: Vec<(String, String)>,
    /// Expired this long after its last heartbeat (1 s ..= 1 h).
    pub ttl: Duration,
}

impl Registration {
    fn request(&self) -> Request {
        Request::RegisterInstance(RegisterRequest {
            service: self.service.clone(),
            instance_id: self.instance_id.clone(),
            address: self.address.clone(),
            tags: entries(&self.tags),
            ttl_ms: u32::try_from(self.ttl.as_millis()).unwrap_or(u32::MAX),
        })
    }
}

/// A registered instance, heartbeating in the background.
#[derive(Debug)]
pub struct InstanceHandle {
    client: Client,
    registration: Registration,
    heartbeat: JoinHandle<()>,
}

impl InstanceHandle {
    /// The registration.
    pub fn registration(&self) -> &Registration {
        &self.registration
    }

    /// Stops heartbeating and deregisters the instance.
    pub async fn close(self) -> Result<(), ClientError> {
        self.heartbeat.abort();
        let request = Request::DeregisterInstance(InstanceRequest {
            service: self.registration.service.clone(),
            instance_id: self.registration.instance_id.clone(),
        });
        expect_response!(self.client.request(request).await?, DeregisterInstance).map(drop)
    }
}

impl Drop for InstanceHandle {
    /// Dropping without [`close`](InstanceHandle::close) stops the heartbeats; the
    /// broker expires the instance after its TTL.
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// Changes of the registry, oldest first. Created by [`Client::watch_services`].
#[derive(Debug)]
pub struct ServiceWatch {
    reader: PartitionReader,
    service: Option<String>,
}

impl ServiceWatch {
    /// The next registration, expiry or deregistration (heartbeats are skipped) of the
    /// watched service (or of any service).
    pub async fn next(&mut self) -> Result<RegistryEvent, ClientError> {
        loop {
            let record = self.reader.next().await?;
            // A compaction restates the live view; nothing happened to anyone.
            if record.headers.iter().any(|(k, _)| k == SNAPSHOT_HEADER) {
                continue;
            }
            let Some(value) = record.value else { continue };
            let Ok(event) = RegistryEvent::decode(value) else {
                continue;
            };
            if matches!(event, RegistryEvent::Heartbeat { .. }) {
                continue;
            }
            if self
                .service
                .as_deref()
                .is_none_or(|s| s == event.instance().0)
            {
                return Ok(event);
            }
        }
    }
}

/// Client-side load balancing: round robin over a service's healthy instances.
#[derive(Debug)]
pub struct RoundRobin {
    client: Client,
    service: String,
    tags: Vec<(String, String)>,
    instances: Vec<InstanceInfo>,
    next: usize,
}

impl RoundRobin {
    /// Reloads the healthy instances.
    pub async fn refresh(&mut self) -> Result<(), ClientError> {
        let tags: Vec<(&str, &str)> = self
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.instances = self.client.discover(&self.service, &tags).await?;
        Ok(())
    }

    /// The next instance in turn, `None` if the service has none.
    pub fn pick(&mut self) -> Option<&InstanceInfo> {
        if self.instances.is_empty() {
            return None;
        }
        let index = self.next % self.instances.len();
        self.next = self.next.wrapping_add(1);
        self.instances.get(index)
    }
}

impl Client {
    /// Registers an instance and keeps it alive until the handle is closed.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use client::{Client, Registration};
    ///
    /// # async fn demo() -> Result<(), client::ClientError> {
    /// let client = Client::connect("127.0.0.1:7171").await?;
    /// let me = client
    ///     .register_instance(Registration {
    ///         service: "billing".into(),
    ///         instance_id: "billing-1".into(),
    ///         address: "10.0.0.7:8080".into(),
    ///         tags: vec![("zone".into(), "a".into())],
    ///         ttl: Duration::from_secs(10),
    ///     })
    ///     .await?;
    /// let peers = client.discover("billing", &[("zone", "a")]).await?;
    /// println!("{} healthy instance(s)", peers.len());
    /// me.close().await?;
    /// # Ok(()) }
    /// ```
    pub async fn register_instance(
        &self,
        registration: Registration,
    ) -> Result<InstanceHandle, ClientError> {
        expect_response!(
            self.request(registration.request()).await?,
            RegisterInstance
        )?;
        let heartbeat = {
            let client = self.clone();
            let registration = registration.clone();
            tokio::spawn(async move {
                let mut tick =
                    tokio::time::interval((registration.ttl / 3).max(Duration::from_millis(100)));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let beat = Request::InstanceHeartbeat(InstanceRequest {
                        service: registration.service.clone(),
                        instance_id: registration.instance_id.clone(),
                    });
                    match client.request(beat).await {
                        Ok(_) => {}
                        Err(e) if e.code() == Some(ErrorCode::UnknownInstance) => {
                            // Expired or forgotten: register again.
                            let _ = client.request(registration.request()).await;
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "heartbeat failed; retrying at the next tick")
                        }
                    }
                }
            })
        };
        Ok(InstanceHandle {
            client: self.clone(),
            registration,
            heartbeat,
        })
    }

    /// Services with healthy instances.
    pub async fn list_services(&self) -> Result<Vec<ServiceSummary>, ClientError> {
        expect_response!(
            self.request(Request::ListServices(Empty)).await?,
            ListServices
        )
        .map(|list| list.services)
    }

    /// Healthy instances of `service` carrying all `tags`.
    pub async fn discover(
        &self,
        service: &str,
        tags: &[(&str, &str)],
    ) -> Result<Vec<InstanceInfo>, ClientError> {
        let request = Request::DescribeService(DescribeServiceRequest {
            service: service.to_string(),
            tags: entries(tags),
        });
        expect_response!(self.request(request).await?, DescribeService).map(|d| d.instances)
    }

    /// A round-robin balancer over `service`'s healthy instances (loaded now; call
    /// [`RoundRobin::refresh`] to reload).
    pub async fn round_robin(
        &self,
        service: &str,
        tags: &[(&str, &str)],
    ) -> Result<RoundRobin, ClientError> {
        let mut balancer = RoundRobin {
            client: self.clone(),
            service: service.to_string(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            instances: Vec::new(),
            next: 0,
        };
        balancer.refresh().await?;
        Ok(balancer)
    }

    /// Watches registrations, expiries and deregistrations from now on, of one
    /// service or (with `None`) all.
    pub async fn watch_services(&self, service: Option<&str>) -> Result<ServiceWatch, ClientError> {
        let described = self.describe_topic(REGISTRY_TOPIC).await?;
        let end = described.partitions.first().map_or(0, |p| p.end_offset);
        Ok(ServiceWatch {
            reader: self.partition_reader(REGISTRY_TOPIC, &[(0, end)]),
            service: service.map(str::to_string),
        })
    }
}
