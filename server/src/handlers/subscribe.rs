//! Push subscriptions: open, credit, close. The deliveries themselves are
//! [`crate::subscription`]'s (streams) and [`crate::queue`]'s (queue groups).

use std::sync::Arc;

use protocol::ops::subscribe::{
    CreditRequest, SubscribeRequest, SubscribeResponse, UnsubscribeRequest,
};

use super::Context;
use crate::broker::Broker;
use crate::error::BrokerError;

/// Opens a subscription whose deliveries go to the session's pushes.
pub fn subscribe(
    broker: &Arc<Broker>,
    cx: &mut Context,
    request: SubscribeRequest,
) -> Result<SubscribeResponse, BrokerError> {
    let pushes = cx.pushes.clone();
    let subscription_id = cx.subscriptions.subscribe(broker, request, pushes)?;
    Ok(SubscribeResponse { subscription_id })
}

/// Grants a subscription more credit.
pub fn credit(cx: &mut Context, request: CreditRequest) -> Result<(), BrokerError> {
    if request.messages == 0 && request.bytes == 0 {
        return Err(BrokerError::InvalidRequest(
            "a Credit of 0 messages and 0 bytes grants nothing".into(),
        ));
    }
    cx.subscriptions
        .credit(request.subscription_id, request.messages, request.bytes)
}

/// Closes a subscription.
pub fn unsubscribe(cx: &mut Context, request: UnsubscribeRequest) -> Result<(), BrokerError> {
    cx.subscriptions.unsubscribe(request.subscription_id)
}
