//! A client's connection: plain TCP, or TLS over it (rustls, driven here by hand).
//!
//! Everything above speaks to a client through [`Stream`]: the HTTP server (through
//! `AsyncRead`/`AsyncWrite`), the batched WebSocket connection and the parked SockJS
//! responses (through the non-blocking [`Stream::try_read`] and [`Stream::try_write`] and
//! their readiness). A plain stream is the TCP stream itself, with no cost added. A TLS one
//! keeps rustls's connection beside the socket: reads take records off the socket and hand
//! out what they decrypt, writes encrypt into rustls's queue and send what the socket takes.
//! What the socket has not taken yet stays in that queue ([`Stream::owes`]) and goes first
//! on the next write or once the socket is writable again.
//!
//! Only a plain stream can sleep (the sleepers' table holds bare sockets, written to by
//! rooms): [`Stream::into_plain`].

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use rustls::ServerConnection;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Marks a request that came over TLS (in its extensions).
#[derive(Debug, Clone, Copy)]
pub struct Secure;

/// A client's connection, plain or TLS.
pub struct Stream {
    /// The socket.
    tcp: TcpStream,
    /// rustls's side of a TLS connection (its handshake done or under way).
    tls: Option<Box<ServerConnection>>,
}

/// The socket as rustls reads and writes it: without waiting.
struct Sock<'a>(&'a TcpStream);

impl Read for Sock<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Write for Sock<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A rustls error as an I/O error.
fn broken(error: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

impl Stream {
    /// `tcp` as it is.
    pub fn plain(tcp: TcpStream) -> Stream {
        Stream { tcp, tls: None }
    }

    /// `tcp` under TLS, rustls's side being `tls`.
    pub fn tls(tcp: TcpStream, tls: ServerConnection) -> Stream {
        Stream {
            tcp,
            tls: Some(Box::new(tls)),
        }
    }

    /// The socket.
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// True for a TLS connection.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The socket itself, for a plain stream; a TLS one comes back as it was.
    pub fn into_plain(self) -> Result<TcpStream, Stream> {
        match self.tls {
            None => Ok(self.tcp),
            Some(_) => Err(self),
        }
    }

    /// True when TLS records are waiting for the socket to take them.
    pub fn owes(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.wants_write())
    }

    /// Sends what rustls has queued as far as the socket takes it: `WouldBlock` if some is
    /// left.
    pub fn try_flush(&mut self) -> io::Result<()> {
        let Some(tls) = self.tls.as_deref_mut() else {
            return Ok(());
        };
        while tls.wants_write() {
            if tls.write_tls(&mut Sock(&self.tcp))? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    /// Reads what has come, without waiting: `WouldBlock` when nothing has; 0 at the end.
    pub fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_deref_mut() else {
            return self.tcp.try_read(buf);
        };
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // Closed without a close_notify: as most browsers end, an end all the same.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            let got = tls.read_tls(&mut Sock(&self.tcp))?;
            let processed = tls.process_new_packets();
            // An alert, a handshake answer or a key update may be waiting to go.
            while tls.wants_write() && tls.write_tls(&mut Sock(&self.tcp)).is_ok_and(|n| n > 0) {}
            processed.map_err(broken)?;
            if got == 0 {
                return Ok(0);
            }
        }
    }

    /// Waits until something can be read and reads it into `buf`, as
    /// [`batched::try_read_drained`](crate::batched::try_read_drained) does for a plain
    /// stream.
    pub fn poll_read_drained(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if self.tls.is_none() {
            return crate::batched::poll_read_drained(&self.tcp, cx, buf);
        }
        loop {
            ready!(self.poll_read_ready(cx))?;
            match self.try_read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                read => return Poll::Ready(read),
            }
        }
    }

    /// Waits until a read has something: for TLS, bytes already decrypted count.
    pub fn poll_read_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(tls) = self.tls.as_deref_mut()
            && tls
                .process_new_packets()
                .is_ok_and(|state| state.plaintext_bytes_to_read() > 0 || state.peer_has_closed())
        {
            return Poll::Ready(Ok(()));
        }
        self.tcp.poll_read_ready(cx)
    }

    /// Writes as much of `buf` as can go now, without waiting: `WouldBlock` when nothing
    /// could. For TLS, what is encrypted counts as written, whether or not the socket has
    /// taken it yet ([`owes`](Self::owes)).
    pub fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.tls.is_none() {
            return self.tcp.try_write(buf);
        }
        // Records queued before go first; while they wait, nothing more is taken.
        self.try_flush()?;
        let tls = self.tls.as_deref_mut().expect("a TLS stream");
        let n = tls.writer().write(buf)?;
        if n == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        match self.try_flush() {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
            _ => Ok(n),
        }
    }

    /// Waits until a write can go: for TLS, once what rustls has queued is sent.
    pub fn poll_write_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if !self.owes() {
                return match self.tls {
                    None => self.tcp.poll_write_ready(cx),
                    Some(_) => Poll::Ready(Ok(())),
                };
            }
            ready!(self.tcp.poll_write_ready(cx))?;
            match self.try_flush() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                done => return Poll::Ready(done),
            }
        }
    }
}

impl Stream {
    /// Drives a TLS handshake to its end (a plain stream has none): what rustls has to
    /// send goes out, and what the client sends is read, until the handshake is over or
    /// fails (an alert is sent first, if the socket takes it).
    pub fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let Some(tls) = self.tls.as_deref_mut() else {
                return Poll::Ready(Ok(()));
            };
            if let Err(error) = tls.process_new_packets() {
                let _ = self.try_flush();
                return Poll::Ready(Err(broken(error)));
            }
            ready!(self.poll_write_ready(cx))?;
            let tls = self.tls.as_deref_mut().expect("a TLS stream");
            if !tls.is_handshaking() {
                return Poll::Ready(Ok(()));
            }
            ready!(self.tcp.poll_read_ready(cx))?;
            match tls.read_tls(&mut Sock(&self.tcp)) {
                Ok(0) => {
                    let why = "closed during the TLS handshake";
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::UnexpectedEof, why)));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.tls.is_none() {
            return Pin::new(&mut this.tcp).poll_read(cx, buf);
        }
        loop {
            ready!(this.poll_read_ready(cx))?;
            match this.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.tls.is_none() {
            return Pin::new(&mut this.tcp).poll_write(cx, buf);
        }
        loop {
            ready!(this.poll_write_ready(cx))?;
            match this.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                written => return Poll::Ready(written),
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.tls {
            None => Poll::Ready(Ok(())),
            Some(_) => self.poll_write_ready(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(tls) = this.tls.as_deref_mut() {
            // Queued once, however often this is polled.
            tls.send_close_notify();
            ready!(this.poll_write_ready(cx))?;
        }
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}
