//! A [`ByteSession`] over an RFC 6455 WebSocket: the client's side of the socket proxy, of a
//! relay to a TCP or XMLSocket server, and of a relay that passes frames to a WebSocket
//! server as they are ([`Intake::frames`]).
//!
//! These relay bytes, not messages, so this session frames by hand instead of through
//! tungstenite: what the client sends is read into the thread's scratch buffer, unmasked
//! there ([`super::inbound`]) and appended to the relay's stream, and what the server sends
//! becomes frames queued on the connection ([`Conn`]) and sent in one write. No message is
//! allocated on the way through, a message of any size streams, and a quiet session holds
//! no read buffer.
//!
//! When frames pass as they are, the server's frames are checked on their way
//! ([`Outbound`]) and the close handshake is the server's and the client's: the session
//! adds a frame of its own (a ping, a close) only between the server's frames, sends the
//! client at most one close frame, and when the client's side ends without its own close
//! frame, ends the client's stream with one that says why.

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;

use super::conn::Conn;
use super::inbound::{End, Inbound};
use super::message_session::CLOSE_WAIT;
use super::outbound::Outbound;
use super::watch::{Seen, Watch};
use crate::codec::{self, opcode};
use crate::session::close_code::AWAY;
use crate::session::{ByteSession, CloseReason, Closed, Intake};
use crate::shutdown::Signal;

/// Why the client's side ended.
#[derive(Debug)]
enum Ending {
    /// It closed, or broke the protocol.
    Client(End),
    /// Its connection failed or ended without a close frame; nothing can be told.
    Gone,
    /// The gateway is stopping.
    Stop,
    /// It did not answer a ping within the idle timeout.
    Idle,
    /// It did not answer the server's close (frames passed as they are) in time.
    Unanswered,
}

/// A WebSocket client of the socket proxy.
pub struct ByteStreamSession {
    /// The connection: reads go straight from its socket, writes queue on it.
    conn: Conn,
    /// Where the client's frames stand.
    inbound: Inbound,
    /// Where the server's frames stand, when frames pass as they are (boxed: most byte
    /// sessions have none).
    outbound: Option<Box<Outbound>>,
    /// The session has queued a close frame of its own.
    told: bool,
    /// When the client must have answered the server's close, once it passed (boxed: a
    /// connection closes once).
    answer_by: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Pongs decoded out of a read, on their way to the write queue.
    replies: Vec<u8>,
    /// Who, for logs.
    peer: SocketAddr,
    /// The stop signal and the idle clock.
    watch: Watch,
    /// Something arrived since the last idle tick.
    heard: bool,
    /// A ping went out and nothing has come back yet.
    pinged: bool,
    /// Set once the client's side is over.
    ending: Option<Ending>,
    /// Reads since the session began (wrapping): every [`LOOK_EVERY`]th looks at the
    /// stop signal and the clocks even when there is more to read.
    reads: u8,
    /// The close code the session ended with: its own close frame's, or the client's.
    code: Option<u16>,
}

/// What looking at the stop signal and the clocks came to.
enum Signals {
    /// The client's side is over.
    Ended(Poll<bool>),
    /// The idle clock ticked: it is polled again, to wait for the next tick.
    Ticked,
    /// Nothing has fired.
    Quiet,
}

/// How often a client that always has more to send has the stop signal and the clocks
/// looked at: a read that finds nothing always looks.
const LOOK_EVERY: u8 = 16;

impl ByteStreamSession {
    /// Wraps an upgraded connection whose messages are taken as `intake` says.
    pub fn new(
        conn: Conn,
        intake: Intake,
        peer: SocketAddr,
        stop: Signal,
        idle_timeout: Duration,
    ) -> Self {
        ByteStreamSession {
            conn,
            inbound: Inbound::new(intake),
            outbound: intake
                .frames
                .then(|| Box::new(Outbound::new(intake.max_message))),
            told: false,
            answer_by: None,
            replies: Vec::new(),
            peer,
            watch: Watch::new(stop, idle_timeout),
            heard: false,
            pinged: false,
            ending: None,
            reads: 0,
            code: None,
        }
    }

    /// Reads what the client sent into `into` and decodes it there; ready with true when
    /// payload arrived, false when the client's side is over.
    fn poll_read(&mut self, cx: &mut Context<'_>, into: &mut BytesMut) -> Poll<bool> {
        loop {
            // Pongs and pings go out without holding up the reads.
            if self.conn.has_unsent()
                && let Poll::Ready(Err(_)) = Pin::new(&mut self.conn).poll_flush(cx)
            {
                return self.end_in(Ending::Gone, into);
            }
            // The stop signal and the clocks are looked at when there is nothing to read,
            // and every few reads while there is.
            self.reads = self.reads.wrapping_add(1);
            if self.reads.is_multiple_of(LOOK_EVERY)
                && let Signals::Ended(ended) = self.poll_signals(cx, into)
            {
                return ended;
            }
            let start = into.len();
            self.replies.clear();
            let (conn, inbound, replies) = (&mut self.conn, &mut self.inbound, &mut self.replies);
            let read = match conn.poll_read_with(cx, |buf| inbound.decode(buf, into, replies)) {
                Poll::Pending => match self.poll_signals(cx, into) {
                    Signals::Ended(ended) => return ended,
                    Signals::Ticked => continue,
                    Signals::Quiet => return Poll::Pending,
                },
                Poll::Ready(read) => read,
            };
            let end = match read {
                Ok(None) => return self.end_in(Ending::Gone, into),
                Ok(Some(end)) => end,
                Err(error) => {
                    tracing::debug!(peer = %self.peer, %error, "byte stream client failed");
                    return self.end_in(Ending::Gone, into);
                }
            };
            self.heard = true;
            self.conn.owe(&self.replies);
            if let Some(end) = end {
                return self.end_in(Ending::Client(end), into);
            }
            if into.len() > start {
                return Poll::Ready(true);
            }
        }
    }

    /// Polls the stop signal and the clocks.
    fn poll_signals(&mut self, cx: &mut Context<'_>, into: &mut BytesMut) -> Signals {
        let seen = self.watch.poll(cx);
        if seen == Seen::Stop {
            return Signals::Ended(self.end_in(Ending::Stop, into));
        }
        if let Some(answer_by) = self.answer_by.as_mut()
            && answer_by.as_mut().poll(cx).is_ready()
        {
            self.answer_by = None;
            return Signals::Ended(self.end_in(Ending::Unanswered, into));
        }
        if seen == Seen::Nothing {
            return Signals::Quiet;
        }
        match (self.heard, self.pinged) {
            (true, _) => (self.heard, self.pinged) = (false, false),
            (false, true) => return Signals::Ended(self.end_in(Ending::Idle, into)),
            (false, false) if self.may_add() => {
                self.pinged = true;
                self.conn.queue_raw(opcode::PING, b"");
            }
            // Inside a server's frame: the next tick looks again.
            (false, false) => {}
        }
        Signals::Ticked
    }

    /// The client's side is over, for `why`. When frames pass as they are and the client
    /// did not close, its stream (`into`) ends with a close frame saying why, if it stopped
    /// between frames.
    fn end_in(&mut self, why: Ending, into: &mut BytesMut) -> Poll<bool> {
        let server_code = self.outbound.as_ref().and_then(|out| out.close_code());
        let said = match &why {
            Ending::Client(End::Closed(_)) => None,
            // The reply the client did not give, with the server's code (if any).
            Ending::Unanswered => Some((server_code, "")),
            Ending::Client(End::Failed(code, why)) => Some((Some(*code), *why)),
            Ending::Gone => Some((Some(AWAY), "the client went away")),
            Ending::Stop => Some((Some(AWAY), "server shutting down")),
            Ending::Idle => Some((Some(AWAY), "idle timeout")),
        };
        if let Some((code, reason)) = said
            && self.outbound.is_some()
            && self.inbound.at_boundary()
        {
            codec::encode_close_masked(into, code.map(|code| (code, reason)), codec::mask_key());
        }
        self.ending = Some(why);
        Poll::Ready(false)
    }

    /// True when a frame of the session's own may be queued: one not cut into a server's
    /// frame, and none after a close.
    fn may_add(&self) -> bool {
        !self.told
            && self
                .outbound
                .as_ref()
                .is_none_or(|out| out.at_boundary() && !out.closed())
    }

    /// Sends a close frame behind what is queued, and waits (bounded) for the client's.
    ///
    /// Boxed: a connection closes once, and this future would otherwise be part of every
    /// relay's state.
    fn close_with<'a>(
        &'a mut self,
        code: u16,
        reason: &str,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        // Cut into a server's frame, the client can be told nothing more.
        let whole = self.outbound.as_ref().is_none_or(|out| out.at_boundary());
        if self.may_add() {
            self.conn.queue_close(code, reason);
            self.told = true;
            self.code = self.code.or(Some(code));
        }
        Box::pin(async move {
            if !whole {
                let _ = timeout(CLOSE_WAIT, self.conn.flush()).await;
                return;
            }
            let _ = timeout(CLOSE_WAIT, async {
                if self.conn.flush().await.is_err() {
                    return;
                }
                // Whatever the client still sends is dropped, up to its close.
                let mut scrap = BytesMut::new();
                while self.ending.is_none() {
                    scrap.clear();
                    if !poll_fn(|cx| self.poll_read(cx, &mut scrap)).await {
                        break;
                    }
                }
            })
            .await;
        })
    }
}

impl ByteSession for ByteStreamSession {
    async fn read_into(&mut self, into: &mut BytesMut) -> bool {
        if self.ending.is_some() {
            return false;
        }
        poll_fn(|cx| self.poll_read(cx, into)).await
    }

    fn write(&mut self, bytes: &[u8]) {
        self.conn.queue_raw(opcode::BINARY, bytes);
    }

    fn write_text(&mut self, text: &[u8]) {
        self.conn.queue_raw(opcode::TEXT, text);
    }

    fn write_frames(&mut self, frames: &[u8]) -> Result<(), &'static str> {
        let Some(outbound) = self.outbound.as_mut() else {
            return Err("this client's frames are not passed as they are");
        };
        // Once the client's side has ended other than by its close, or the session has
        // closed, the server's last frames are no longer the client's.
        if self.told
            || matches!(&self.ending, Some(e) if !matches!(e, Ending::Client(End::Closed(_))))
        {
            return Err("the client's side is over");
        }
        let mut passed = Ok(());
        self.conn
            .queue_with(|out| passed = outbound.pass(frames, out));
        if outbound.closed() && self.answer_by.is_none() {
            self.answer_by = Some(Box::pin(tokio::time::sleep(CLOSE_WAIT)));
        }
        passed
    }

    async fn flush(&mut self) -> Result<(), Closed> {
        // Most flushes complete at once: no clock and no stop signal for them.
        match poll_fn(|cx| Poll::Ready(Pin::new(&mut self.conn).poll_flush(cx))).await {
            Poll::Ready(Ok(())) => return Ok(()),
            Poll::Ready(Err(_)) => return Err(Closed),
            Poll::Pending => {}
        }
        let limit = self.watch.period();
        let (conn, watch) = (&mut self.conn, &mut self.watch);
        // A client that takes nothing must not hold up the gateway's shutdown either.
        tokio::select! {
            written = timeout(limit, conn.flush()) => match written {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) => Err(Closed),
                Err(_) => {
                    tracing::warn!(peer = %self.peer, "closing: the client did not read for the idle timeout");
                    Err(Closed)
                }
            },
            _ = watch.stopped() => Err(Closed),
        }
    }

    async fn close(&mut self, reason: CloseReason) {
        if self.outbound.as_ref().is_some_and(|out| out.closed()) {
            // The server's close frame has been passed on: the client answers it.
            return self.close_with(AWAY, "").await;
        }
        let (code, text) = reason.announce(self.peer);
        self.close_with(code, text).await;
    }

    fn close_code(&self) -> Option<u16> {
        // A server's close frame passed as it is came first, or answered the client's.
        let passed = self.outbound.as_ref().and_then(|out| out.close_code());
        passed.or(self.code)
    }

    fn read_so_far(&self) -> (u64, u64) {
        self.inbound.counted()
    }

    fn frames_so_far(&self) -> (u64, u64) {
        self.outbound.as_ref().map_or((0, 0), |out| out.counted())
    }

    async fn finish(&mut self) {
        let peer = self.peer;
        match self.ending.take() {
            Some(Ending::Client(End::Closed(code))) => {
                self.code = self.code.or(code);
                // The reply to the client's close carries its code; when frames pass as
                // they are, it is the server's, unless the server gave none.
                if self.may_add() {
                    match code {
                        Some(code) => self.conn.queue_close(code, ""),
                        None => self.conn.queue_raw(opcode::CLOSE, b""),
                    }
                }
                let _ = timeout(CLOSE_WAIT, self.conn.flush()).await;
            }
            Some(Ending::Client(End::Failed(code, why))) => {
                tracing::warn!(%peer, code, why, "closing");
                // Failing the connection (RFC 6455 7.1.7): the close goes out, and no reply
                // is waited for; the connection is dropped once it is written.
                self.ending = Some(Ending::Gone);
                self.close_with(code, why).await;
            }
            Some(Ending::Stop) => self.close_with(AWAY, "server shutting down").await,
            Some(Ending::Idle) => {
                tracing::info!(%peer, "closing: idle timeout");
                self.close_with(AWAY, "idle timeout").await;
            }
            Some(Ending::Unanswered) => {
                tracing::debug!(%peer, "closing: the client did not answer its server's close");
            }
            Some(Ending::Gone) | None => {}
        }
        self.ending = Some(Ending::Gone);
    }
}
