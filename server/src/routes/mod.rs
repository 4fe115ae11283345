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
        let routes = Routes {
            log,
            table: RwLock::new(table),
            topics,
            unroutable_topic,
            traces,
        };
        routes.finish_interrupted_deletes()?;
        Ok(routes)
    }

    fn append(&self, event: &RouteEvent) -> Result<u64, BrokerError> {
        self.log.append(std::slice::from_ref(event))
    }

    /// Adds a rule; durable on return. A rule equal to an existing one (same pattern,
    /// topic and header matches, in any order) is refused: it would never change what
    /// a publish does, and deleting "the" rule later would leave its twin behind.
    pub async fn add(
        &self,
        pattern: String,
        topic: String,
        headers: Vec<ConfigEntry>,
    ) -> Result<u64, BrokerError> {
        matcher::validate_pattern(&pattern).map_err(BrokerError::InvalidRequest)?;
        let (id, wait) = {
            let mut table = self.table.write().unwrap_or_else(|p| p.into_inner());
            // Checked under the table lock: a topic delete removes the topic first and
            // then its rules under this lock, so a rule added meanwhile is either
            // refused here or removed there, never left dangling.
            if self.topics.get(&topic)?.internal {
                return Err(BrokerError::InvalidRequest(format!(
                    "{topic:?} is an internal topic; routes cannot target it"
                )));
            }
            if let Some(twin) = table
                .routes
                .values()
                .find(|r| same_rule(r, &pattern, &topic, &headers))
            {
                return Err(BrokerError::InvalidRequest(format!(
                    "routing rule {} already routes {pattern:?} to {topic:?} with the same header matches",
                    twin.route_id
                )));
            }
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

    /// Deletes a rule; durable on return. Returns the rule deleted.
    pub async fn delete(&self, route_id: u64) -> Result<RouteInfo, BrokerError> {
        let (route, wait) = {
            let mut table = self.table.write().unwrap_or_else(|p| p.into_inner());
            let Some(route) = table.routes.get(&route_id).cloned() else {
                return Err(BrokerError::UnknownRoute(route_id));
            };
            let event = RouteEvent::Deleted { route_id };
            let wait = self.append(&event)?;
            table.apply(&event);
            (route, wait)
        };
        self.log.wait_durable(wait).await?;
        Ok(route)
    }

    /// Deletes every rule whose destination is `topic` (called once the topic is
    /// gone, as deleting a RabbitMQ queue removes its bindings); durable on return.
    /// Returns the rules deleted.
    pub async fn delete_for_topic(&self, topic: &str) -> Result<Vec<RouteInfo>, BrokerError> {
        let (removed, wait) = self.remove_where(|route| route.topic == topic)?;
        if let Some(wait) = wait {
            self.log.wait_durable(wait).await?;
        }
        Ok(removed)
    }

    /// Appends a Deleted record for every rule `doomed` selects and applies them.
    /// Returns the rules and the offset to wait on (none if nothing matched).
    fn remove_where(
        &self,
        doomed: impl Fn(&RouteInfo) -> bool,
    ) -> Result<(Vec<RouteInfo>, Option<u64>), BrokerError> {
        let mut table = self.table.write().unwrap_or_else(|p| p.into_inner());
        let removed: Vec<RouteInfo> = table
            .routes
            .values()
            .filter(|r| doomed(r))
            .cloned()
            .collect();
        if removed.is_empty() {
            return Ok((removed, None));
        }
        let events: Vec<RouteEvent> = removed
            .iter()
            .map(|r| RouteEvent::Deleted {
                route_id: r.route_id,
            })
            .collect();
        let wait = self.log.append(&events)?;
        for event in &events {
            table.apply(event);
        }
        Ok((removed, Some(wait)))
    }

    /// Finishes topic deletions a crash interrupted (blocking I/O, at startup): a rule
    /// whose topic is gone, directory and all, is deleted. A rule whose topic has a
    /// directory that did not open as a topic is kept (the operator may repair the
    /// topic) and logged; publishes it matches are refused naming it.
    fn finish_interrupted_deletes(&self) -> Result<(), BrokerError> {
        let (removed, _) = self.remove_where(|route| {
            self.topics.get(&route.topic).is_err() && !self.topics.has_directory(&route.topic)
        })?;
        for route in &removed {
            tracing::warn!(route = route.route_id, pattern = %route.pattern, topic = %route.topic, "deleted a routing rule whose topic was deleted (the broker stopped before removing the rule)");
        }
        for route in self.list() {
            if self.topics.get(&route.topic).is_err() {
                tracing::warn!(route = route.route_id, pattern = %route.pattern, topic = %route.topic, "routing rule targets a topic that did not open; publishes it matches are refused until the topic is repaired or the rule deleted");
            }
        }
        Ok(())
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

    /// The routing-key pattern of rule `route_id`, if it exists.
    pub fn pattern(&self, route_id: u64) -> Option<String> {
        let table = self.table.read().unwrap_or_else(|p| p.into_inner());
        table.routes.get(&route_id).map(|r| r.pattern.clone())
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

    /// Topics whose rules match the key and headers, each with the first (lowest-id)
    /// rule that sends it there, so that an error can name the rule.
    pub fn destinations(
        &self,
        routing_key: &str,
        headers: &[ConfigEntry],
    ) -> BTreeMap<String, RouteInfo> {
        let table = self.table.read().unwrap_or_else(|p| p.into_inner());
        let mut matched: Vec<&RouteInfo> = table
            .matcher
            .matches(routing_key)
            .into_iter()
            .filter_map(|id| table.routes.get(&id))
            .filter(|route| route.headers.iter().all(|h| headers.contains(h)))
            .collect();
        matched.sort_by_key(|route| route.route_id);
        let mut destinations = BTreeMap::new();
        for route in matched {
            destinations
                .entry(route.topic.clone())
                .or_insert_with(|| route.clone());
        }
        destinations
    }

    /// Appends the batch to every matching topic (synchronously, so that publishes on
    /// one connection land in the order sent). Returns what to wait on.
    pub fn append_routed(
        &self,
        request: &PublishRequest,
    ) -> Result<Vec<RoutedAppend>, BrokerError> {
        matcher::validate_key(&request.routing_key).map_err(BrokerError::InvalidRequest)?;
        let mut names: Vec<(String, Option<RouteInfo>)> = self
            .destinations(&request.routing_key, &request.headers)
            .into_iter()
            .map(|(topic, route)| (topic, Some(route)))
            .collect();
        if names.is_empty() {
            match &self.unroutable_topic {
                Some(topic) => names.push((topic.clone(), None)),
                None => return Err(BrokerError::Unroutable(request.routing_key.clone())),
            }
        }
        let received_us = traces::now_us();
        // Every destination is looked up before the first append: a rule whose topic
        // is missing fails the publish as a whole, instead of after some topics
        // already have the batch (a retry would then duplicate it there).
        let mut destinations = Vec::with_capacity(names.len());
        for (name, route) in names {
            let topic = match (self.topics.get(&name), route) {
                (Ok(topic), _) => topic,
                (Err(_), Some(route)) => {
                    return Err(BrokerError::DanglingRoute {
                        route_id: route.route_id,
                        pattern: route.pattern,
                        topic: route.topic,
                    })
                }
                (Err(error), None) => return Err(error),
            };
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

/// Whether `route` is the rule `pattern` to `topic` matching `headers` (in any order).
fn same_rule(route: &RouteInfo, pattern: &str, topic: &str, headers: &[ConfigEntry]) -> bool {
    let set = |headers: &[ConfigEntry]| -> BTreeSet<(String, String)> {
        headers
            .iter()
            .map(|h| (h.key.clone(), h.value.clone()))
            .collect()
    };
    route.pattern == pattern && route.topic == topic && set(&route.headers) == set(headers)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch as bytes.
    fn batch(value: &[u8]) -> bytes::Bytes {
        let mut builder = protocol::batch::BatchBuilder::new();
        builder.push(1, None, Some(value), &[]).unwrap();
        builder.finish()
    }

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

    fn one_partition() -> TopicConfig {
        TopicConfig {
            partitions: 1,
            ..TopicConfig::internal_default()
        }
    }

    fn entry(key: &str, value: &str) -> ConfigEntry {
        ConfigEntry {
            key: key.into(),
            value: value.into(),
        }
    }

    #[tokio::test]
    async fn a_rule_to_a_missing_topic_fails_the_publish_before_any_append_and_names_the_rule() {
        let dir = tempfile::tempdir().unwrap();
        let topics = Arc::new(Topics::open(dir.path()).unwrap());
        for name in ["a", "b"] {
            topics.create(name, one_partition(), false).unwrap();
        }
        let routes = Routes::open(topics.clone(), None, test_traces(&topics), clock()).unwrap();
        for topic in ["a", "b"] {
            routes.add("k".into(), topic.into(), vec![]).await.unwrap();
        }
        // The topic alone goes (what a DeleteTopic does before it deletes the rules).
        topics.delete("b").unwrap();
        let request = PublishRequest {
            routing_key: "k".into(),
            headers: vec![],
            ack: AckLevel::Appended,
            timeout_ms: 5000,
            batch: batch(b"x"),
        };
        let refused = publish(&routes, request).await.unwrap_err();
        assert!(
            matches!(refused, BrokerError::DanglingRoute { route_id: 2, .. }),
            "{refused:?}"
        );
        assert_eq!(refused.code(), protocol::ErrorCode::UnknownTopic);
        let message = refused.to_string();
        assert!(message.contains("routing rule 2 (k -> b)"), "{message}");
        let a = topics.get("a").unwrap();
        assert_eq!(
            a.partition(0).unwrap().end_offset(),
            0,
            "nothing half-published"
        );
    }

    #[tokio::test]
    async fn exact_duplicates_are_refused_and_near_ones_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let topics = Arc::new(Topics::open(dir.path()).unwrap());
        for name in ["a", "b"] {
            topics.create(name, one_partition(), false).unwrap();
        }
        let routes = Routes::open(topics.clone(), None, test_traces(&topics), clock()).unwrap();
        let two = vec![entry("x", "1"), entry("y", "2")];
        let first = routes.add("k.*".into(), "a".into(), two).await.unwrap();
        let swapped = vec![entry("y", "2"), entry("x", "1")];
        let refused = routes
            .add("k.*".into(), "a".into(), swapped)
            .await
            .unwrap_err();
        assert_eq!(refused.code(), protocol::ErrorCode::InvalidRequest);
        assert!(
            refused
                .to_string()
                .contains(&format!("routing rule {first} already routes")),
            "{refused}"
        );
        // Another topic, pattern or header set is another rule.
        routes.add("k.*".into(), "b".into(), vec![]).await.unwrap();
        routes.add("k.#".into(), "a".into(), vec![]).await.unwrap();
        routes
            .add("k.*".into(), "a".into(), vec![entry("x", "1")])
            .await
            .unwrap();
        routes.add("k.*".into(), "a".into(), vec![]).await.unwrap();
        assert_eq!(routes.list().len(), 5);
        // Once deleted, the rule may be added again.
        routes.delete(first).await.unwrap();
        routes
            .add(
                "k.*".into(),
                "a".into(),
                vec![entry("x", "1"), entry("y", "2")],
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_topics_rules_go_with_it_and_a_start_finishes_an_interrupted_delete() {
        let dir = tempfile::tempdir().unwrap();
        {
            let topics = Arc::new(Topics::open(dir.path()).unwrap());
            for name in ["a", "b", "c"] {
                topics.create(name, one_partition(), false).unwrap();
            }
            let routes = Routes::open(topics.clone(), None, test_traces(&topics), clock()).unwrap();
            for (pattern, topic) in [("x", "a"), ("y", "a"), ("x", "b"), ("z", "c")] {
                routes
                    .add(pattern.into(), topic.into(), vec![])
                    .await
                    .unwrap();
            }
            topics.delete("a").unwrap();
            let removed = routes.delete_for_topic("a").await.unwrap();
            assert_eq!(
                removed.iter().map(|r| r.route_id).collect::<Vec<_>>(),
                [1, 2]
            );
            // "b" is deleted and the broker stops before its rules are.
            topics.delete("b").unwrap();
            // "c" loses its topic.toml: a directory that did not open as a topic.
            topics.close_all();
            std::fs::remove_file(dir.path().join("topics/c/topic.toml")).unwrap();
        }
        let topics = Arc::new(Topics::open(dir.path()).unwrap());
        let routes = Routes::open(topics.clone(), None, test_traces(&topics), clock()).unwrap();
        let left: Vec<(u64, String)> = routes
            .list()
            .into_iter()
            .map(|r| (r.route_id, r.topic))
            .collect();
        assert_eq!(left, [(4, "c".to_string())], "b's rule finished, c's kept");
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
            routes
                .destinations("orders.x.eu", &[])
                .into_keys()
                .collect::<Vec<_>>(),
            ["all", "eu"]
        );
        let next = routes.add("x".into(), "eu".into(), vec![]).await.unwrap();
        assert_eq!(next, 5, "ids are never reused");
    }
}
