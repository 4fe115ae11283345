//! One client connection: decode frames, dispatch requests, send responses.
//!
//! The connection task owns the socket's read half and the connection's state
//! (handshake, subscriptions). A writer task owns the write half and drains a bounded
//! queue of outbound messages (responses and pushed deliveries). Requests that may
//! wait (fetch long-polls, durable acknowledgements, group commits) run as their own
//! tasks and answer through the queue, so one slow request never holds up the others;
//! produces are appended inline, in arrival order, so pipelined batches to a partition
//! land in the order they were sent.
//!
//! Memory per connection is bounded: frames by `max_frame_bytes`, requests in flight
//! by `max_inflight_bytes_per_connection` (a semaphore of bytes, released when the
//! answer is queued), outbound messages by `max_outbound_frames_per_connection`.

use std::sync::Arc;

use futures_util::{FutureExt, SinkExt, StreamExt};
use protocol::codec::ProtocolCodec;
use protocol::ops::handshake::HandshakeResponse;
use protocol::ops::{Empty, Request, Response};
use protocol::{ErrorCode, ErrorResponse, Message};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::broker::Broker;
use crate::error::BrokerError;
use crate::handlers;
use crate::handlers::produce::ProduceRun;
use crate::reply::Reply;
use crate::shutdown::Shutdown;
use crate::subscription::Subscriptions;

/// Bytes read from the socket at a time (and allocated again when the frames cut from
/// the last buffer are still held): a burst of pipelined 1 KiB produces arrives in one
/// read instead of several.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Bytes charged against the in-flight budget for a request without a batch.
const BASE_REQUEST_BYTES: usize = 512;

fn request_bytes(request: &Request) -> usize {
    match request {
        Request::Produce(p) => BASE_REQUEST_BYTES + p.batch.len(),
        Request::Publish(p) => BASE_REQUEST_BYTES + p.batch.len(),
        _ => BASE_REQUEST_BYTES,
    }
}

/// Serves one connection until the client leaves, a fatal protocol error, or shutdown.
pub async fn serve(socket: TcpStream, broker: Arc<Broker>, mut shutdown: Shutdown) {
    let peer = socket
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let _ = socket.set_nodelay(true);
    let _guard = broker.stats.connection_opened();
    let limits = broker.config.limits.clone();
    let (read_half, write_half) = socket.into_split();
    let mut frames = FramedRead::with_capacity(
        read_half,
        ProtocolCodec::with_max_frame_bytes(limits.max_frame_bytes),
        READ_BUFFER_BYTES,
    );
    let (outbound, mut outbound_rx) =
        mpsc::channel::<Message>(limits.max_outbound_frames_per_connection);
    let writer = tokio::spawn(async move {
        let mut sink = FramedWrite::new(
            write_half,
            ProtocolCodec::with_max_frame_bytes(limits.max_frame_bytes),
        );
        while let Some(message) = outbound_rx.recv().await {
            // Batch writes: feed everything queued, flush once.
            if sink.feed(message).await.is_err() {
                return;
            }
            while let Ok(message) = outbound_rx.try_recv() {
                if sink.feed(message).await.is_err() {
                    return;
                }
            }
            if SinkExt::<Message>::flush(&mut sink).await.is_err() {
                return;
            }
        }
    });
    let reply = Reply::new(outbound.clone());
    let budget = Arc::new(Semaphore::new(limits.max_inflight_bytes_per_connection));
    // Shared with dispatched requests' tasks without copying the string each time.
    let mut client_name: Option<Arc<str>> = None;
    let mut subscriptions = Subscriptions::new(limits.max_subscriptions_per_connection);
    tracing::debug!(%peer, "connection opened");

    let mut run = ProduceRun::new();

    loop {
        // A produce run grows while frames are already read and waiting; when the
        // input runs dry it is appended before this task waits for more.
        let ready = if run.is_empty() {
            None
        } else {
            // `next()` is cancel-safe: polling it once and dropping it loses nothing.
            frames.next().now_or_never()
        };
        let next = match ready {
            Some(next) => next,
            None => {
                run.flush(&broker, &reply).await;
                tokio::select! {
                    next = frames.next() => next,
                    _ = shutdown.recv() => break,
                }
            }
        };
        let frame = match next {
            None => break,
            Some(Ok(frame)) => frame,
            Some(Err(error)) => {
                // The stream is out of step (oversized or undersized length prefix):
                // answer if the correlation id was readable, then close.
                tracing::debug!(%peer, %error, "unreadable frame; closing");
                if let protocol::codec::CodecError::Frame(frame_error) = &error {
                    if let Some(answer) = frame_error.error_response() {
                        let _ = outbound.send(answer).await;
                    }
                }
                break;
            }
        };
        let (correlation_id, request) = match Message::decode(frame) {
            Ok(Message::Request {
                correlation_id,
                request,
            }) => (correlation_id, request),
            Ok(other) => {
                tracing::debug!(%peer, "client sent a non-request frame; closing");
                let error = ErrorResponse {
                    code: ErrorCode::MalformedFrame,
                    message: "clients may only send requests".into(),
                };
                let _ = outbound
                    .send(Message::Error {
                        correlation_id: other.correlation_id(),
                        op: other.header().op,
                        error,
                    })
                    .await;
                break;
            }
            Err(error) => {
                tracing::debug!(%peer, %error, "malformed frame");
                if let Some(answer) = error.error_response() {
                    let _ = outbound.send(answer).await;
                }
                // An unknown operation is answered and the connection goes on (newer
                // clients may probe); anything else malformed closes it.
                let unknown_op = matches!(
                    &error,
                    protocol::FrameError::Invalid {
                        source: protocol::DecodeError::UnknownOperation { .. },
                        ..
                    }
                );
                if unknown_op {
                    continue;
                }
                break;
            }
        };
        let op = request.op_code().as_u16();

        // The handshake comes first, once.
        let Some(name) = client_name.clone() else {
            match request {
                Request::Handshake(hello) => match protocol::negotiate_version(&hello.versions) {
                    Some(version) => {
                        client_name = Some(Arc::from(hello.client_name.as_str()));
                        let response = Response::Handshake(HandshakeResponse {
                            version,
                            server_name: format!("brokerd {}", env!("CARGO_PKG_VERSION")),
                            max_frame_bytes: limits.max_frame_bytes as u32,
                        });
                        reply.send(correlation_id, op, Ok(response), None).await;
                        continue;
                    }
                    None => {
                        let message = format!(
                            "none of the offered protocol versions {:?} is supported; this server speaks {:?}",
                            hello.versions,
                            protocol::SUPPORTED_VERSIONS
                        );
                        let error = ErrorResponse {
                            code: ErrorCode::UnsupportedVersion,
                            message,
                        };
                        let _ = outbound
                            .send(Message::Error {
                                correlation_id,
                                op,
                                error,
                            })
                            .await;
                        break;
                    }
                },
                _ => {
                    let error = ErrorResponse {
                        code: ErrorCode::HandshakeRequired,
                        message: "send Handshake first".into(),
                    };
                    let _ = outbound
                        .send(Message::Error {
                            correlation_id,
                            op,
                            error,
                        })
                        .await;
                    break;
                }
            }
        };

        // Anything but a produce ends the run first, so requests take effect in order.
        if !matches!(request, Request::Produce(_)) {
            run.flush(&broker, &reply).await;
        }
        let cost = request_bytes(&request).min(limits.max_inflight_bytes_per_connection) as u32;
        let permit = match budget.clone().try_acquire_many_owned(cost) {
            Ok(permit) => permit,
            Err(_) => {
                // The run holds budget of its own: append and answer it before waiting.
                run.flush(&broker, &reply).await;
                tokio::select! {
                    permit = budget.clone().acquire_many_owned(cost) => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                    _ = shutdown.recv() => break,
                }
            }
        };

        match request {
            Request::Handshake(_) => {
                let error = BrokerError::InvalidRequest(
                    "the handshake was already done on this connection".into(),
                );
                reply
                    .send(correlation_id, op, Err(error), Some(permit))
                    .await;
            }
            Request::Produce(produce) => match handlers::produce::route(&broker, &produce) {
                Err(error) => {
                    reply
                        .send(correlation_id, op, Err(error), Some(permit))
                        .await
                }
                Ok(route) => {
                    if !run.accepts(&route, produce.ack, produce.batch.len()) {
                        run.flush(&broker, &reply).await;
                    }
                    run.push(route, &produce, correlation_id, op, permit);
                    if run.is_full() {
                        run.flush(&broker, &reply).await;
                    }
                }
            },
            Request::Publish(publish) => match broker.routes.append_routed(&publish) {
                Err(error) => {
                    reply
                        .send(correlation_id, op, Err(error), Some(permit))
                        .await
                }
                Ok(appended) => {
                    let reply = reply.clone();
                    tokio::spawn(async move {
                        let result =
                            crate::routes::acknowledge(appended, publish.ack, publish.timeout_ms)
                                .await;
                        reply
                            .send(
                                correlation_id,
                                op,
                                result.map(Response::Publish),
                                Some(permit),
                            )
                            .await;
                    });
                }
            },
            Request::Subscribe(subscribe) => {
                let result = subscriptions
                    .subscribe(
                        &broker,
                        subscribe,
                        crate::delivery::Pushes::new(outbound.clone()),
                    )
                    .map(|subscription_id| {
                        Response::Subscribe(protocol::ops::subscribe::SubscribeResponse {
                            subscription_id,
                        })
                    });
                reply.send(correlation_id, op, result, Some(permit)).await;
            }
            Request::Credit(credit) => {
                let result = subscriptions
                    .credit(credit.subscription_id, credit.messages, credit.bytes)
                    .map(|()| Response::Credit(Empty));
                reply.send(correlation_id, op, result, Some(permit)).await;
            }
            Request::Unsubscribe(unsubscribe) => {
                let result = subscriptions
                    .unsubscribe(unsubscribe.subscription_id)
                    .map(|()| Response::Unsubscribe(Empty));
                reply.send(correlation_id, op, result, Some(permit)).await;
            }
            other => {
                let broker = broker.clone();
                let reply = reply.clone();
                tokio::spawn(async move {
                    let result = dispatch(&broker, other, &name).await;
                    reply.send(correlation_id, op, result, Some(permit)).await;
                });
            }
        }
    }
    // Stop reading; let in-flight requests finish and their answers go out.
    run.flush(&broker, &reply).await;
    drop(subscriptions);
    drop(reply);
    drop(outbound);
    let _ = budget
        .acquire_many(limits.max_inflight_bytes_per_connection as u32)
        .await;
    let _ = writer.await;
    tracing::debug!(%peer, "connection closed");
}

/// Requests that run as their own task.
async fn dispatch(
    broker: &Arc<Broker>,
    request: Request,
    client_name: &str,
) -> Result<Response, BrokerError> {
    Ok(match request {
        Request::CreateTopic(r) => handlers::admin::create_topic(broker, r)
            .await
            .map(|()| Response::CreateTopic(Empty))?,
        Request::DeleteTopic(r) => handlers::admin::delete_topic(broker, r)
            .await
            .map(|()| Response::DeleteTopic(Empty))?,
        Request::ListTopics(r) => Response::ListTopics(handlers::admin::list_topics(broker, r)),
        Request::DescribeTopic(r) => {
            Response::DescribeTopic(handlers::admin::describe_topic(broker, r)?)
        }
        Request::Fetch(r) => Response::Fetch(handlers::fetch::fetch(broker, r).await?),
        Request::JoinGroup(r) => {
            Response::JoinGroup(handlers::groups::join(broker, r, client_name).await?)
        }
        Request::Heartbeat(r) => Response::Heartbeat(handlers::groups::heartbeat(broker, r)?),
        Request::LeaveGroup(r) => {
            handlers::groups::leave(broker, r).map(|()| Response::LeaveGroup(Empty))?
        }
        Request::CommitOffsets(r) => handlers::groups::commit(broker, r)
            .await
            .map(|()| Response::CommitOffsets(Empty))?,
        Request::FetchOffsets(r) => {
            Response::FetchOffsets(handlers::groups::fetch_offsets(broker, r)?)
        }
        Request::ListGroups(Empty) => Response::ListGroups(handlers::groups::list(broker)),
        Request::DescribeGroup(r) => {
            Response::DescribeGroup(handlers::groups::describe(broker, r)?)
        }
        Request::ServerStats(Empty) => Response::ServerStats(handlers::stats::server_stats(broker)),
        Request::TopicStats(r) => Response::TopicStats(handlers::stats::topic_stats(broker, r)?),
        Request::Ack(r) => {
            broker
                .queues
                .checked(&r.group, &r.topic)?
                .ack(r.partition, &r.offsets)
                .await?;
            Response::Ack(Empty)
        }
        Request::Nack(r) => {
            let delay = r.redelivery_delay_ms.map(u64::from);
            broker
                .queues
                .checked(&r.group, &r.topic)?
                .nack(r.partition, r.offset, &r.reason, delay)
                .await?;
            Response::Nack(Empty)
        }
        Request::ExtendDeadline(r) => {
            broker.queues.checked(&r.group, &r.topic)?.extend(
                r.partition,
                r.offset,
                u64::from(r.extend_ms),
            )?;
            Response::ExtendDeadline(Empty)
        }
        Request::AddRoute(r) => Response::AddRoute(protocol::ops::routes::AddRouteResponse {
            route_id: broker.routes.add(r.pattern, r.topic, r.headers).await?,
        }),
        Request::DeleteRoute(r) => {
            broker.routes.delete(r.route_id).await?;
            Response::DeleteRoute(Empty)
        }
        Request::ListRoutes(Empty) => {
            Response::ListRoutes(protocol::ops::routes::ListRoutesResponse {
                routes: broker.routes.list(),
            })
        }
        Request::RegisterInstance(r) => {
            broker
                .services
                .register(&r.service, &r.instance_id, &r.address, r.tags, r.ttl_ms)
                .await?;
            Response::RegisterInstance(Empty)
        }
        Request::InstanceHeartbeat(r) => {
            broker.services.heartbeat(&r.service, &r.instance_id)?;
            Response::InstanceHeartbeat(Empty)
        }
        Request::DeregisterInstance(r) => {
            broker
                .services
                .deregister(&r.service, &r.instance_id)
                .await?;
            Response::DeregisterInstance(Empty)
        }
        Request::ListServices(Empty) => {
            Response::ListServices(protocol::ops::registry::ListServicesResponse {
                services: broker.services.list(),
            })
        }
        Request::DescribeService(r) => {
            Response::DescribeService(broker.services.describe(&r.service, &r.tags))
        }
        Request::DeleteRecords(r) => {
            Response::DeleteRecords(handlers::admin::delete_records(broker, r).await?)
        }
        Request::Handshake(_)
        | Request::Produce(_)
        | Request::Publish(_)
        | Request::Subscribe(_)
        | Request::Credit(_)
        | Request::Unsubscribe(_) => {
            return Err(BrokerError::Internal(
                "request routed to the wrong handler".into(),
            ))
        }
    })
}
