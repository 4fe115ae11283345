//! Routing rules: add, delete, list.

use std::sync::Arc;

use protocol::ops::routes::{
    AddRouteRequest, AddRouteResponse, DeleteRouteRequest, ListRoutesResponse,
};

use crate::broker::Broker;
use crate::error::BrokerError;

/// Adds a rule; answered once it is durable.
pub async fn add(
    broker: Arc<Broker>,
    request: AddRouteRequest,
) -> Result<AddRouteResponse, BrokerError> {
    let route_id = broker
        .routes
        .add(request.pattern, request.topic, request.headers)
        .await?;
    Ok(AddRouteResponse { route_id })
}

/// Deletes a rule; answered once it is durable.
pub async fn delete(broker: Arc<Broker>, request: DeleteRouteRequest) -> Result<(), BrokerError> {
    broker.routes.delete(request.route_id).await.map(|_| ())
}

/// Every rule.
pub fn list(broker: &Broker) -> ListRoutesResponse {
    ListRoutesResponse {
        routes: broker.routes.list(),
    }
}
