//! A read-ahead buffer under tungstenite that exists only while data flows.
//!
//! tungstenite reads at most its read-buffer size per `read` call and allocates that buffer
//! for every connection up front. A small one keeps idle connections cheap but turns a large
//! message into many system calls; a large one costs its size on every idle connection.
//! [`ReadAhead`] lets tungstenite keep a small buffer: reads go straight through until one
//! fills tungstenite's buffer completely (more is waiting), and from then on the socket is
//! read in large chunks into a buffer of our own, which tungstenite's small reads copy from.
//! The buffer is freed as soon as the socket runs dry, so an idle connection holds none.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::io::poll_read_buf;

/// Bytes read from the socket at once while a large message or a burst is arriving.
const CHUNK: usize = 64 * 1024;

/// A stream whose reads are batched while data keeps coming; writes pass through.
pub struct ReadAhead<S> {
    /// The socket.
    inner: S,
    /// Bytes read ahead and not handed out yet. Read into without zeroing; no allocation
    /// unless the last direct read came back full.
    buf: BytesMut,
    /// Reading ahead (the last direct read filled the caller's buffer).
    ahead: bool,
}

impl<S> ReadAhead<S> {
    pub fn new(inner: S) -> Self {
        ReadAhead {
            inner,
            buf: BytesMut::new(),
            ahead: false,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadAhead<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.buf.is_empty() {
            if !this.ahead {
                // Straight through; a read that fills the caller's buffer means more is
                // waiting, so the next one reads ahead.
                let before = out.filled().len();
                ready!(Pin::new(&mut this.inner).poll_read(cx, out))?;
                this.ahead = out.remaining() == 0 && out.filled().len() > before;
                return Poll::Ready(Ok(()));
            }
            this.buf.reserve(CHUNK);
            match poll_read_buf(Pin::new(&mut this.inner), cx, &mut this.buf) {
                Poll::Ready(Ok(0)) => {
                    this.ahead = false; // end of stream
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    // Dry: give the memory back until data flows again.
                    this.buf = BytesMut::new();
                    this.ahead = false;
                    return Poll::Pending;
                }
            }
        }
        let n = out.remaining().min(this.buf.len());
        out.put_slice(&this.buf[..n]);
        this.buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ReadAhead<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn bytes_arrive_in_order_whatever_the_read_sizes() {
        let (mut tx, rx) = tokio::io::duplex(256 * 1024);
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            for piece in sent.chunks(10_007) {
                tx.write_all(piece).await.unwrap();
            }
        });
        let mut reader = ReadAhead::new(rx);
        let mut got = Vec::new();
        let mut small = [0u8; 1024];
        while got.len() < data.len() {
            let n = reader.read(&mut small).await.unwrap();
            assert!(n > 0);
            got.extend_from_slice(&small[..n]);
        }
        writer.await.unwrap();
        assert_eq!(got, data);
    }

    #[tokio::test]
    async fn the_buffer_is_freed_when_the_socket_runs_dry() {
        let (mut tx, rx) = tokio::io::duplex(256 * 1024);
        tx.write_all(&[1u8; 5000]).await.unwrap();
        let mut reader = ReadAhead::new(rx);
        let mut small = [0u8; 1024];
        let mut total = 0;
        while total < 5000 {
            total += reader.read(&mut small).await.unwrap();
        }
        // Nothing more: the next read waits, and the read-ahead buffer is gone meanwhile.
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            reader.read(&mut small),
        )
        .await;
        assert!(waiting.is_err());
        assert_eq!(reader.buf.capacity(), 0);
        assert!(!reader.ahead);
    }
}
