//! One open connection: the handle ([`Conn`]) and the two tasks owning its socket.
//!
//! mini-redis's idea, one owner per half of the socket:
//! - the **writer task** owns the write half and drains a bounded queue of encoded
//!   frames, writing everything queued with one flush, so pipelined requests share
//!   syscalls;
//! - the **reader task** owns the read half and hands each decoded frame to the
//!   multiplexer ([`Shared::dispatch`]).
//!
//! Whichever task sees the socket fail closes the shared state, which fails
//! everything waiting on the connection; the next request then opens a new one. Both
//! tasks are aborted when their `Conn` is dropped, so they never outlive it.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use protocol::codec::ProtocolCodec;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::codec::FramedRead;

use super::multiplex::Shared;

/// Size of the writer's buffer; larger frames are written straight through.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// One open connection: the queue to its writer task and its reader task.
#[derive(Debug)]
pub(super) struct Conn {
    pub(super) shared: Arc<Shared>,
    pub(super) outbound: mpsc::Sender<Bytes>,
    pub(super) max_frame_bytes: usize,
    /// The negotiated protocol version requests are encoded in.
    pub(super) version: u16,
    pub(super) _reader: AbortOnDrop,
    pub(super) _writer: AbortOnDrop,
}

/// Aborts a task when dropped, so a connection's tasks never outlive it.
#[derive(Debug)]
pub(super) struct AbortOnDrop(pub(super) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The frames read from a connection's read half (a TCP half, or a TLS one).
pub(super) type Frames<R> = FramedRead<R, ProtocolCodec>;

pub(super) async fn read_loop<R: AsyncRead + Unpin>(mut frames: Frames<R>, shared: Arc<Shared>) {
    loop {
        match frames.next().await {
            Some(Ok(frame)) => shared.dispatch(frame),
            Some(Err(error)) => {
                tracing::warn!(addr = %shared.addr, %error, "connection failed");
                break;
            }
            None => {
                tracing::debug!(addr = %shared.addr, "connection closed by the broker");
                break;
            }
        }
    }
    shared.close();
}

pub(super) async fn write_loop<W: AsyncWrite + Unpin>(
    mut rx: mpsc::Receiver<Bytes>,
    write: W,
    shared: Arc<Shared>,
) {
    let mut out = BufWriter::with_capacity(WRITE_BUFFER_BYTES, write);
    while let Some(first) = rx.recv().await {
        let mut result = out.write_all(&first).await;
        // Everything queued meanwhile goes out with the same flush.
        while result.is_ok() {
            match rx.try_recv() {
                Ok(more) => result = out.write_all(&more).await,
                Err(_) => break,
            }
        }
        if result.is_ok() {
            result = out.flush().await;
        }
        if let Err(error) = result {
            tracing::warn!(addr = %shared.addr, %error, "write failed");
            shared.close();
            return;
        }
    }
}
