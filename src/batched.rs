//! Socket reads and writes batched while data flows, with buffers that exist only while it
//! does: what the WebSocket connections on both sides of the gateway go through (a
//! client's, `ws::conn`, and an upstream server's, `backend::relay`).
//!
//! Writes: frames are queued, and the queue goes out in one system call ([`poll_drain`]);
//! it is let go of once empty, unless small.
//!
//! tungstenite reads at most its read-buffer size per `read` call and allocates that buffer
//! for every connection up front. A small one keeps idle connections cheap but turns a large
//! message into many system calls; a large one costs its size on every idle connection.
//! [`ReadAhead`] lets tungstenite keep a small buffer. A read takes everything the socket
//! holds in one system call, into a scratch buffer shared by the thread's connections,
//! however little room tungstenite has left; tungstenite gets what fits and the rest is kept
//! with the connection. While more keeps coming (a large message, a burst), the socket is
//! read in large chunks into that buffer of the connection's, which tungstenite's small
//! reads copy from; it is freed as soon as the socket runs dry, so an idle connection holds
//! none.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::io::poll_read_buf;

/// Bytes read from the socket at once while a large message or a burst is arriving.
pub const CHUNK: usize = 64 * 1024;

thread_local! {
    /// Where direct reads land before they are handed out: one per thread, not one per
    /// connection.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; CHUNK]);
}

/// An emptied buffer at most this large is kept for the next burst.
const KEEP_OUT: usize = 4 * 1024;

/// Writes all of `out` to `io`; the queue's memory goes once it is empty (unless small), so
/// a connection gone quiet holds none.
pub fn poll_drain<W: AsyncWrite + Unpin>(
    io: &mut W,
    out: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    while !out.is_empty() {
        let n = ready!(Pin::new(&mut *io).poll_write(cx, out))?;
        if n == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        taken(out, n);
    }
    release(out);
    Poll::Ready(Ok(()))
}

/// An emptied buffer is let go of, unless small: a busy connection keeps its room, a quiet
/// one or one past a bulk transfer holds none.
pub fn release(buf: &mut BytesMut) {
    if buf.is_empty() && buf.capacity() > KEEP_OUT {
        *buf = BytesMut::new();
    }
}

/// The first `n` bytes of `out` were written. Written whole, the queue is emptied where it
/// starts, so what is queued next goes there without the buffer being set back first.
pub fn taken(out: &mut BytesMut, n: usize) {
    match n == out.len() {
        true => out.clear(),
        false => out.advance(n),
    }
}

/// Reads from `tcp` into `buf` if it is ready (`WouldBlock` if not). A read that leaves
/// room in `buf` took all the socket held, so its readiness is cleared then: the next wait
/// parks at once instead of reading again only to hear `EAGAIN`. Data that arrives later
/// raises readiness anew (the runtime's readiness carries a tick, and clearing it is a no-op
/// once a newer event came).
pub fn try_read_drained(tcp: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    let (room, mut got) = (buf.len(), 0);
    let read = tcp.try_io(Interest::READABLE, || {
        got = tcp.try_read(buf)?;
        match got > 0 && got < room {
            true => Err(io::ErrorKind::WouldBlock.into()),
            false => Ok(()),
        }
    });
    match read {
        Err(e) if e.kind() != io::ErrorKind::WouldBlock || got == 0 => Err(e),
        _ => Ok(got),
    }
}

/// Waits until `tcp` is readable and reads into `buf` as [`try_read_drained`] does.
pub fn poll_read_drained(
    tcp: &TcpStream,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<io::Result<usize>> {
    loop {
        ready!(tcp.poll_read_ready(cx))?;
        match try_read_drained(tcp, buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            read => return Poll::Ready(read),
        }
    }
}

/// Runs `f` with the thread's scratch buffer.
pub fn with_scratch<T>(f: impl FnOnce(&mut [u8]) -> T) -> T {
    SCRATCH.with_borrow_mut(|scratch| f(scratch))
}

/// The read side's state of one connection.
#[derive(Default)]
pub struct ReadAhead {
    /// Bytes read and not handed out yet. Read into without zeroing; empty (no allocation)
    /// unless the last read brought more than the caller could take.
    buf: BytesMut,
    /// Reading ahead into `buf` (the last direct read brought more than the caller took).
    ahead: bool,
}

impl ReadAhead {
    /// With `pending` (bytes already read, by the HTTP parser say) to hand out first.
    pub fn new(pending: Bytes) -> ReadAhead {
        ReadAhead {
            buf: BytesMut::from(&pending[..]),
            ahead: false,
        }
    }

    /// True when nothing read is waiting to be handed out.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// True when it holds no buffer and is not reading ahead: what a quiet connection's is.
    #[cfg(test)]
    pub fn holds_nothing(&self) -> bool {
        self.buf.capacity() == 0 && !self.ahead
    }

    /// Moves what was read ahead into `into`: how many bytes.
    pub fn drain_into(&mut self, into: &mut BytesMut) -> usize {
        let n = self.buf.len();
        into.extend_from_slice(&self.buf);
        self.buf = BytesMut::new();
        self.ahead = false;
        n
    }

    /// Reads from `inner` into `out` as the module says.
    pub fn poll_read<R: AsyncRead + Unpin>(
        &mut self,
        inner: &mut R,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.buf.is_empty() {
            if !self.ahead {
                // One read into the thread's scratch buffer takes everything the socket
                // holds (the caller's own buffer may have room for a few bytes only); what
                // the caller cannot take is kept, and means more may be waiting, so the
                // next reads go ahead in large chunks.
                return with_scratch(|scratch| {
                    let mut read = ReadBuf::new(scratch);
                    ready!(Pin::new(&mut *inner).poll_read(cx, &mut read))?;
                    let got = read.filled();
                    let n = got.len().min(out.remaining());
                    out.put_slice(&got[..n]);
                    if got.len() > n {
                        self.buf.extend_from_slice(&got[n..]);
                        self.ahead = true;
                    }
                    Poll::Ready(Ok(()))
                });
            }
            self.buf.reserve(CHUNK);
            match poll_read_buf(Pin::new(inner), cx, &mut self.buf) {
                Poll::Ready(Ok(0)) => {
                    self.ahead = false; // end of stream
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    // Dry: give the memory back until data flows again.
                    self.buf = BytesMut::new();
                    self.ahead = false;
                    return Poll::Pending;
                }
            }
        }
        let n = out.remaining().min(self.buf.len());
        out.put_slice(&self.buf[..n]);
        self.buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_written_whole_keeps_its_room_and_a_part_written_keeps_the_rest() {
        let mut out = BytesMut::with_capacity(1024);
        out.extend_from_slice(&[7; 300]);
        taken(&mut out, 100);
        assert_eq!(&out[..], &[7; 200][..], "the rest, in order");
        taken(&mut out, 200);
        assert!(out.is_empty());
        // The next batch fits where the first began: no setting back, no new allocation.
        assert_eq!(out.capacity(), 1024 - 100);
        let before = out.as_ptr();
        out.extend_from_slice(&[9; 900]);
        assert_eq!(out.as_ptr(), before);
    }
}
