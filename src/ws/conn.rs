//! The TCP connection under tungstenite: reads and writes batched while data flows, with
//! buffers that exist only while it does.
//!
//! Reads go through [`ReadAhead`]: batched while data flows, with no buffer while the
//! client is quiet.
//!
//! Writes are the mirror image: the session frames each message straight into the queue
//! here ([`Conn::queue`]), tungstenite hands over its control frames as it writes them (its
//! own write buffer is off, since it would keep its largest size for the connection's
//! life), and the queue goes out in one system call when the session flushes (it has nothing
//! more to say) or when `CHUNK` bytes are waiting. The queue is freed when it empties.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use crate::stream::Stream;
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::io::poll_read_buf;

use super::boundary::Boundary;
use crate::batched::{CHUNK, ReadAhead, poll_drain, with_scratch};
use crate::session::Payload;

/// A TCP stream whose reads are batched while data keeps coming; writes pass through.
pub struct Conn {
    /// The socket.
    inner: Stream,
    /// Bytes read and not handed out yet.
    reader: ReadAhead,
    /// Frames waiting to be sent.
    out: BytesMut,
    /// Where the bytes handed out stand between frames.
    boundary: Boundary,
}

impl Conn {
    /// Wraps `inner`; `pending` (bytes already read from it, by the HTTP parser say) is
    /// handed out first.
    pub fn new(inner: Stream, pending: Bytes) -> Self {
        Conn {
            inner,
            reader: ReadAhead::new(pending),
            out: BytesMut::new(),
            boundary: Boundary::default(),
        }
    }

    /// True when nothing is in flight either way: no bytes read and not handed out, none
    /// queued to send, and what was handed out ends between messages. The connection can
    /// then be taken apart ([`into_inner`](Self::into_inner)) and rebuilt later without a
    /// byte lost, provided its reader has nothing buffered either (it waits to read).
    pub fn at_rest(&self) -> bool {
        self.reader.is_empty() && self.out.is_empty() && self.boundary.at_rest()
    }

    /// True when it can sleep: a plain connection (a sleeper's table holds bare sockets).
    pub fn can_sleep(&self) -> bool {
        !self.inner.is_tls()
    }

    /// The connection.
    pub fn into_inner(self) -> Stream {
        self.inner
    }

    /// True when bytes are queued to be sent.
    pub fn has_unsent(&self) -> bool {
        !self.out.is_empty()
    }

    /// Queues `bytes` to be sent before anything written after.
    pub fn owe(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Queues `payload` as one frame (`flash`: a client that takes text frames only); true
    /// when a full batch is waiting and should be sent ([`poll_send`](Self::poll_send))
    /// before more is queued.
    pub fn queue(&mut self, payload: &Payload, flash: bool) -> bool {
        crate::codec::encode(&mut self.out, payload, flash);
        self.out.len() >= CHUNK
    }

    /// Queues what `frame` writes (a transport that frames by hand: hixie-76); true when a
    /// full batch is waiting, as for [`queue`](Self::queue).
    pub fn queue_with(&mut self, frame: impl FnOnce(&mut BytesMut)) -> bool {
        frame(&mut self.out);
        self.out.len() >= CHUNK
    }

    /// Queues one frame with `opcode` and `body`.
    pub fn queue_raw(&mut self, opcode: u8, body: &[u8]) {
        crate::codec::encode_raw(&mut self.out, opcode, body);
    }

    /// Queues a close frame with `code` and `reason`.
    pub fn queue_close(&mut self, code: u16, reason: &str) {
        crate::codec::encode_close(&mut self.out, code, reason);
    }
}

impl Conn {
    /// Reads straight into `into` (bytes read ahead first), for a session that does its own
    /// framing; the count of bytes added, 0 at the end of the stream.
    pub fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        into: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        if !self.reader.is_empty() {
            return Poll::Ready(Ok(self.reader.drain_into(into)));
        }
        poll_read_buf(Pin::new(&mut self.inner), cx, into)
    }

    /// Reads what has come (bytes read ahead first) into the thread's scratch buffer and
    /// hands it to `f`, which may change it in place: for a session that decodes as it
    /// reads and keeps only what it decoded. `None` at the end of the stream.
    pub fn poll_read_with<T>(
        &mut self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut [u8]) -> T,
    ) -> Poll<io::Result<Option<T>>> {
        if !self.reader.is_empty() {
            let mut pending = BytesMut::new();
            self.reader.drain_into(&mut pending);
            return Poll::Ready(Ok(Some(f(&mut pending))));
        }
        with_scratch(|scratch| {
            let n = ready!(self.inner.poll_read_drained(cx, scratch))?;
            Poll::Ready(Ok((n > 0).then(|| f(&mut scratch[..n]))))
        })
    }

    /// As [`poll_read_into`](Self::poll_read_into), but through the thread's scratch
    /// buffer: `into` grows by what came, not by a whole read's room, so a session that
    /// waits for its client holds no read buffer.
    pub fn poll_read_append(
        &mut self,
        cx: &mut Context<'_>,
        into: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        if !self.reader.is_empty() {
            return self.poll_read_into(cx, into);
        }
        with_scratch(|scratch| {
            let mut read = ReadBuf::new(scratch);
            ready!(Pin::new(&mut self.inner).poll_read(cx, &mut read))?;
            into.extend_from_slice(read.filled());
            Poll::Ready(Ok(read.filled().len()))
        })
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = out.filled().len();
        ready!(this.reader.poll_read(&mut this.inner, cx, out))?;
        this.boundary.feed(&out.filled()[before..]);
        Poll::Ready(Ok(()))
    }
}

impl Conn {
    /// Sends everything queued for the client; the buffer goes once it is empty (unless it is
    /// small), so a connection that has gone quiet holds none.
    pub fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        poll_drain(&mut self.inner, &mut self.out, cx)
    }
}

impl AsyncWrite for Conn {
    /// Queues `data` (tungstenite hands over each frame as it is written); the queue goes out
    /// on flush, or first when `data` would take it past `CHUNK`.
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        // Every frame, data or control, goes through the one queue: the order frames are
        // queued in is the order they are sent in, whatever their sizes.
        let this = &mut *self;
        if !this.out.is_empty() && this.out.len() + data.len() > CHUNK {
            ready!(this.poll_send(cx))?;
        }
        this.out.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_send(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_send(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::Stream;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// A connected pair of real sockets: (the far end, ours).
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let far = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (ours, _) = listener.accept().await.unwrap();
        (far, ours)
    }

    #[tokio::test]
    async fn bytes_arrive_in_order_whatever_the_read_sizes() {
        let (mut tx, rx) = pair().await;
        let data: Vec<u8> = (0..2_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            for (i, piece) in sent.chunks(10_007).enumerate() {
                tx.write_all(piece).await.unwrap();
                if i % 16 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        });
        let mut reader = Conn::new(Stream::plain(rx), Bytes::from_static(b"head"));
        let mut got = Vec::new();
        let mut small = [0u8; 1024];
        while got.len() < data.len() + 4 {
            let n = reader.read(&mut small).await.unwrap();
            assert!(n > 0);
            got.extend_from_slice(&small[..n]);
        }
        writer.await.unwrap();
        assert_eq!(&got[..4], b"head");
        assert_eq!(&got[4..], &data[..]);
    }

    #[tokio::test]
    async fn a_short_read_still_wakes_for_the_next_bytes() {
        let (mut tx, rx) = pair().await;
        let mut reader = Conn::new(Stream::plain(rx), Bytes::new());
        let mut buf = [0u8; 1024];
        for round in 0..50u8 {
            tx.write_all(&[round; 3]).await.unwrap();
            let n = tokio::time::timeout(Duration::from_secs(5), reader.read(&mut buf))
                .await
                .expect("woken for the next bytes")
                .unwrap();
            assert_eq!(&buf[..n], &[round; 3]);
        }
    }

    #[tokio::test]
    async fn the_buffer_is_freed_when_the_socket_runs_dry() {
        let (mut tx, rx) = pair().await;
        tx.write_all(&[1u8; 5000]).await.unwrap();
        let mut reader = Conn::new(Stream::plain(rx), Bytes::new());
        let mut small = [0u8; 1024];
        let mut total = 0;
        while total < 5000 {
            total += reader.read(&mut small).await.unwrap();
        }
        // Nothing more: the next read waits, and the read-ahead buffer is gone meanwhile.
        let waiting =
            tokio::time::timeout(Duration::from_millis(50), reader.read(&mut small)).await;
        assert!(waiting.is_err());
        assert!(reader.reader.holds_nothing());
        // And the end of the stream is still seen.
        drop(tx);
        assert_eq!(reader.read(&mut small).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn writes_queue_until_flushed_then_the_queue_is_freed() {
        let (mut far, ours) = pair().await;
        let mut conn = Conn::new(Stream::plain(ours), Bytes::new());
        let frame = [7u8; 10_000];
        for _ in 0..5 {
            conn.write_all(&frame).await.unwrap();
        }
        // Under the batch size: nothing has gone out yet.
        let mut probe = [0u8; 1];
        let early = tokio::time::timeout(Duration::from_millis(50), far.read(&mut probe)).await;
        assert!(early.is_err(), "sent before the flush");
        conn.flush().await.unwrap();
        let mut got = vec![0u8; 50_000];
        far.read_exact(&mut got).await.unwrap();
        assert!(got.iter().all(|&b| b == 7));
        assert_eq!(conn.out.capacity(), 0, "a large emptied queue is freed");
    }

    #[tokio::test]
    async fn a_full_batch_goes_out_without_waiting_for_the_flush() {
        let (mut far, ours) = pair().await;
        let mut conn = Conn::new(Stream::plain(ours), Bytes::new());
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let reader = tokio::spawn(async move {
            let mut got = vec![0u8; 300_000 - CHUNK];
            far.read_exact(&mut got).await.unwrap();
            got
        });
        for piece in data.chunks(1000) {
            conn.write_all(piece).await.unwrap();
        }
        // Not flushed: at most one batch is still queued, the rest is on its way in order.
        let got = reader.await.unwrap();
        assert_eq!(&got[..], &data[..got.len()]);
        assert!(conn.out.len() <= CHUNK);
    }
}
