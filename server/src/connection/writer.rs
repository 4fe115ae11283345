//! The writer half of a connection: one task that owns the socket's write half and
//! drains the connection's bounded outbound queue (answers and pushed deliveries).

use futures_util::SinkExt;
use protocol::codec::ProtocolCodec;
use protocol::Message;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::codec::FramedWrite;

/// Starts the writer: it encodes everything queued back to back and flushes once per
/// burst, until every sender is gone or the socket fails.
pub fn spawn(
    write_half: OwnedWriteHalf,
    mut outbound: mpsc::Receiver<Message>,
    max_frame_bytes: usize,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let codec = ProtocolCodec::with_max_frame_bytes(max_frame_bytes);
        let mut sink = FramedWrite::new(write_half, codec);
        while let Some(message) = outbound.recv().await {
            if sink.feed(message).await.is_err() {
                return;
            }
            while let Ok(message) = outbound.try_recv() {
                if sink.feed(message).await.is_err() {
                    return;
                }
            }
            if SinkExt::<Message>::flush(&mut sink).await.is_err() {
                return;
            }
        }
    })
}
