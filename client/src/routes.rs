//! Routing rules and publishing by routing key.

use std::time::Duration;

use bytes::Bytes;
use protocol::batch::BatchBuilder;
use protocol::ops::produce::AckLevel;
use protocol::ops::routes::{
    AddRouteRequest, DeleteRouteRequest, PublishRequest, RouteInfo, Routed,
};
use protocol::ops::Empty;
use protocol::{Request, Response};

use crate::admin::{entries, expect_response};
use crate::connection::Client;
use crate::error::ClientError;

impl Client {
    /// Adds a rule sending keys that match `pattern` (words separated by `.`, `*` one
    /// word, `#` zero or more) and carry all `headers` to `topic`. Returns its id. A
    /// rule identical to an existing one is refused (`invalid_request`).
    ///
    /// ```no_run
    /// # async fn demo(client: client::Client) -> Result<(), client::ClientError> {
    /// client.add_route("orders.*.eu", "eu-orders", &[]).await?;
    /// let routed = client.publish("orders.created.eu", &[], [bytes::Bytes::from("o-17")], client::AckLevel::Durable).await?;
    /// assert_eq!(routed[0].topic, "eu-orders");
    /// # Ok(()) }
    /// ```
    pub async fn add_route(
        &self,
        pattern: &str,
        topic: &str,
        headers: &[(&str, &str)],
    ) -> Result<u64, ClientError> {
        let request = Request::AddRoute(AddRouteRequest {
            pattern: pattern.into(),
            topic: topic.into(),
            headers: entries(headers),
        });
        expect_response!(self.request(request).await?, AddRoute).map(|added| added.route_id)
    }

    /// Deletes a rule.
    pub async fn delete_route(&self, route_id: u64) -> Result<(), ClientError> {
        let request = Request::DeleteRoute(DeleteRouteRequest { route_id });
        expect_response!(self.request(request).await?, DeleteRoute).map(drop)
    }

    /// Every rule.
    pub async fn list_routes(&self) -> Result<Vec<RouteInfo>, ClientError> {
        expect_response!(self.request(Request::ListRoutes(Empty)).await?, ListRoutes)
            .map(|list| list.routes)
    }

    /// Publishes `values` as one batch (each record carrying `headers`) to every topic
    /// whose rules match `routing_key` and `headers`.
    pub async fn publish(
        &self,
        routing_key: &str,
        headers: &[(&str, &str)],
        values: impl IntoIterator<Item = Bytes>,
        ack: AckLevel,
    ) -> Result<Vec<Routed>, ClientError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let record_headers: Vec<(&str, &[u8])> =
            headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
        let mut builder = BatchBuilder::new();
        for value in values {
            builder
                .push(now, None, Some(&value), &record_headers)
                .map_err(|e| {
                    ClientError::InvalidArgument(format!("record does not fit a batch: {e}"))
                })?;
        }
        if builder.is_empty() {
            return Ok(Vec::new());
        }
        let request = Request::Publish(PublishRequest {
            routing_key: routing_key.into(),
            headers: entries(headers),
            ack,
            timeout_ms: u32::try_from(
                self.config()
                    .request_timeout
                    .min(Duration::from_secs(3600))
                    .as_millis(),
            )
            .unwrap_or(u32::MAX),
            batch: builder.finish(),
        });
        expect_response!(self.request(request).await?, Publish).map(|published| published.routed)
    }
}
