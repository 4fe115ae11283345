//! Topic administration: create, delete, list, describe, and deleting records below
//! an offset.

use std::sync::Arc;

use protocol::ops::topic::{
    AlterTopicRequest, CreatePartitionsRequest, CreateTopicRequest, DeleteRecordsRequest,
    DeleteRecordsResponse, DeleteTopicRequest, DescribeTopicRequest, DescribeTopicResponse,
    ListTopicsRequest, ListTopicsResponse, PartitionInfo, TopicSummary,
};

use super::Actor;
use crate::broker::Broker;
use crate::error::BrokerError;

/// Creates a topic with the server's defaults overridden by the request's config.
pub async fn create(
    broker: Arc<Broker>,
    request: CreateTopicRequest,
    actor: Actor,
) -> Result<(), BrokerError> {
    let mut config = broker.topic_defaults.clone();
    config.partitions = request.partitions;
    config.apply(&request.config)?;
    let name = request.name.clone();
    blocking(move || broker.topics.create(&name, config, false).map(|_| ())).await?;
    tracing::info!(target: "audit", op = "CreateTopic", client = %actor.client, principal = %actor.principal, topic = %request.name, partitions = request.partitions, config = %super::entries_text(&request.config), "topic created");
    Ok(())
}

/// Deletes a topic and its data, then the routing rules that sent messages to it
/// (as deleting a RabbitMQ queue removes its bindings), then its groups (their queue
/// state, dispatchers and commits), so that a topic created again under the name
/// starts without them. The topic goes first: a rule added meanwhile is then refused,
/// and a crash in between leaves rules that the next start deletes.
pub async fn delete(
    broker: Arc<Broker>,
    request: DeleteTopicRequest,
    actor: Actor,
) -> Result<(), BrokerError> {
    let name = request.name;
    let topics = broker.clone();
    let topic = name.clone();
    blocking(move || topics.topics.delete(&topic)).await?;
    let deleted = broker
        .routes
        .delete_for_topic(&name)
        .await
        .map_err(|error| BrokerError::RoutesNotDeleted {
            topic: name.clone(),
            reason: error.to_string(),
        })?;
    let routes: Vec<u64> = deleted.iter().map(|r| r.route_id).collect();
    // A failure here (the internal topics' disk) is not one of DeleteTopic's
    // documented answers but for storage_error, which says the topic is gone.
    let groups = broker.groups.topic_deleted(&name).await.map_err(|e| {
        BrokerError::Internal(format!(
            "topic {name:?} was deleted, but removing its groups failed: {e}"
        ))
    })?;
    tracing::info!(target: "audit", op = "DeleteTopic", client = %actor.client, principal = %actor.principal, topic = %name, routes_deleted = ?routes, groups_deleted = ?groups, "topic deleted, with the routing rules to it and its groups");
    Ok(())
}

/// Changes settings of a live topic; answered once `topic.toml` has them and they
/// apply (queue groups of the topic take each new default they did not override).
pub async fn alter(
    broker: Arc<Broker>,
    request: AlterTopicRequest,
    actor: Actor,
) -> Result<(), BrokerError> {
    let b = broker.clone();
    let (name, entries) = (request.name.clone(), request.config.clone());
    let (old, new) = blocking(move || b.topics.alter(&name, &entries)).await?;
    broker
        .queues
        .topic_altered(&new.name, &old.config.queue, &new.config.queue);
    tracing::info!(target: "audit", op = "AlterTopic", client = %actor.client, principal = %actor.principal, topic = %request.name, config = %super::entries_text(&request.config), "topic altered");
    Ok(())
}

/// Grows a topic; answered once its new partitions serve and its stream groups have
/// offset 0 committed on them and were rebalanced.
pub async fn create_partitions(
    broker: Arc<Broker>,
    request: CreatePartitionsRequest,
    actor: Actor,
) -> Result<(), BrokerError> {
    let queue_groups = broker.queues.groups_of(&request.name);
    if !queue_groups.is_empty() {
        return Err(BrokerError::InvalidRequest(format!(
            "topic {:?} is consumed by queue group(s) {}; a topic with queue groups cannot grow yet (a queue group's per-partition state is fixed when it is created)",
            request.name,
            queue_groups.join(", ")
        )));
    }
    let b = broker.clone();
    let (name, count) = (request.name.clone(), request.count);
    let (old, new) = blocking(move || b.topics.add_partitions(&name, count)).await?;
    let (from, to) = (old.config.partitions, new.config.partitions);
    let groups = broker
        .groups
        .partitions_added(&new.name, from, to)
        .await
        .map_err(|error| {
            BrokerError::Internal(format!(
                "topic {:?} now has {to} partitions, but committing offset 0 on the new ones for its groups failed ({error}); a group without that commit starts them by its own start policy",
                new.name
            ))
        })?;
    tracing::info!(target: "audit", op = "CreatePartitions", client = %actor.client, principal = %actor.principal, topic = %request.name, from, to, groups = ?groups, "partitions added");
    Ok(())
}

/// Lists topics, internal ones only when asked.
pub fn list(broker: &Broker, request: ListTopicsRequest) -> ListTopicsResponse {
    let topics = broker
        .topics
        .list()
        .into_iter()
        .filter(|t| request.include_internal || !t.internal)
        .map(|t| TopicSummary {
            name: t.name.clone(),
            partitions: t.config.partitions,
            messages: t.messages(),
            size_bytes: t.size_bytes(),
            internal: t.internal,
        })
        .collect();
    ListTopicsResponse { topics }
}

/// Config and per-partition offsets and sizes.
pub fn describe(
    broker: &Broker,
    request: DescribeTopicRequest,
) -> Result<DescribeTopicResponse, BrokerError> {
    let topic = broker.topics.get(&request.name)?;
    let partitions = topic
        .partitions
        .iter()
        .map(|p| PartitionInfo {
            partition: p.id,
            start_offset: p.start_offset(),
            end_offset: p.end_offset(),
            size_bytes: p.size_bytes(),
        })
        .collect();
    Ok(DescribeTopicResponse {
        name: topic.name.clone(),
        internal: topic.internal,
        config: topic.config.entries(&topic.name),
        partitions,
    })
}

/// Deletes a partition's records below an offset (dead-letter replay and purge).
pub async fn delete_records(
    broker: Arc<Broker>,
    request: DeleteRecordsRequest,
    actor: Actor,
) -> Result<DeleteRecordsResponse, BrokerError> {
    let topic = broker.topics.get(&request.topic)?;
    if topic.internal {
        return Err(BrokerError::InvalidRequest(format!(
            "{:?} is an internal topic",
            topic.name
        )));
    }
    let partition = topic.partition(request.partition)?.clone();
    let before = request.before_offset;
    let log_start_offset = blocking(move || {
        partition.truncate_before(before)?;
        Ok(partition.start_offset())
    })
    .await?;
    tracing::info!(target: "audit", op = "DeleteRecords", client = %actor.client, principal = %actor.principal, topic = %request.topic, partition = request.partition, before_offset = before, log_start_offset, "records deleted");
    Ok(DeleteRecordsResponse { log_start_offset })
}

/// Runs blocking file-system work off the async workers.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, BrokerError> + Send + 'static,
) -> Result<T, BrokerError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| BrokerError::Internal(format!("blocking task failed: {e}")))?
}
