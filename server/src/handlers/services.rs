//! The service registry: register, heartbeat, deregister, list, describe.

use std::sync::Arc;

use protocol::ops::registry::{
    DescribeServiceRequest, DescribeServiceResponse, InstanceRequest, ListServicesResponse,
    RegisterRequest,
};

use crate::broker::Broker;
use crate::error::BrokerError;

/// Registers an instance; answered once it is durable.
pub async fn register(broker: Arc<Broker>, request: RegisterRequest) -> Result<(), BrokerError> {
    broker
        .services
        .register(
            &request.service,
            &request.instance_id,
            &request.address,
            request.tags,
            request.ttl_ms,
        )
        .await
}

/// Keeps an instance alive.
pub fn heartbeat(broker: &Broker, request: InstanceRequest) -> Result<(), BrokerError> {
    broker
        .services
        .heartbeat(&request.service, &request.instance_id)
}

/// Removes an instance; answered once it is durable.
pub async fn deregister(broker: Arc<Broker>, request: InstanceRequest) -> Result<(), BrokerError> {
    broker
        .services
        .deregister(&request.service, &request.instance_id)
        .await
}

/// Services with healthy instances.
pub fn list(broker: &Broker) -> ListServicesResponse {
    ListServicesResponse {
        services: broker.services.list(),
    }
}

/// A service's healthy instances carrying the asked tags.
pub fn describe(broker: &Broker, request: DescribeServiceRequest) -> DescribeServiceResponse {
    broker.services.describe(&request.service, &request.tags)
}
