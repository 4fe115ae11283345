//! The writer half of a connection: one task that owns the socket's write half and
//! drains the connection's bounded outbound queue (answers and pushed deliveries).

use std::sync::{Arc, OnceLock};

use futures_util::SinkExt;
use protocol::codec::ProtocolCodec;
use protocol::Message;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::codec::FramedWrite;

/// Starts the writer: it encodes everything queued back to back and flushes once per
/// burst, until every sender is gone or the socket fails. Messages go out in the
/// version in `negotiated` once the handshake sets it (version 1 before). When the
/// queue closes it shuts the stream down (for TLS: sends close_notify).
pub fn spawn<W: AsyncWrite + Unpin + Send + 'static>(
    write_half: W,
    mut outbound: mpsc::Receiver<Message>,
    max_frame_bytes: usize,
    negotiated: Arc<OnceLock<u16>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let codec = ProtocolCodec::with_max_frame_bytes(max_frame_bytes);
        let mut sink = FramedWrite::new(write_half, codec);
        let mut versioned = false;
        while let Some(message) = outbound.recv().await {
            adopt_version(&mut sink, &negotiated, &mut versioned);
            if sink.feed(message).await.is_err() {
                return;
            }
            while let Ok(message) = outbound.try_recv() {
                adopt_version(&mut sink, &negotiated, &mut versioned);
                if sink.feed(message).await.is_err() {
                    return;
                }
            }
            if SinkExt::<Message>::flush(&mut sink).await.is_err() {
                return;
            }
        }
        let _ = sink.into_inner().shutdown().await;
    })
}

/// Switches the encoder to the negotiated version the first time it is known. The
/// version is set before the handshake's answer is queued, so every message queued
/// after that answer sees it.
fn adopt_version<W: AsyncWrite>(
    sink: &mut FramedWrite<W, ProtocolCodec>,
    negotiated: &OnceLock<u16>,
    versioned: &mut bool,
) {
    if !*versioned {
        if let Some(&version) = negotiated.get() {
            sink.encoder_mut().set_version(version);
            *versioned = true;
        }
    }
}
