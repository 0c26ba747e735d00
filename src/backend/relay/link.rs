//! A connection to a WebSocket server: plain TCP (`ws://`) or TLS over it (`wss://`),
//! read through a [`ReadAhead`] so that a quiet server's connection holds no read buffer.
//!
//! Writes go through one queue: the relay frames each client message straight into it
//! ([`Link::queue`]: masked, as a client's frames are), tungstenite hands over its control
//! frames (pongs, the close) as it writes them, so frames go out in the order they were
//! queued; the queue is written when the relay flushes, or first when it would pass
//! [`CHUNK`], and is let go of once empty (unless small).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::batched::{CHUNK, ReadAhead, poll_drain};
use crate::codec;
use crate::session::Payload;

/// A connection, its read side's state and its write queue.
pub struct Link {
    /// The connection.
    io: Io,
    /// What was read and not taken yet.
    reader: ReadAhead,
    /// Frames waiting to be written.
    out: BytesMut,
}

impl Link {
    /// Wraps `io`.
    pub fn new(io: Io) -> Link {
        Link {
            io,
            reader: ReadAhead::default(),
            out: BytesMut::new(),
        }
    }

    /// Queues `payload` as one masked frame: the bytes now waiting to be written.
    pub fn queue(&mut self, payload: &Payload) -> usize {
        let (opcode, body): (u8, &[u8]) = match payload {
            Payload::Text(text) => (codec::opcode::TEXT, text.as_bytes()),
            Payload::Binary(bytes) => (codec::opcode::BINARY, bytes),
        };
        codec::encode_masked(&mut self.out, true, opcode, body, codec::mask_key());
        self.out.len()
    }

    /// Writes everything queued.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        poll_drain(&mut self.io, &mut self.out, cx)
    }
}

/// Plain or TLS.
pub enum Io {
    /// `ws://`.
    Plain(TcpStream),
    /// `wss://` (boxed: rustls's state is large, and most links are plain).
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Link {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.reader.poll_read(&mut this.io, cx, buf)
    }
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Link {
    /// Queues `buf` (tungstenite's control frames); the queue goes out on flush, or first
    /// when `buf` would take it past [`CHUNK`].
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.out.len() + buf.len() > CHUNK {
            ready!(this.poll_send(cx))?;
        }
        this.out.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}
