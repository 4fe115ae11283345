//! Routing rules on `__routes`, and publishing by routing key.
//!
//! Rules live in memory in a [`matcher::Matcher`] trie plus a map by id; every change
//! is a [`RouteEvent`] record on the internal topic `__routes`, durable before it is
//! acknowledged and replayed at startup. Publishing appends the request's batch,
//! unchanged, to every topic with a matching rule, once per topic.

pub mod matcher;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use protocol::ops::produce::AckLevel;
use protocol::ops::routes::{PublishRequest, PublishResponse, RouteEvent, RouteInfo, Routed};
use protocol::ops::topic::ConfigEntry;

use crate::clock::Clock;
use crate::error::BrokerError;
use crate::internal::InternalLog;
use crate::partition::Partition;
use crate::topics::{TopicConfig, Topics};
use crate::traces::{self, RoutedTo, Traces};
use matcher::Matcher;

/// Rules at most.
pub const MAX_ROUTES: usize = 100_000;

#[derive(Debug, Default)]
struct Table {
    matcher: Matcher,
    routes: BTreeMap<u64, RouteInfo>,
    next_id: u64,
}

impl Table {
    fn apply(&mut self, event: &RouteEvent) {
        match event {
            RouteEvent::Added(route) => {
                self.matcher.insert(route.route_id, &route.pattern);
                self.next_id = self.next_id.max(route.route_id + 1);
                self.routes.insert(route.route_id, route.clone());
            }
            RouteEvent::Deleted { route_id } => {
                if let Some(route) = self.routes.remove(route_id) {
                    self.matcher.remove(*route_id, &route.pattern);
                }
                // Ids are never reused, even once the rule's Added record is compacted
                // away: a compaction keeps the highest id as a Deleted record.
                self.next_id = self.next_id.max(route_id + 1);
            }
        }
    }
}

/// The routing rules.
#[derive(Debug)]
pub struct Routes {
    log: InternalLog<RouteEvent>,
    table: RwLock<Table>,
    topics: Arc<Topics>,
    unroutable_topic: Option<String>,
    traces: Arc<Traces>,
}

impl Routes {
    /// Opens (creating if needed) `__routes` and replays it (blocking I/O).
    pub fn open(
        topics: Arc<Topics>,
        unroutable_topic: Option<String>,
        traces: Arc<Traces>,
        clock: Arc<dyn Clock>,
    ) -> Result<Routes, BrokerError> {
        let mut table = Table {
            next_id: 1,
            ..Table::default()
        };
        let config = TopicConfig::internal_default();
        let log = InternalLog::open(&topics, config, clock, |event, _| table.apply(&event))?;
        tracing::info!(routes = table.routes.len(), "restored routing rules");
        Ok(Routes {
            log,
            table: RwLock::new(table),
            topics,
            unroutable_topic,
            traces,
        })
    }

    fn append(&self, event: &RouteEvent) -> Result<u64, BrokerError> {
        self.log.append(std::slice::from_ref(event))
    }

    /// Adds a rule; durable on return.
    pub async fn add(
        &self,
        pattern: String,
        topic: String,
        headers: Vec<ConfigEntry>,
    ) -> Result<u64, BrokerError> {
        matcher::validate_pattern(&pattern).map_err(BrokerError::InvalidRequest)?;
        if self.topics.get(&topic)?.internal {
            return Err(BrokerError::InvalidRequest(format!(
                "{topic:?} is an internal topic; routes cannot target it"
            )));
        }
        let (id, wait) = {
            let mut table = self.table.write().unwrap_or_else(|p| p.into_inner());
            if table.routes.len() >= MAX_ROUTES {
                return Err(BrokerError::ResourceLimit {
                    what: "routing rules",
                    limit: MAX_ROUTES as u64,
                });
            }
            let id = table.next_id;
            let event = RouteEvent::Added(RouteInfo {
                route_id: id,
                pattern,
                topic,
                headers,
            });
            let wait = self.append(&event)?;
            table.apply(&event);
            (id, wait)
        };
        self.log.wait_durable(wait).await?;
        Ok(id)
    }

    /// Deletes a rule; durable on return.
    pub async fn delete(&self, route_id: u64) -> Result<(), BrokerError> {
        let wait = {
            let mut table = self.table.write().unwrap_or_else(|p| p.into_inner());
            if !table.routes.contains_key(&route_id) {
                return Err(BrokerError::UnknownRoute(route_id));
            }
            let event = RouteEvent::Deleted { route_id };
            let wait = self.append(&event)?;
            table.apply(&event);
            wait
        };
        self.log.wait_durable(wait).await
    }

    /// Compacts `__routes` if the policy says so (blocking I/O): the live rules are
    /// appended (and, if the highest id ever given is not among them, a Deleted record
    /// for it, so ids stay unique) and what came before is truncated. Replaying the
    /// result gives the same table.
    pub fn compact(&self) -> Result<(), BrokerError> {
        // Held (a read lock is enough: adds and deletes take it for writing) so no
        // change slips in between the snapshot and the truncation; publishes go on.
        let table = self.table.read().unwrap_or_else(|p| p.into_inner());
        let live = table.routes.len() as u64 + 1;
        self.log
            .compact(live, || Self::snapshot(&self.log, &table))
            .map(|_| ())
    }

    fn snapshot(log: &InternalLog<RouteEvent>, table: &Table) -> Result<(), BrokerError> {
        let mut events: Vec<RouteEvent> = table
            .routes
            .values()
            .cloned()
            .map(RouteEvent::Added)
            .collect();
        let highest = table.next_id - 1;
        if highest > 0 && !table.routes.contains_key(&highest) {
            events.push(RouteEvent::Deleted { route_id: highest });
        }
        log.append(&events).map(|_| ())
    }

    /// Every rule, by id.
    pub fn list(&self) -> Vec<RouteInfo> {
        self.table
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .routes
            .values()
            .cloned()
            .collect()
    }

    /// Topics whose rules match the key and headers.
    pub fn destinations(&self, routing_key: &str, headers: &[ConfigEntry]) -> BTreeSet<String> {
        let table = self.table.read().unwrap_or_else(|p| p.into_inner());
        table
            .matcher
            .matches(routing_key)
            .into_iter()
            .filter_map(|id| table.routes.get(&id))
            .filter(|route| route.headers.iter().all(|h| headers.contains(h)))
            .map(|route| route.topic.clone())
            .collect()
    }

    /// Appends the batch to every matching topic (synchronously, so that publishes on
    /// one connection land in the order sent). Returns what to wait on.
    pub fn append_routed(
        &self,
        request: &PublishRequest,
    ) -> Result<Vec<RoutedAppend>, BrokerError> {
        matcher::validate_key(&request.routing_key).map_err(BrokerError::InvalidRequest)?;
        let mut names = self.destinations(&request.routing_key, &request.headers);
        if names.is_empty() {
            match &self.unroutable_topic {
                Some(topic) => {
                    names.insert(topic.clone());
                }
                None => return Err(BrokerError::Unroutable(request.routing_key.clone())),
            }
        }
        let received_us = traces::now_us();
        // Every destination is looked up before the first append: a rule whose topic
        // was deleted fails the publish as a whole, instead of after some topics
        // already have the batch (a retry would then duplicate it there).
        let mut destinations = Vec::with_capacity(names.len());
        for name in names {
            let topic = self.topics.get(&name)?;
            if !topic.internal {
                destinations.push((name, topic));
            }
        }
        let mut appended = Vec::with_capacity(destinations.len());
        for (name, topic) in destinations {
            let partition_id = topic.next_round_robin();
            let partition = topic.partition(partition_id)?.clone();
            let info = partition.append(&request.batch)?;
            appended.push(RoutedAppend {
                topic: name,
                partition_id,
                partition,
                base_offset: info.base_offset,
                next_offset: info.next_offset,
            });
        }
        self.trace_route(request, &appended, received_us);
        Ok(appended)
    }

    /// For traced messages: a `route` span naming the destinations, with a `produce`
    /// span per destination below it (deliveries hang off those).
    fn trace_route(&self, request: &PublishRequest, appended: &[RoutedAppend], received_us: u64) {
        let destinations: Vec<RoutedTo<'_>> = appended
            .iter()
            .map(|a| RoutedTo {
                topic: &a.topic,
                partition: a.partition_id,
                base_offset: a.base_offset,
            })
            .collect();
        self.traces.on_route(
            &request.routing_key,
            &request.batch,
            &destinations,
            received_us,
        );
    }
}

/// One destination a published batch was appended to.
#[derive(Debug)]
pub struct RoutedAppend {
    topic: String,
    partition_id: u32,
    partition: Arc<Partition>,
    base_offset: u64,
    next_offset: u64,
}

/// Waits until every destination reached the ack level.
pub async fn acknowledge(
    appended: Vec<RoutedAppend>,
    ack: AckLevel,
    timeout_ms: u32,
) -> Result<PublishResponse, BrokerError> {
    let timeout = Duration::from_millis(u64::from(timeout_ms.max(1)));
    let mut routed = Vec::with_capacity(appended.len());
    for append in appended {
        if ack == AckLevel::Durable {
            append
                .partition
                .wait_durable(append.next_offset, timeout)
                .await?;
        }
        let base_offset = (ack != AckLevel::None).then_some(append.base_offset);
        routed.push(Routed {
            topic: append.topic,
            partition: append.partition_id,
            base_offset,
        });
    }
    Ok(PublishResponse { routed })
}

/// A batch as bytes, for tests.
#[cfg(test)]
fn batch(value: &[u8]) -> bytes::Bytes {
    let mut builder = protocol::batch::BatchBuilder::new();
    builder.push(1, None, Some(value), &[]).unwrap();
    builder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_traces(topics: &Topics) -> Arc<Traces> {
        let tasks = crate::tasks::Tasks::new();
        Traces::open(topics, &tasks, 0.0, clock()).unwrap()
    }

    /// A publish as the handler serves it: appended now, answered at the ack level.
    async fn publish(
        routes: &Routes,
        request: PublishRequest,
    ) -> Result<PublishResponse, BrokerError> {
        let appended = routes.append_routed(&request)?;
        acknowledge(appended, request.ack, request.timeout_ms).await
    }

    fn clock() -> Arc<dyn Clock> {
        Arc::new(crate::clock::SystemClock::new())
    }

    impl Routes {
        fn compact_now(&self) {
            let table = self.table.read().unwrap();
            self.log
                .compact_now(|| Self::snapshot(&self.log, &table))
                .unwrap();
        }
    }

    #[tokio::test]
    async fn compaction_keeps_the_rules_and_never_reuses_an_id() {
        let dir = tempfile::tempdir().unwrap();
        let last_id = {
            let topics = Arc::new(Topics::open(dir.path()).unwrap());
            let config = TopicConfig {
                partitions: 1,
                ..TopicConfig::internal_default()
            };
            topics.create("t", config, false).unwrap();
            let routes = Routes::open(topics.clone(), None, test_traces(&topics), clock()).unwrap();
            let kept = routes.add("a.#".into(), "t".into(), vec![]).await.unwrap();
            let mut last = kept;
            for _ in 0..10 {
                last = routes.add("b".into(), "t".into(), vec![]).await.unwrap();
                routes.delete(last).await.unwrap();
            }
            routes.compact_now();
            assert_eq!(
                routes.log.partition().start_offset(),
                21,
                "the churn is gone"
            );
            assert_eq!(
                routes.log.partition().end_offset() - routes.log.partition().start_offset(),
                2
            );
            last
        };
        let topics = Arc::new(Topics::open(dir.path()).unwrap());
        let routes = Routes::open(topics.clone(), None, test_traces(&topics), clock()).unwrap();
        let listed: Vec<String> = routes.list().into_iter().map(|r| r.pattern).collect();
        assert_eq!(listed, ["a.#"]);
        let next = routes.add("c".into(), "t".into(), vec![]).await.unwrap();
        assert!(next > last_id, "id {next} reused (last given {last_id})");
    }

    #[tokio::test]
    async fn a_rule_to_a_deleted_topic_fails_the_publish_before_any_append() {
        let dir = tempfile::tempdir().unwrap();
        let topics = Arc::new(Topics::open(dir.path()).unwrap());
        for name in ["a", "b"] {
            let config = TopicConfig {
                partitions: 1,
                ..TopicConfig::internal_default()
            };
            topics.create(name, config, false).unwrap();
        }
        let routes = Routes::open(topics.clone(), None, test_traces(&topics), clock()).unwrap();
        for topic in ["a", "b"] {
            routes.add("k".into(), topic.into(), vec![]).await.unwrap();
        }
        topics.delete("b").unwrap();
        let request = PublishRequest {
            routing_key: "k".into(),
            headers: vec![],
            ack: AckLevel::Appended,
            timeout_ms: 5000,
            batch: batch(b"x"),
        };
        assert!(matches!(
            publish(&routes, request).await,
            Err(BrokerError::UnknownTopic(_))
        ));
        let a = topics.get("a").unwrap();
        assert_eq!(
            a.partition(0).unwrap().end_offset(),
            0,
            "nothing half-published"
        );
    }

    #[tokio::test]
    async fn rules_route_publishes_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let topics = Arc::new(Topics::open(dir.path()).unwrap());
            for name in ["all", "eu", "urgent"] {
                let config = TopicConfig {
                    partitions: 1,
                    ..TopicConfig::internal_default()
                };
                topics.create(name, config, false).unwrap();
            }
            let routes = Routes::open(topics.clone(), None, test_traces(&topics), clock()).unwrap();
            routes
                .add("orders.#".into(), "all".into(), vec![])
                .await
                .unwrap();
            routes
                .add("orders.*.eu".into(), "eu".into(), vec![])
                .await
                .unwrap();
            routes
                .add("orders.*.eu".into(), "all".into(), vec![])
                .await
                .unwrap();
            let high = vec![ConfigEntry {
                key: "priority".into(),
                value: "high".into(),
            }];
            let urgent = routes
                .add("#".into(), "urgent".into(), high.clone())
                .await
                .unwrap();
            assert!(routes
                .add("a..b".into(), "all".into(), vec![])
                .await
                .is_err());
            assert!(routes
                .add("a".into(), "missing".into(), vec![])
                .await
                .is_err());

            let request = |key: &str, headers: Vec<ConfigEntry>| PublishRequest {
                routing_key: key.into(),
                headers,
                ack: AckLevel::Durable,
                timeout_ms: 5000,
                batch: batch(b"x"),
            };
            let out = publish(&routes, request("orders.created.eu", vec![]))
                .await
                .unwrap();
            let routed: Vec<&str> = out.routed.iter().map(|r| r.topic.as_str()).collect();
            assert_eq!(
                routed,
                ["all", "eu"],
                "once per topic even when two rules match"
            );
            let out = publish(&routes, request("payments.done", high))
                .await
                .unwrap();
            assert_eq!(out.routed.len(), 1);
            assert!(matches!(
                publish(&routes, request("payments.done", vec![])).await,
                Err(BrokerError::Unroutable(_))
            ));
            routes.delete(urgent).await.unwrap();
            assert!(matches!(
                routes.delete(urgent).await,
                Err(BrokerError::UnknownRoute(_))
            ));
            assert_eq!(
                topics
                    .get("all")
                    .unwrap()
                    .partition(0)
                    .unwrap()
                    .end_offset(),
                1
            );
            topics.close_all();
        }
        let topics = Arc::new(Topics::open(dir.path()).unwrap());
        let traces = test_traces(&topics);
        let routes = Routes::open(topics, Some("all".into()), traces, clock()).unwrap();
        assert_eq!(routes.list().len(), 3);
        assert_eq!(
            routes.destinations("orders.x.eu", &[]),
            BTreeSet::from(["all".to_string(), "eu".to_string()])
        );
        let next = routes.add("x".into(), "eu".into(), vec![]).await.unwrap();
        assert_eq!(next, 5, "ids are never reused");
    }
}
