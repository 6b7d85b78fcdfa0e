//! The silence fault at the socket level. A muzzled connection neither sends nor answers
//! anything, like a peer that vanished without closing: the WebSocket library above it may still
//! queue pongs or a close reply, but they go nowhere, and the bytes the client sends are read
//! and discarded unparsed, only so that the end of the connection is noticed.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Reads discarded in one poll before yielding to other tasks, so a client that floods a
/// muzzled connection cannot hold a worker thread.
const MAX_DISCARDS_PER_POLL: usize = 16;
const DISCARD_CHUNK_BYTES: usize = 4096;

/// The switch shared by a connection's stream and whoever decides it goes silent.
#[derive(Debug, Clone, Default)]
pub(crate) struct Muzzle(Arc<AtomicBool>);

impl Muzzle {
    /// From now on the stream sends nothing and delivers nothing but its end. Never undone.
    pub(crate) fn engage(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn is_engaged(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A stream that passes everything through until its [`Muzzle`] is engaged; then writes are
/// swallowed (reported written, never sent) and reads deliver nothing but end of stream.
#[derive(Debug)]
pub(crate) struct MuzzledStream<S> {
    inner: S,
    muzzle: Muzzle,
}

impl<S> MuzzledStream<S> {
    pub(crate) fn new(inner: S, muzzle: Muzzle) -> Self {
        Self { inner, muzzle }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for MuzzledStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.muzzle.is_engaged() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let mut chunk = [0_u8; DISCARD_CHUNK_BYTES];
        for _ in 0..MAX_DISCARDS_PER_POLL {
            let mut discard = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut discard))?;
            if discard.filled().is_empty() {
                // End of stream: the client has gone; reported as such (nothing put in `buf`).
                return Poll::Ready(Ok(()));
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for MuzzledStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.muzzle.is_engaged() {
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.muzzle.is_engaged() {
            return Poll::Ready(Ok(bufs.iter().map(|buf| buf.len()).sum()));
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.muzzle.is_engaged() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.muzzle.is_engaged() {
            // A vanished peer sends no FIN either.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn passes_through_until_muzzled_then_swallows_and_discards() {
        let (near, mut far) = tokio::io::duplex(64);
        let muzzle = Muzzle::default();
        let mut stream = MuzzledStream::new(near, muzzle.clone());

        stream.write_all(b"hello").await.expect("written");
        let mut read = [0_u8; 5];
        far.read_exact(&mut read).await.expect("arrives");
        assert_eq!(&read, b"hello");

        muzzle.engage();
        stream.write_all(b"pong").await.expect("swallowed");
        stream.shutdown().await.expect("no FIN, but fine");
        far.write_all(b"ping").await.expect("sent");
        far.shutdown().await.expect("client done");
        let mut delivered = Vec::new();
        stream.read_to_end(&mut delivered).await.expect("ends");
        assert!(delivered.is_empty(), "nothing but the end: {delivered:?}");
        drop(stream);
        let mut sent = Vec::new();
        far.read_to_end(&mut sent).await.expect("closed");
        assert!(sent.is_empty(), "nothing sent once muzzled: {sent:?}");
    }
}
