//! The service registry: live service instances, kept on the internal topic
//! `__registry`.
//!
//! Every registration, heartbeat, expiry and deregistration is a
//! [`RegistryEvent`] record on `__registry` (key `service 0x00 instance`), so the
//! live view is rebuilt on restart and anyone can watch changes by tailing the topic.
//! After a restart, instances whose last heartbeat is older than their TTL are expired
//! (and the expiry recorded); the others get one TTL of grace. The topic is compacted
//! by appending a snapshot (a Registered and a Heartbeat per live instance) and
//! truncating everything before it. Format in `docs/storage.md`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use protocol::ops::registry::{
    DescribeServiceResponse, InstanceInfo, RegistryEvent, ServiceSummary,
};
use protocol::ops::topic::ConfigEntry;

use crate::clock::Clock;
use crate::error::BrokerError;
use crate::internal::InternalLog;
use crate::shutdown::Shutdown;
use crate::topics::{TopicConfig, Topics};

/// Smallest TTL an instance may ask for.
pub const MIN_TTL_MS: u32 = 1_000;
/// Largest TTL an instance may ask for.
pub const MAX_TTL_MS: u32 = 3_600_000;
/// How often expiries are looked for.
pub const EXPIRY_CHECK_INTERVAL: Duration = Duration::from_millis(100);
/// Record header marking the records a compaction rewrote (the live view restated),
/// which watchers skip.
pub use protocol::ops::registry::SNAPSHOT_HEADER;
/// Longest service or instance name, bytes.
pub const MAX_NAME_BYTES: usize = 200;
/// Instances registered at once, at most: the live view is in memory.
pub const MAX_INSTANCES: usize = 100_000;
/// Longest address, bytes.
pub const MAX_ADDRESS_BYTES: usize = 1024;
/// Most tags an instance may carry.
pub const MAX_TAGS: usize = 64;
/// Longest tag key or value, bytes.
pub const MAX_TAG_BYTES: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Instance {
    address: String,
    tags: Vec<ConfigEntry>,
    ttl_ms: u32,
    /// When it registered and last heartbeated, by the wall clock: what is persisted.
    registered_ms: u64,
    last_heartbeat_ms: u64,
    /// When it was last heard from, on the monotonic clock: what expiry measures, so a
    /// step of the wall clock neither expires a healthy instance nor keeps a dead one.
    heard_mono_ms: u64,
    /// For an instance replayed at startup and not heard from since: how long before
    /// the startup its last heartbeat was, by the wall clock. Added to the age shown
    /// (which otherwise would restart at every broker restart), never to expiry's.
    age_at_open_ms: u64,
}

/// The live view and the log behind it.
#[derive(Debug)]
pub struct Services {
    log: InternalLog<RegistryEvent>,
    clock: Arc<dyn Clock>,
    /// (service, instance id) -> instance. The lock also orders appends.
    live: Mutex<BTreeMap<(String, String), Instance>>,
}

fn now_ms(clock: &dyn Clock) -> u64 {
    clock.wall_ms().max(0) as u64
}

fn check_name(what: &str, name: &str) -> Result<(), BrokerError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES || name.contains('\0') {
        return Err(BrokerError::InvalidRequest(format!(
            "{what} must have 1 to {MAX_NAME_BYTES} bytes and no NUL"
        )));
    }
    Ok(())
}

impl Services {
    /// Opens (creating if needed) `__registry`, replays it, expires instances whose
    /// TTL passed while the broker was down and gives the others one TTL of grace
    /// (blocking I/O).
    pub fn open(topics: &Topics, clock: Arc<dyn Clock>) -> Result<Services, BrokerError> {
        let mut live = BTreeMap::new();
        let log = InternalLog::open(
            topics,
            TopicConfig::internal_default(),
            clock.clone(),
            |event, _| apply(&mut live, &event, 0),
        )?;
        let service_registry = Services {
            log,
            clock,
            live: Mutex::new(BTreeMap::new()),
        };
        let now = now_ms(service_registry.clock.as_ref());
        let mut events = Vec::new();
        for ((service, instance_id), mut instance) in live {
            if instance
                .last_heartbeat_ms
                .saturating_add(u64::from(instance.ttl_ms))
                < now
            {
                events.push(RegistryEvent::Expired {
                    service,
                    instance_id,
                    at_ms: now,
                });
            } else {
                // Its heartbeats could not reach a broker that was down: one TTL of
                // grace, while the age shown still counts from its last heartbeat.
                instance.age_at_open_ms = now.saturating_sub(instance.last_heartbeat_ms);
                instance.heard_mono_ms = service_registry.clock.monotonic_ms();
                service_registry
                    .lock()
                    .insert((service, instance_id), instance);
            }
        }
        service_registry.append(&events)?;
        Ok(service_registry)
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<(String, String), Instance>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn append(&self, events: &[RegistryEvent]) -> Result<u64, BrokerError> {
        self.log.append(events)
    }

    async fn durable(&self, offset: u64) -> Result<(), BrokerError> {
        self.log.wait_durable(offset).await
    }

    /// Registers (or re-registers) an instance; durable on return.
    pub async fn register(
        &self,
        service: &str,
        instance_id: &str,
        address: &str,
        tags: Vec<ConfigEntry>,
        ttl_ms: u32,
    ) -> Result<(), BrokerError> {
        check_name("service", service)?;
        check_name("instance id", instance_id)?;
        if !(MIN_TTL_MS..=MAX_TTL_MS).contains(&ttl_ms) {
            return Err(BrokerError::InvalidRequest(format!(
                "ttl_ms must be within {MIN_TTL_MS}..={MAX_TTL_MS}, got {ttl_ms}"
            )));
        }
        if address.len() > MAX_ADDRESS_BYTES {
            return Err(BrokerError::InvalidRequest(format!(
                "an address is at most {MAX_ADDRESS_BYTES} bytes"
            )));
        }
        if tags.len() > MAX_TAGS
            || tags
                .iter()
                .any(|t| t.key.len() > MAX_TAG_BYTES || t.value.len() > MAX_TAG_BYTES)
        {
            return Err(BrokerError::InvalidRequest(format!(
                "at most {MAX_TAGS} tags, each key and value at most {MAX_TAG_BYTES} bytes"
            )));
        }
        let at_ms = now_ms(self.clock.as_ref());
        let event = RegistryEvent::Registered {
            service: service.into(),
            instance_id: instance_id.into(),
            address: address.into(),
            tags,
            ttl_ms,
            at_ms,
        };
        let wait = {
            let mut live = self.lock();
            let key = (service.to_string(), instance_id.to_string());
            if live.len() >= MAX_INSTANCES && !live.contains_key(&key) {
                return Err(BrokerError::ResourceLimit {
                    what: "registered instances",
                    limit: MAX_INSTANCES as u64,
                });
            }
            let wait = self.append(std::slice::from_ref(&event))?;
            apply(&mut live, &event, self.clock.monotonic_ms());
            wait
        };
        self.durable(wait).await
    }

    /// Records a heartbeat (appended, not waited on: a lost heartbeat only costs grace).
    pub fn heartbeat(&self, service: &str, instance_id: &str) -> Result<(), BrokerError> {
        let mut live = self.lock();
        let key = registered(&live, service, instance_id)?;
        let event = RegistryEvent::Heartbeat {
            service: key.0.clone(),
            instance_id: key.1.clone(),
            at_ms: now_ms(self.clock.as_ref()),
        };
        self.append(std::slice::from_ref(&event))?;
        apply(&mut live, &event, self.clock.monotonic_ms());
        Ok(())
    }

    /// Removes an instance; durable on return.
    pub async fn deregister(&self, service: &str, instance_id: &str) -> Result<(), BrokerError> {
        let wait = {
            let mut live = self.lock();
            let key = registered(&live, service, instance_id)?;
            let event = RegistryEvent::Deregistered {
                service: key.0,
                instance_id: key.1,
                at_ms: now_ms(self.clock.as_ref()),
            };
            let wait = self.append(std::slice::from_ref(&event))?;
            apply(&mut live, &event, self.clock.monotonic_ms());
            wait
        };
        self.durable(wait).await
    }

    /// Expires instances whose TTL passed; returns how many.
    pub fn expire(&self) -> Result<usize, BrokerError> {
        let now = now_ms(self.clock.as_ref());
        let now_mono = self.clock.monotonic_ms();
        let mut live = self.lock();
        let events: Vec<RegistryEvent> = live
            .iter()
            .filter(|(_, i)| now_mono.saturating_sub(i.heard_mono_ms) > u64::from(i.ttl_ms))
            .map(|((service, instance_id), _)| RegistryEvent::Expired {
                service: service.clone(),
                instance_id: instance_id.clone(),
                at_ms: now,
            })
            .collect();
        self.append(&events)?;
        for event in &events {
            tracing::info!(
                service = event.instance().0,
                instance = event.instance().1,
                "instance expired"
            );
            apply(&mut live, event, self.clock.monotonic_ms());
        }
        Ok(events.len())
    }

    /// Services with healthy instances.
    pub fn list(&self) -> Vec<ServiceSummary> {
        let mut out: Vec<ServiceSummary> = Vec::new();
        for (service, _) in self.lock().keys() {
            match out.last_mut() {
                Some(last) if last.service == *service => last.instances += 1,
                _ => out.push(ServiceSummary {
                    service: service.clone(),
                    instances: 1,
                }),
            }
        }
        out
    }

    /// A service's healthy instances carrying all `tags`.
    pub fn describe(&self, service: &str, tags: &[ConfigEntry]) -> DescribeServiceResponse {
        let now_mono = self.clock.monotonic_ms();
        let live = self.lock();
        let instances = live
            .range((service.to_string(), String::new())..)
            .take_while(|((s, _), _)| s == service)
            .filter(|(_, i)| tags.iter().all(|t| i.tags.contains(t)))
            .map(|((_, id), i)| InstanceInfo {
                instance_id: id.clone(),
                address: i.address.clone(),
                tags: i.tags.clone(),
                ttl_ms: i.ttl_ms,
                since_heartbeat_ms: i
                    .age_at_open_ms
                    .saturating_add(now_mono.saturating_sub(i.heard_mono_ms)),
            })
            .collect();
        DescribeServiceResponse { instances }
    }

    /// Compacts `__registry` if the policy says so: a snapshot of the live view (a
    /// Registered and a Heartbeat per live instance, each marked with
    /// [`SNAPSHOT_HEADER`]) replaces the history (blocking I/O).
    pub fn compact(&self) -> Result<(), BrokerError> {
        let live = self.lock();
        self.log
            .compact(2 * live.len() as u64, || self.snapshot(&live))
            .map(|_| ())
    }

    fn snapshot(&self, live: &BTreeMap<(String, String), Instance>) -> Result<(), BrokerError> {
        let mut events = Vec::with_capacity(live.len() * 2);
        for ((service, instance_id), i) in live.iter() {
            events.push(RegistryEvent::Registered {
                service: service.clone(),
                instance_id: instance_id.clone(),
                address: i.address.clone(),
                tags: i.tags.clone(),
                ttl_ms: i.ttl_ms,
                at_ms: i.registered_ms,
            });
            events.push(RegistryEvent::Heartbeat {
                service: service.clone(),
                instance_id: instance_id.clone(),
                at_ms: i.last_heartbeat_ms,
            });
        }
        // Marked, so that watchers reading the topic do not take a restatement of the
        // live view for fresh registrations.
        self.log
            .append_with_headers(&events, &[(SNAPSHOT_HEADER, b"1")])
            .map(|_| ())
    }
}

/// The key of a registered instance, or the error for one that is not.
fn registered(
    live: &BTreeMap<(String, String), Instance>,
    service: &str,
    instance_id: &str,
) -> Result<(String, String), BrokerError> {
    let key = (service.to_string(), instance_id.to_string());
    if !live.contains_key(&key) {
        return Err(BrokerError::UnknownInstance {
            service: service.into(),
            instance: instance_id.into(),
        });
    }
    Ok(key)
}

/// Applies an event to the live view (replay and live updates share this); `now_mono`
/// is when it is heard, on the monotonic clock.
fn apply(live: &mut BTreeMap<(String, String), Instance>, event: &RegistryEvent, now_mono: u64) {
    let (service, instance_id) = event.instance();
    let key = (service.to_string(), instance_id.to_string());
    match event {
        RegistryEvent::Registered {
            address,
            tags,
            ttl_ms,
            at_ms,
            ..
        } => {
            live.insert(
                key,
                Instance {
                    address: address.clone(),
                    tags: tags.clone(),
                    ttl_ms: *ttl_ms,
                    registered_ms: *at_ms,
                    last_heartbeat_ms: *at_ms,
                    heard_mono_ms: now_mono,
                    age_at_open_ms: 0,
                },
            );
        }
        RegistryEvent::Heartbeat { at_ms, .. } => {
            if let Some(instance) = live.get_mut(&key) {
                instance.last_heartbeat_ms = instance.last_heartbeat_ms.max(*at_ms);
                instance.heard_mono_ms = instance.heard_mono_ms.max(now_mono);
                instance.age_at_open_ms = 0;
            }
        }
        RegistryEvent::Expired { .. } | RegistryEvent::Deregistered { .. } => {
            live.remove(&key);
        }
    }
}

/// Expires instances every [`EXPIRY_CHECK_INTERVAL`] until shutdown.
pub async fn run_expiry(services: Arc<Services>, shutdown: Shutdown) {
    crate::tasks::every(EXPIRY_CHECK_INTERVAL, shutdown, || {
        if let Err(error) = services.expire() {
            tracing::warn!(%error, "registry expiry failed");
        }
        std::future::ready(())
    })
    .await
}

#[cfg(test)]
mod tests;
