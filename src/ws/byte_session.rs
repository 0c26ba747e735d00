//! A [`ByteSession`] over an RFC 6455 WebSocket: the client's side of the socket proxy and
//! of a relay to a TCP or XMLSocket server.
//!
//! These relay bytes, not messages, so this session frames by hand instead of through
//! tungstenite: what the client sends is read into the thread's scratch buffer, unmasked
//! there ([`super::inbound`]) and appended to the relay's stream, and what the server sends
//! becomes frames queued on the connection ([`Conn`]) and sent in one write. No message is
//! allocated on the way through, a message of any size streams, and a quiet session holds
//! no read buffer.

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::{Interval, timeout};

use super::conn::Conn;
use super::inbound::{End, Inbound};
use super::message_session::{CLOSE_WAIT, idle_timer};
use crate::codec::opcode;
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
}

/// A WebSocket client of the socket proxy.
pub struct ByteStreamSession {
    /// The connection: reads go straight from its socket, writes queue on it.
    conn: Conn,
    /// Where the client's frames stand.
    inbound: Inbound,
    /// Pongs decoded out of a read, on their way to the write queue.
    replies: Vec<u8>,
    /// Who, for logs.
    peer: SocketAddr,
    /// Fires when the gateway stops.
    stop: Signal,
    /// Ticks every idle timeout.
    idle: Interval,
    /// Something arrived since the last idle tick.
    heard: bool,
    /// A ping went out and nothing has come back yet.
    pinged: bool,
    /// Set once the client's side is over.
    ending: Option<Ending>,
    /// The stop signal has fired (it must not be polled again).
    stopping: bool,
}

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
            replies: Vec::new(),
            peer,
            stop,
            idle: idle_timer(idle_timeout),
            heard: false,
            pinged: false,
            ending: None,
            stopping: false,
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
                return self.end(Ending::Gone);
            }
            if !self.stopping && Pin::new(&mut self.stop).poll(cx).is_ready() {
                self.stopping = true;
                return self.end(Ending::Stop);
            }
            if self.idle.poll_tick(cx).is_ready() {
                match (self.heard, self.pinged) {
                    (true, _) => (self.heard, self.pinged) = (false, false),
                    (false, true) => return self.end(Ending::Idle),
                    (false, false) => {
                        self.pinged = true;
                        self.conn.queue_raw(opcode::PING, b"");
                    }
                }
                continue;
            }
            let start = into.len();
            self.replies.clear();
            let (conn, inbound, replies) = (&mut self.conn, &mut self.inbound, &mut self.replies);
            let read = match conn.poll_read_with(cx, |buf| inbound.decode(buf, into, replies)) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(read) => read,
            };
            let end = match read {
                Ok(None) => return self.end(Ending::Gone),
                Ok(Some(end)) => end,
                Err(error) => {
                    tracing::debug!(peer = %self.peer, %error, "byte stream client failed");
                    return self.end(Ending::Gone);
                }
            };
            self.heard = true;
            self.conn.owe(&self.replies);
            if let Some(end) = end {
                return self.end(Ending::Client(end));
            }
            if into.len() > start {
                return Poll::Ready(true);
            }
        }
    }

    /// The client's side is over, for `why`.
    fn end(&mut self, why: Ending) -> Poll<bool> {
        self.ending = Some(why);
        Poll::Ready(false)
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
        self.conn.queue_close(code, reason);
        Box::pin(async move {
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

    async fn flush(&mut self) -> Result<(), Closed> {
        let limit = self.idle.period();
        let (conn, stop, stopping) = (&mut self.conn, &mut self.stop, &mut self.stopping);
        // A client that takes nothing must not hold up the gateway's shutdown either.
        let until_stop = async {
            match *stopping {
                true => std::future::pending().await,
                false => stop.await,
            }
        };
        tokio::select! {
            written = timeout(limit, conn.flush()) => match written {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) => Err(Closed),
                Err(_) => {
                    tracing::warn!(peer = %self.peer, "closing: the client did not read for the idle timeout");
                    Err(Closed)
                }
            },
            _ = until_stop => {
                *stopping = true;
                Err(Closed)
            }
        }
    }

    async fn close(&mut self, reason: CloseReason) {
        let (code, text) = reason.announce(self.peer);
        self.close_with(code, text).await;
    }

    async fn finish(&mut self) {
        let peer = self.peer;
        match self.ending.take() {
            Some(Ending::Client(End::Closed(code))) => {
                // The reply to the client's close carries its code.
                match code {
                    Some(code) => self.conn.queue_close(code, ""),
                    None => self.conn.queue_raw(opcode::CLOSE, b""),
                }
                let _ = timeout(CLOSE_WAIT, self.conn.flush()).await;
            }
            Some(Ending::Client(End::Failed(code, why))) => {
                tracing::warn!(%peer, code, why, "closing");
                self.close_with(code, why).await;
            }
            Some(Ending::Stop) => self.close_with(AWAY, "server shutting down").await,
            Some(Ending::Idle) => {
                tracing::info!(%peer, "closing: idle timeout");
                self.close_with(AWAY, "idle timeout").await;
            }
            Some(Ending::Gone) | None => {}
        }
        self.ending = Some(Ending::Gone);
    }
}
