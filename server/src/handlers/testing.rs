//! A broker in a temporary directory, and sessions on it, for handler tests that run
//! without any socket.

use std::sync::Arc;

use bytes::Bytes;
use protocol::batch::BatchBuilder;
use protocol::ops::{Request, Response};
use protocol::Message;
use tokio::sync::mpsc;

use super::{handle, Answer, Context};
use crate::broker::Broker;
use crate::clock::ManualClock;
use crate::config::ServerConfig;
use crate::delivery::Pushes;

/// A broker of its own, on a manual clock, with the deliveries of one session.
pub(crate) struct TestBroker {
    pub(crate) broker: Arc<Broker>,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) cx: Context,
    pub(crate) pushes: mpsc::Receiver<Message>,
    _dir: tempfile::TempDir,
}

impl TestBroker {
    /// Opens a broker on an empty data directory (inside a tokio runtime).
    pub(crate) fn new() -> TestBroker {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = ServerConfig {
            data_dir: dir.path().to_path_buf(),
            ..ServerConfig::default()
        };
        let clock = Arc::new(ManualClock::new(1_800_000_000_000));
        let broker = Arc::new(Broker::open_with_clock(config, clock.clone()).expect("broker"));
        let (tx, pushes) = mpsc::channel(64);
        let cx = Context::new(
            &broker,
            Arc::from("test/1"),
            protocol::PROTOCOL_VERSION,
            Pushes::new(tx),
            crate::security::Principal::anonymous(),
        );
        TestBroker {
            broker,
            clock,
            cx,
            pushes,
            _dir: dir,
        }
    }

    /// Serves `request` through the dispatch table and waits for its answer. Every
    /// error must be one the protocol document lists for the operation.
    pub(crate) async fn call(&mut self, request: Request) -> Answer {
        call_in(&self.broker, &mut self.cx, request).await
    }

    /// Another session on the same broker, and its deliveries.
    pub(crate) fn session(&self, client_name: &str) -> (Context, mpsc::Receiver<Message>) {
        let (tx, pushes) = mpsc::channel(64);
        let cx = Context::new(
            &self.broker,
            Arc::from(client_name),
            protocol::PROTOCOL_VERSION,
            Pushes::new(tx),
            crate::security::Principal::anonymous(),
        );
        (cx, pushes)
    }

    /// Serves `request` in session `cx`, which must succeed.
    pub(crate) async fn ok_in(&self, cx: &mut Context, request: Request) -> Response {
        let name = request.op_code().name();
        call_in(&self.broker, cx, request)
            .await
            .unwrap_or_else(|error| panic!("{name} failed: {error}"))
    }

    /// Serves `request`, which must succeed.
    pub(crate) async fn ok(&mut self, request: Request) -> Response {
        let name = request.op_code().name();
        self.call(request)
            .await
            .unwrap_or_else(|error| panic!("{name} failed: {error}"))
    }

    /// Serves `request`, which must fail; returns the error's code name.
    pub(crate) async fn code(&mut self, request: Request) -> &'static str {
        let name = request.op_code().name();
        match self.call(request).await {
            Ok(response) => panic!("{name} succeeded: {response:?}"),
            Err(error) => error.code().name(),
        }
    }
}

/// Serves `request` in session `cx`; checks that an error is one the protocol
/// document lists for the operation.
async fn call_in(broker: &Arc<Broker>, cx: &mut Context, request: Request) -> Answer {
    let op = request.op_code();
    let answer = handle(broker, cx, request).answer().await;
    if let Err(error) = &answer {
        assert!(
            op.may_fail_with(error.code()),
            "{} answered {} ({error}), which docs/protocol.md does not list",
            op.name(),
            error.code().name()
        );
    }
    answer
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.broker.topics.close_all();
    }
}

/// A batch of one record per value.
pub(crate) fn batch(values: &[&str]) -> Bytes {
    let mut builder = BatchBuilder::new();
    for value in values {
        builder
            .push(1, None, Some(value.as_bytes()), &[])
            .expect("a small record");
    }
    builder.finish()
}
