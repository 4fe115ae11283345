//! The time a connection last received a byte: a reader wrapper that notes every read
//! that made progress, so the connection can tell a frame that is arriving slowly from
//! one that stopped arriving.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::Instant;

/// When the reader last got bytes (shared with the connection).
#[derive(Debug, Clone)]
pub struct LastRead {
    since: Instant,
    /// Milliseconds from `since` to the last read that returned bytes.
    at_ms: Arc<AtomicU64>,
}

impl LastRead {
    /// Starting now.
    pub fn new() -> LastRead {
        LastRead {
            since: Instant::now(),
            at_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The time of the last read that returned bytes (or of the start).
    pub fn at(&self) -> Instant {
        self.since + std::time::Duration::from_millis(self.at_ms.load(Ordering::Relaxed))
    }

    fn touch(&self) {
        let ms = self.since.elapsed().as_millis() as u64;
        self.at_ms.fetch_max(ms, Ordering::Relaxed);
    }
}

impl Default for LastRead {
    fn default() -> Self {
        LastRead::new()
    }
}

/// `inner`, noting in `last` every read that returns bytes.
#[derive(Debug)]
pub struct Progressed<R> {
    inner: R,
    last: LastRead,
}

impl<R> Progressed<R> {
    /// Wraps `inner`.
    pub fn new(inner: R, last: LastRead) -> Progressed<R> {
        Progressed { inner, last }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Progressed<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.last.touch();
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn only_reads_that_return_bytes_count() {
        let (mut client, server) = tokio::io::duplex(64);
        let last = LastRead::new();
        let start = last.at();
        let mut reader = Progressed::new(server, last.clone());
        tokio::time::advance(std::time::Duration::from_secs(5)).await;
        client.write_all(b"abc").await.unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(reader.read(&mut buf).await.unwrap(), 3);
        assert_eq!(last.at() - start, std::time::Duration::from_secs(5));
        tokio::time::advance(std::time::Duration::from_secs(5)).await;
        drop(client);
        assert_eq!(reader.read(&mut buf).await.unwrap(), 0, "end of stream");
        assert_eq!(
            last.at() - start,
            std::time::Duration::from_secs(5),
            "EOF is no progress"
        );
    }
}
