//! Routing rules: add, delete, list.

use std::sync::Arc;

use protocol::ops::routes::{
    AddRouteRequest, AddRouteResponse, DeleteRouteRequest, ListRoutesResponse,
};

use super::Actor;
use crate::broker::Broker;
use crate::error::BrokerError;

/// Adds a rule; answered once it is durable.
pub async fn add(
    broker: Arc<Broker>,
    request: AddRouteRequest,
    actor: Actor,
) -> Result<AddRouteResponse, BrokerError> {
    let headers = super::entries_text(&request.headers);
    let (pattern, topic) = (request.pattern.clone(), request.topic.clone());
    let route_id = broker
        .routes
        .add(request.pattern, request.topic, request.headers)
        .await?;
    tracing::info!(target: "audit", op = "AddRoute", client = %actor.client, principal = %actor.principal, route = route_id, pattern = %pattern, topic = %topic, headers = %headers, "routing rule added");
    Ok(AddRouteResponse { route_id })
}

/// Deletes a rule; answered once it is durable.
pub async fn delete(
    broker: Arc<Broker>,
    request: DeleteRouteRequest,
    actor: Actor,
) -> Result<(), BrokerError> {
    let route = broker.routes.delete(request.route_id).await?;
    tracing::info!(target: "audit", op = "DeleteRoute", client = %actor.client, principal = %actor.principal, route = route.route_id, pattern = %route.pattern, topic = %route.topic, "routing rule deleted");
    Ok(())
}

/// Every rule.
pub fn list(broker: &Broker) -> ListRoutesResponse {
    ListRoutesResponse {
        routes: broker.routes.list(),
    }
}
