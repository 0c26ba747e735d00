//! A stream that first replays bytes already read from it: what lets the main port sniff a
//! policy request and then hand the same bytes to the HTTP parser.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::policy::sniff::MAX_SNIFF;

/// `inner`, with `prefix[start..end]` in front of its first read. No allocation.
pub struct Prefixed<S> {
    /// Bytes read during sniffing, not yet handed out.
    prefix: [u8; MAX_SNIFF],
    /// Next byte of `prefix` to hand out.
    start: usize,
    /// End of the valid bytes in `prefix`.
    end: usize,
    /// The connection.
    inner: S,
}

impl<S> Prefixed<S> {
    /// Wraps `inner`, replaying `prefix` (at most [`MAX_SNIFF`] bytes) first.
    pub fn new(inner: S, prefix: &[u8]) -> Self {
        let mut buf = [0; MAX_SNIFF];
        let end = prefix.len().min(MAX_SNIFF);
        buf[..end].copy_from_slice(&prefix[..end]);
        Prefixed {
            prefix: buf,
            start: 0,
            end,
            inner,
        }
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The stream and the bytes of the prefix not handed out yet.
    pub fn into_parts(self) -> (S, bytes::Bytes) {
        let rest = bytes::Bytes::copy_from_slice(&self.prefix[self.start..self.end]);
        (self.inner, rest)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.start < self.end {
            let n = (self.end - self.start).min(buf.remaining());
            let start = self.start;
            buf.put_slice(&self.prefix[start..start + n]);
            self.start += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
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
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn replays_the_prefix_then_reads_the_rest() {
        let rest: &[u8] = b" / HTTP/1.1\r\n";
        let mut stream = Prefixed::new(rest, b"GET");
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"GET / HTTP/1.1\r\n");
    }

    #[tokio::test]
    async fn small_reads_take_the_prefix_piece_by_piece() {
        let mut stream = Prefixed::new(&b"c"[..], b"ab");
        let mut one = [0u8; 1];
        for want in [b'a', b'b', b'c'] {
            stream.read_exact(&mut one).await.unwrap();
            assert_eq!(one[0], want);
        }
    }
}
