//! A receiving request's connection while its response waits for messages: the socket
//! alone, out of the HTTP server's hands ([`crate::handoff`]), written to directly by the
//! session's backend task (messages, in the response's own framing), and by the endpoint's
//! sweep (heartbeats). No task and no buffers of its own while nothing is owed.

use std::cell::RefCell;
use std::io;
use std::time::Duration;

use crate::stream::Stream;
use tokio::time::Instant;
use tungstenite::Utf8Bytes;

use super::frames::{self, Wrap};
use crate::handoff::Back;
use crate::policy::sniff::MAX_SNIFF;
use crate::session::Framing;

/// The end of a chunked body.
const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Writes as much of `bytes` as `stream` takes now, without waiting: how much it took.
fn try_write_all(stream: &mut Stream, bytes: &[u8]) -> io::Result<usize> {
    let mut written = 0;
    while written < bytes.len() {
        match stream.try_write(&bytes[written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}

/// Above this, the scratch buffer is given back rather than kept for the next frame.
const SCRATCH_KEEP: usize = 64 * 1024;

thread_local! {
    /// Where frames are built before they are written: one buffer per thread, so that a
    /// response keeps none while nothing is owed.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// How a handed-off response goes on: what the taker needs besides the socket.
pub struct Ongoing {
    /// Where the connection goes after it.
    pub back: Back,
    /// HTTP/1.1: the body is chunked, and the connection is served again after it unless
    /// the client asked to close it. HTTP/1.0: the body ends with the connection.
    pub chunked: bool,
    /// The client asked for the connection to close after this response.
    pub close: bool,
    /// How frames are wrapped.
    pub wrap: Wrap,
    /// Frame bytes after which the response ends (1 for polling).
    pub limit: usize,
    /// Frame bytes the server already sent.
    pub sent: usize,
    /// How long the end of the response may take to write.
    pub patience: Duration,
}

/// A waiting response's connection.
pub struct Parked {
    stream: Stream,
    response: Box<Ongoing>,
    /// Framed, not yet written (the socket was full).
    out: Vec<u8>,
    /// What the client sent meanwhile: the start of its next request.
    early: Vec<u8>,
    /// When the last frame was written, for heartbeats.
    last: Instant,
}

/// What became of a parked response after a frame.
#[must_use]
pub enum After {
    /// It waits for more.
    Waits,
    /// It has had all it may: end it ([`Parked::finish`]).
    Full,
    /// The client is gone.
    Gone,
}

impl Parked {
    /// `stream`, going on with `response`.
    pub fn new(stream: Stream, response: Ongoing) -> Parked {
        Parked {
            stream,
            response: Box::new(response),
            out: Vec::new(),
            early: Vec::new(),
            last: Instant::now(),
        }
    }

    /// Bytes framed and not yet written (a TLS connection's records not yet sent count
    /// as one more).
    pub fn owed(&self) -> usize {
        self.out.len() + usize::from(self.stream.owes())
    }

    /// Frames `frame` and writes what the socket takes now.
    pub fn send(&mut self, frame: &str) -> After {
        self.write(|out| out.extend_from_slice(frame.as_bytes()))
    }

    /// Frames `messages` as one frame and writes what the socket takes now.
    pub fn send_messages(&mut self, messages: &[Utf8Bytes]) -> After {
        self.write(|out| frames::messages(messages.iter().map(|m| m.as_str()), out))
    }

    /// Sends a heartbeat when nothing was written for `every`.
    pub fn heartbeat(&mut self, every: Duration, now: Instant) -> After {
        if self.owed() == 0 && now.duration_since(self.last) >= every {
            return self.send(frames::HEARTBEAT);
        }
        After::Waits
    }

    /// Writes the frame `frame` writes, wrapped and (HTTP/1.1) chunked: it is built in the
    /// thread's scratch buffer, and only what the socket does not take now is kept.
    fn write(&mut self, frame: impl FnOnce(&mut Vec<u8>)) -> After {
        let written = SCRATCH.with_borrow_mut(|scratch| {
            scratch.clear();
            let response = &mut self.response;
            response.sent += response.wrap.put(response.chunked, scratch, frame);
            let written = self.put_out(scratch);
            if scratch.capacity() > SCRATCH_KEEP {
                *scratch = Vec::new();
            }
            written
        });
        self.last = Instant::now();
        match written {
            Err(_) => After::Gone,
            Ok(()) if self.full() => After::Full,
            Ok(()) => After::Waits,
        }
    }

    /// How a room frames what it writes here while the session sleeps: a streaming,
    /// chunked response with nothing owed. `None` when it cannot sleep.
    pub fn sleepable(&self) -> Option<Framing> {
        let streams = self.response.chunked && self.response.limit > 1 && self.owed() == 0;
        streams.then(|| self.response.wrap.framing())?
    }

    /// Writes `bytes`, framed by a room, as far as the socket takes them now; the rest is
    /// owed. False when some is owed.
    pub fn deliver(&mut self, bytes: &[u8]) -> io::Result<bool> {
        self.response.sent += bytes.len();
        self.last = Instant::now();
        self.put_out(bytes)?;
        Ok(self.owed() == 0)
    }

    /// Writes `bytes` after what is owed, as far as the socket takes them now: only what
    /// it does not take is copied.
    fn put_out(&mut self, bytes: &[u8]) -> io::Result<()> {
        if !self.out.is_empty() {
            self.out.extend_from_slice(bytes);
            return self.write_now();
        }
        let written = try_write_all(&mut self.stream, bytes)?;
        self.out.extend_from_slice(&bytes[written..]);
        Ok(())
    }

    /// True when the response streams: it takes more than one frame.
    pub fn streams(&self) -> bool {
        self.response.limit > 1
    }

    /// True once the response has had all it may.
    pub fn full(&self) -> bool {
        self.response.sent >= self.response.limit
    }

    /// Writes what is owed as far as the socket takes it now.
    fn write_now(&mut self) -> io::Result<()> {
        let written = try_write_all(&mut self.stream, &self.out)?;
        self.out.drain(..written);
        if self.out.is_empty() {
            self.out = Vec::new();
        }
        Ok(())
    }

    /// Watches the connection: writes what is owed once the socket takes it, and keeps
    /// what the client sends. Ready when the client is gone (or sent more than a request's
    /// start while it should wait).
    pub fn poll_io(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        use std::task::Poll;
        while self.owed() > 0 {
            match self.stream.poll_write_ready(cx) {
                Poll::Pending => break,
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Ready(Ok(())) if self.write_now().is_err() => return Poll::Ready(()),
                Poll::Ready(Ok(())) => {}
            }
        }
        while self.stream.poll_read_ready(cx).is_ready() {
            if !self.read_now() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    }

    /// Reads what the client sent; false when it is gone.
    fn read_now(&mut self) -> bool {
        let mut buf = [0u8; MAX_SNIFF];
        match self.stream.try_read(&mut buf) {
            Ok(0) => false,
            Ok(n) if self.early.len() + n <= MAX_SNIFF => {
                self.early.extend_from_slice(&buf[..n]);
                true
            }
            Ok(_) => false,
            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
        }
    }

    /// True when the client has closed its side (checked now, without waiting).
    pub fn client_gone(&mut self) -> bool {
        !self.read_now()
    }

    /// Ends the response: the last chunk, then the connection goes back to the HTTP server
    /// (HTTP/1.1) or is closed (HTTP/1.0). What the socket does not take now is written
    /// by a task of its own.
    pub fn finish(mut self) {
        if self.response.chunked {
            self.out.extend_from_slice(LAST_CHUNK);
        }
        if self.write_now().is_err() {
            return;
        }
        if self.owed() == 0 {
            return self.hand_back();
        }
        let back = self.response.back.clone();
        back.spawn(async move {
            use tokio::io::AsyncWriteExt;
            let patience = self.response.patience;
            let out = std::mem::take(&mut self.out);
            let written = async {
                self.stream.write_all(&out).await?;
                self.stream.flush().await
            };
            match tokio::time::timeout(patience, written).await {
                Ok(Ok(())) => self.hand_back(),
                _ => tracing::debug!("sockjs response: the client did not take its end"),
            }
        });
    }

    /// The connection, its response over, back to the HTTP server or closed.
    fn hand_back(self) {
        let Parked {
            stream,
            response,
            early,
            ..
        } = self;
        if response.chunked && !response.close {
            response.back.resume(stream, &early);
        }
    }
}
