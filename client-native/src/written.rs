//! Counts the bytes the OS accepts from the WebSocket's writes, so the writer can tell
//! which messages were wholly handed to the socket before it broke (those may be lost
//! with it) and which never were (those are sent again on the next connection).
//!
//! Under TLS it counts the plaintext the TLS layer accepted, which rustls encrypts and
//! writes on; tungstenite's automatic replies (pongs, a close reply) count as well, so a
//! message may be counted written up to one such frame early, never late: a message is
//! never sent twice because of this count.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A stream that adds every byte its writes accept to a shared counter.
#[derive(Debug)]
pub(crate) struct CountWrites<S> {
    inner: S,
    written: Arc<AtomicU64>,
}

impl<S> CountWrites<S> {
    pub(crate) fn new(inner: S, written: Arc<AtomicU64>) -> Self {
        Self { inner, written }
    }

    fn count(&self, result: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if let Poll::Ready(Ok(accepted)) = result {
            self.written.fetch_add(accepted as u64, Ordering::Release);
        }
        result
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CountWrites<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CountWrites<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.count(result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.count(result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn counts_what_the_inner_stream_accepted() {
        let (client, _server) = tokio::io::duplex(8);
        let counter = Arc::new(AtomicU64::new(0));
        let mut stream = CountWrites::new(client, Arc::clone(&counter));
        stream.write_all(b"hello").await.unwrap();
        assert_eq!(counter.load(Ordering::Acquire), 5);
        // Room for only 3 more in the pipe: a partial write counts 3.
        let accepted = stream.write(b"world!").await.unwrap();
        assert_eq!(accepted, 3);
        assert_eq!(counter.load(Ordering::Acquire), 8);
    }
}
