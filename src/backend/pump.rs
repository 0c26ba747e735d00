//! Bytes between a byte-stream client ([`ByteSession`]) and a TCP server, both ways: the
//! socket proxy's loop, and a relay's to a TCP or XMLSocket server for the clients whose
//! frames can pass as a byte stream, or to a WebSocket server for the clients whose frames
//! pass as they are.
//!
//! Each direction goes on while the other waits. The client is read only once what it sent
//! before has been taken by the server, which then gets it in one write; a write the server
//! does not take within the write timeout ends the session ([`Stall`]). What the server
//! sends is read (up to a batch, through the thread's scratch buffer) when the client has
//! taken the previous batch, and queued for it as binary messages, or for an XMLSocket
//! server as one text message per NUL-ended piece, or a WebSocket server's frames as they
//! are. Nothing is allocated per message, and a quiet session holds no buffer beyond a few
//! KiB.

use std::fmt;
use std::future::poll_fn;
use std::io::ErrorKind;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::xmlsocket;
use crate::batched::{release, taken, try_read_drained, with_scratch};
use crate::session::{ByteSession, CloseReason};

/// The most read from the server before it is sent to the client.
pub const BATCH: usize = 64 * 1024;

/// The clock of a write the server does not take: armed while it waits, and started again
/// by any progress; when it runs out, the session ends.
pub struct Stall<'a> {
    /// The deadline (pinned by the relay's loop).
    pub timer: std::pin::Pin<&'a mut tokio::time::Sleep>,
    /// A write is waiting.
    pub armed: bool,
    /// How long it may wait.
    after: Duration,
}

impl<'a> Stall<'a> {
    /// A clock of `after`, not armed.
    pub fn new(timer: std::pin::Pin<&'a mut tokio::time::Sleep>, after: Duration) -> Stall<'a> {
        Stall {
            timer,
            armed: false,
            after,
        }
    }

    /// The writes moved: `blocked` says whether one still waits.
    pub fn moved(&mut self, blocked: bool) {
        if blocked {
            let deadline = tokio::time::Instant::now() + self.after;
            self.timer.as_mut().reset(deadline);
        }
        self.armed = blocked;
    }

    /// Why the session ends when the clock runs out, said in the log.
    pub fn reason(&self, server: &(dyn fmt::Display + Sync)) -> CloseReason {
        let why = format!("the upstream server read nothing for {:?}", self.after);
        tracing::warn!(upstream = %server, "{why}");
        CloseReason::UpstreamFailed(why)
    }
}

/// How what the server sends becomes messages for the client.
#[derive(Debug, Clone, Copy)]
pub enum Outward {
    /// Each read, one binary message.
    Binary,
    /// Flash XMLSocket: each NUL-ended piece, one text message of at most this many bytes.
    XmlSocket(usize),
    /// A WebSocket server's frames, passed as they are
    /// ([`ByteSession::write_frames`]).
    Frames,
}

/// How long a WebSocket server may take to finish the close handshake once the client's
/// close has reached it.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// One relay's settings.
pub struct Pump<'a> {
    /// The server, for logs.
    pub server: &'a (dyn fmt::Display + Sync),
    /// How long a write to it may wait.
    pub write_timeout: Duration,
    /// How its bytes reach the client.
    pub outward: Outward,
}

/// What woke the loop.
enum Event {
    /// The client sent bytes (true), or its side is over (false).
    Client(bool),
    /// The server has something to read.
    Readable,
    /// Writes to the server moved, or stopped on a server that does not read: look again.
    Moved,
    /// The write has waited too long.
    Stalled,
    /// The connection failed.
    Failed(std::io::Error),
}

/// Relays `session` to the server over `tcp` until either side ends.
pub async fn run<S: ByteSession>(session: &mut S, mut tcp: TcpStream, pump: Pump<'_>) {
    // Client bytes the server has not taken yet; the client is read again once it is empty.
    let mut out = BytesMut::new();
    // XMLSocket: the start of a server message whose NUL has not come yet.
    let mut partial = BytesMut::new();
    let mut blocked = false;
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);
    let mut stall = Stall::new(timer, pump.write_timeout);
    loop {
        let event = match out.is_empty() {
            true => tokio::select! {
                biased;
                more = session.read_into(&mut out) => Event::Client(more),
                // Readiness polled as `server` polls it: no waiter queued on the socket.
                ready = poll_fn(|cx| tcp.poll_read_ready(cx)) => {
                    ready.map_or_else(Event::Failed, |()| Event::Readable)
                }
            },
            false => tokio::select! {
                biased;
                event = server(&tcp, &mut out, &mut blocked) => event,
                () = stall.timer.as_mut(), if stall.armed => Event::Stalled,
            },
        };
        match event {
            Event::Client(false) => {
                goodbye(&mut tcp, &out, pump.write_timeout).await;
                if let Outward::Frames = pump.outward {
                    // The server's answer to the client's close is the client's too.
                    drain(session, &tcp).await;
                }
                return session.finish().await;
            }
            // Most writes complete at once: no trip through the loop for them.
            Event::Client(true) => match tcp.try_write(&out) {
                Ok(n) => {
                    taken(&mut out, n);
                    release(&mut out);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return fail(session, &pump, e).await,
            },
            Event::Moved => stall.moved(blocked),
            Event::Stalled => return session.close(stall.reason(pump.server)).await,
            Event::Failed(e) => return fail(session, &pump, e).await,
            Event::Readable => match take(&tcp, session, pump.outward, &mut partial) {
                Ok(true) => {
                    if session.flush().await.is_err() {
                        return;
                    }
                }
                Ok(false) => {}
                Err(Taken::Ended) => return session.close(ended(pump.outward)).await,
                Err(Taken::Failed(e)) => return fail(session, &pump, e).await,
                Err(Taken::Refused(why)) => {
                    tracing::warn!(upstream = %pump.server, why, "closing");
                    let why = match pump.outward {
                        Outward::Frames => format!("the upstream server sent {why}"),
                        _ => why.into(),
                    };
                    return session.close(CloseReason::UpstreamFailed(why)).await;
                }
            },
        }
    }
}

/// Waits until the server takes some of `out` (or will not) or has something to read.
async fn server(tcp: &TcpStream, out: &mut BytesMut, blocked: &mut bool) -> Event {
    poll_fn(|cx| {
        let moved = match write_out(tcp, cx, out, blocked) {
            Ok(moved) => moved,
            Err(e) => return Poll::Ready(Event::Failed(e)),
        };
        match tcp.poll_read_ready(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(Event::Readable),
            Poll::Ready(Err(e)) => Poll::Ready(Event::Failed(e)),
            Poll::Pending if moved => Poll::Ready(Event::Moved),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Writes `out` to the server as far as it takes it (an emptied buffer is let go of,
/// unless small); `blocked` is set while the rest waits for it. True when the writes moved:
/// progress, or a first stop on a server that does not read.
pub fn write_out(
    tcp: &TcpStream,
    cx: &mut Context<'_>,
    out: &mut BytesMut,
    blocked: &mut bool,
) -> std::io::Result<bool> {
    let mut moved = false;
    while !out.is_empty() {
        match tcp.poll_write_ready(cx) {
            Poll::Ready(Ok(())) => match tcp.try_write(out) {
                Ok(n) => {
                    taken(out, n);
                    // Progress: a stalled server's clock starts again.
                    (moved, *blocked) = (true, false);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            },
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => {
                moved |= !*blocked;
                *blocked = true;
                return Ok(moved);
            }
        }
    }
    release(out);
    Ok(moved)
}

/// Why reading the server ends the session.
enum Taken {
    /// It ended its side.
    Ended,
    /// The connection failed.
    Failed(std::io::Error),
    /// It sent what the client cannot be given.
    Refused(&'static str),
}

/// Reads what the server has sent, up to a batch, and queues it for the client: true when
/// something was queued.
fn take<S: ByteSession>(
    tcp: &TcpStream,
    session: &mut S,
    outward: Outward,
    partial: &mut BytesMut,
) -> Result<bool, Taken> {
    with_scratch(|scratch| {
        let (mut queued, mut total) = (false, 0);
        while total < BATCH {
            match try_read_drained(tcp, scratch) {
                // The next readiness reports the end, after this batch is sent.
                Ok(0) if queued => break,
                Ok(0) => return Err(Taken::Ended),
                Ok(n) => {
                    total += n;
                    let got = &scratch[..n];
                    match outward {
                        Outward::Binary => session.write(got),
                        Outward::XmlSocket(max) => {
                            pieces(session, partial, got, max).map_err(Taken::Refused)?
                        }
                        Outward::Frames => session.write_frames(got).map_err(Taken::Refused)?,
                    }
                    queued = true;
                    // A short read took all there was: no read just to hear so.
                    if n < scratch.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(Taken::Failed(e)),
            }
        }
        Ok(queued)
    })
}

/// Queues each NUL-ended piece of `partial` and then `got` as a text message; keeps in
/// `partial` what is not ended yet.
fn pieces<S: ByteSession>(
    session: &mut S,
    partial: &mut BytesMut,
    mut got: &[u8],
    max: usize,
) -> Result<(), &'static str> {
    while let Some(end) = memchr::memchr(0, got) {
        let piece = match partial.is_empty() {
            true => &got[..end],
            false => {
                partial.extend_from_slice(&got[..end]);
                &partial[..]
            }
        };
        xmlsocket::check(piece, max).map_err(xmlsocket::PieceError::reason)?;
        session.write_text(piece);
        partial.clear();
        got = &got[end + 1..];
    }
    if partial.len() + got.len() > max {
        return Err(xmlsocket::PieceError::TooLarge.reason());
    }
    partial.extend_from_slice(got);
    release(partial);
    Ok(())
}

/// Why the session ends when the server ends its side: for a WebSocket server, whose
/// close frame (if it sent one) has reached the client already, an end without one.
fn ended(outward: Outward) -> CloseReason {
    match outward {
        Outward::Frames => CloseReason::UpstreamFailed(
            "upstream connection lost: it closed without a close frame".into(),
        ),
        _ => CloseReason::UpstreamClosed,
    }
}

/// Passes what a WebSocket server still sends to the client until it ends its side, for
/// at most [`CLOSE_WAIT`]: its answer to the client's close.
async fn drain<S: ByteSession>(session: &mut S, tcp: &TcpStream) {
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        let mut partial = BytesMut::new();
        while tcp.readable().await.is_ok() {
            match take(tcp, session, Outward::Frames, &mut partial) {
                Ok(true) if session.flush().await.is_ok() => {}
                Ok(false) => {}
                _ => return,
            }
        }
    })
    .await;
}

/// The connection to the server failed: the client is told.
async fn fail<S: ByteSession>(session: &mut S, pump: &Pump<'_>, error: std::io::Error) {
    tracing::warn!(upstream = %pump.server, %error, "upstream connection lost");
    let why = format!("upstream connection lost: {error}");
    session.close(CloseReason::UpstreamFailed(why)).await;
}

/// The client's side is over: what it sent before is written, within the write timeout,
/// and the server sees the end of the stream.
pub async fn goodbye(tcp: &mut TcpStream, out: &[u8], write_timeout: Duration) {
    let _ = tokio::time::timeout(write_timeout, async {
        tcp.write_all(out).await?;
        tcp.shutdown().await
    })
    .await;
}
