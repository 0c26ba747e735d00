//! A [`Session`] over a hixie-76 (or hixie-75) connection: the rest of the handshake (the
//! 8-byte body and the 16-byte answer), then text frames both ways, framed by hand
//! ([`super::frame`]) on the RFC 6455 transport's batched connection ([`Conn`]).
//!
//! A client silent for `--hibernate-after` falls asleep between frames, as RFC 6455 clients
//! do ([`crate::ws::hibernate`]): the session ends ([`Session::is_asleep`]) and a new one
//! serves the connection when it wakes.
//!
//! The draft has no pings: a client silent for the idle timeout is closed. It has no binary
//! messages: binary from a backend goes out as [`text_only`] text. It has no close codes:
//! every ending is the closing handshake (`0xFF 0x00`) and the socket's close, with the
//! reason in the log.

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::time::timeout;
use tungstenite::Utf8Bytes;

use super::frame::{self, Decoder, Frame};
use super::handshake::{BODY_LEN, answer};
use crate::session::{CloseReason, Closed, Payload, Session, text_only};
use crate::shutdown::Signal;
use crate::ws::conn::Conn;
use crate::ws::message_session::CLOSE_WAIT;
use crate::ws::watch::{Seen, Watch, pace};

/// The room made for a read into a frame under way.
const READ: usize = 16 * 1024;

/// A read buffer at most this large is kept while the client is silent.
const KEEP_IN: usize = 4 * 1024;

/// What woke the session up.
enum Event {
    /// Bytes arrived.
    Read,
    /// The stream ended, or failed.
    Ended,
    /// The gateway is stopping.
    Stop,
    /// An idle timeout went by.
    IdleTick,
}

/// A hixie-76 client.
pub struct HixieSession {
    /// The connection: reads go straight from its socket, writes queue on it.
    conn: Conn,
    /// Bytes read and not decoded yet; bounded by the decoder's limit and one read.
    inbound: BytesMut,
    /// Where the client's frames stand.
    decoder: Decoder,
    /// Who, for logs.
    peer: SocketAddr,
    /// The stop signal, and the clock that ticks every idle timeout, or more often when
    /// the session may fall asleep.
    watch: Watch,
    /// Ticks of silence that make an idle timeout.
    ticks_per_timeout: u32,
    /// Ticks of silence so far.
    quiet: u32,
    /// Something arrived since the last idle tick.
    heard: bool,
    /// The session may fall asleep at a silent tick.
    sleepy: bool,
    /// It did: [`recv`](Session::recv) ended so that the connection can sleep.
    asleep: bool,
    /// Frames were queued since the last flush.
    dirty: bool,
    /// The session is over: nothing more may be sent.
    closed: bool,
}

impl HixieSession {
    /// Wraps an upgraded connection whose messages are at most `max_message_size` bytes.
    /// With `sleep_after`, the session ends (see [`is_asleep`](Session::is_asleep)) once
    /// the client has been silent about that long and nothing is in flight. What the
    /// connection has queued (owed from a sleep) goes out at the first chance.
    pub fn new(
        conn: Conn,
        peer: SocketAddr,
        stop: Signal,
        idle_timeout: Duration,
        sleep_after: Option<Duration>,
        max_message_size: usize,
    ) -> Self {
        let (tick, ticks_per_timeout) = pace(idle_timeout, sleep_after);
        HixieSession {
            dirty: conn.has_unsent(),
            conn,
            inbound: BytesMut::new(),
            decoder: Decoder::new(max_message_size),
            peer,
            watch: Watch::new(stop, tick),
            ticks_per_timeout,
            quiet: 0,
            heard: false,
            sleepy: sleep_after.is_some(),
            asleep: false,
            closed: false,
        }
    }

    /// The connection, once the session is over (or asleep).
    pub fn into_conn(self) -> Conn {
        self.conn
    }

    /// Closes a client that has been silent for its idle timeout.
    pub async fn close_idle(&mut self) {
        self.end("idle timeout").await;
    }

    /// At a silent tick: true when the session falls asleep (silent, nothing half-read or
    /// unsent: the connection can sleep without losing a byte), false to go on; closes the
    /// client once it has been silent for the idle timeout.
    async fn silent_tick(&mut self) -> bool {
        self.quiet += 1;
        if self.sleepy
            && !self.dirty
            && self.inbound.is_empty()
            && self.decoder.at_rest()
            && self.conn.at_rest()
        {
            self.asleep = true;
            return true;
        }
        if self.quiet >= self.ticks_per_timeout {
            Box::pin(self.close_idle()).await;
        }
        false
    }

    /// Reads the request's 8-byte body (it may have come with the head, or come later) and
    /// sends the answer, within `limit`; an error when the client did not send it in time,
    /// went away, or the gateway is stopping.
    pub async fn answer(&mut self, keys: (u32, u32), limit: Duration) -> Result<(), &'static str> {
        let read = timeout(limit, async {
            while self.inbound.len() < BODY_LEN {
                match poll_fn(|cx| self.poll_event(cx)).await {
                    Event::Read | Event::IdleTick => {}
                    Event::Ended => return Err("the client went away before its 8-byte key"),
                    Event::Stop => return Err("the gateway is stopping"),
                }
            }
            Ok(())
        });
        read.await
            .map_err(|_| "no 8-byte key within --handshake-timeout")??;
        let mut body = [0; BODY_LEN];
        self.inbound.copy_to_slice(&mut body);
        // The handshake is not the client speaking: silence counts from here, as it does
        // from an RFC 6455 client's 101.
        self.heard = false;
        let reply = answer(keys.0, keys.1, &body);
        self.conn.owe(&reply);
        match timeout(limit, self.conn.flush()).await {
            Ok(Ok(())) => Ok(()),
            _ => Err("the client did not take the answer"),
        }
    }

    /// Waits for what the client does next, sending what is queued meanwhile.
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Event> {
        // A client that keeps sending still sees the stop (the poll below registers it).
        if self.watch.stop_fired() {
            return Poll::Ready(Event::Stop);
        }
        // A frame under way reads straight into its buffer; otherwise the read goes through
        // the thread's scratch buffer, so that a session waiting for its client holds none.
        let read = match self.inbound.is_empty() {
            true => self.conn.poll_read_append(cx, &mut self.inbound),
            false => {
                self.inbound.reserve(READ);
                self.conn.poll_read_into(cx, &mut self.inbound)
            }
        };
        match read {
            Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(Event::Ended),
            Poll::Ready(Ok(_)) => {
                self.heard = true;
                return Poll::Ready(Event::Read);
            }
            Poll::Pending => {}
        }
        if self.dirty {
            match self.conn.poll_send(cx) {
                Poll::Ready(Ok(())) => self.dirty = false,
                Poll::Ready(Err(_)) => return Poll::Ready(Event::Ended),
                Poll::Pending => {}
            }
        }
        match self.watch.poll(cx) {
            Seen::Stop => Poll::Ready(Event::Stop),
            Seen::Tick => Poll::Ready(Event::IdleTick),
            Seen::Nothing => Poll::Pending,
        }
    }

    /// The idle timeout (the idle timer may tick more often).
    fn idle_timeout(&self) -> Duration {
        self.watch.period().saturating_mul(self.ticks_per_timeout)
    }

    /// Waits for what is queued to go out: never longer than the idle timeout, and not
    /// past the gateway's shutdown. A session whose writes could not finish is over.
    async fn push(&mut self) -> Result<(), Closed> {
        let limit = self.idle_timeout();
        let written = timeout(limit, async {
            poll_fn(|cx| {
                if self.watch.poll_stopping(cx) {
                    return Poll::Ready(Err(Closed));
                }
                self.conn.poll_send(cx).map_err(|_| Closed)
            })
            .await
        });
        let result = match written.await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(peer = %self.peer, "closing: the client did not read for the idle timeout");
                Err(Closed)
            }
        };
        if result.is_err() {
            self.closed = true;
        }
        result
    }

    /// The closing handshake, behind what is queued: `0xFF 0x00`, then what the client
    /// still sends is dropped up to its own, or the end of the stream, within `wait`.
    ///
    /// Boxed: a connection closes once, and this future would otherwise be part of every
    /// session's state.
    fn close_within(&mut self, wait: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.closed = true;
        self.conn.queue_with(frame::encode_close);
        Box::pin(async move {
            let _ = timeout(wait, async {
                if self.conn.flush().await.is_err() {
                    return;
                }
                loop {
                    self.inbound.clear();
                    if !matches!(poll_fn(|cx| self.poll_event(cx)).await, Event::Read) {
                        return; // ended (or stopping: the drain is bounded anyway)
                    }
                }
            })
            .await;
        })
    }

    /// Ends the session for a reason of the session's own (not the backend's), logged.
    async fn end(&mut self, why: &'static str) {
        tracing::info!(peer = %self.peer, transport = "hixie76", why, "closing");
        self.close_within(CLOSE_WAIT).await;
    }
}

impl Session for HixieSession {
    fn is_asleep(&self) -> bool {
        self.asleep
    }

    async fn recv(&mut self) -> Option<Payload> {
        while !self.closed {
            match self.decoder.decode(&self.inbound) {
                Ok(step) => match step.frame {
                    Frame::Text(range) => {
                        let mut message = self.inbound.split_to(step.consumed);
                        message.truncate(range.end);
                        message.advance(range.start);
                        let text = Utf8Bytes::try_from(message.freeze())
                            .expect("the decoder checked the UTF-8");
                        return Some(Payload::Text(text));
                    }
                    Frame::Close => {
                        // The client's closing handshake: ours back, then the socket closes.
                        self.inbound.advance(step.consumed);
                        self.closed = true;
                        self.conn.queue_with(frame::encode_close);
                        let _ = timeout(CLOSE_WAIT, self.conn.flush()).await;
                        return None;
                    }
                    Frame::Incomplete => self.inbound.advance(step.consumed),
                },
                Err(error) => {
                    tracing::warn!(peer = %self.peer, transport = "hixie76", why = error.reason(), "closing");
                    self.close_within(CLOSE_WAIT).await;
                    return None;
                }
            }
            match poll_fn(|cx| self.poll_event(cx)).await {
                Event::Read => {}
                Event::Ended => self.closed = true,
                Event::Stop => Box::pin(self.end("server shutting down")).await,
                Event::IdleTick if self.heard => (self.heard, self.quiet) = (false, 0),
                Event::IdleTick => {
                    if self.silent_tick().await {
                        return None;
                    }
                }
            }
            if self.inbound.is_empty() && self.inbound.capacity() > KEEP_IN {
                self.inbound = BytesMut::new();
            }
        }
        None
    }

    async fn send(&mut self, payload: Payload) -> Result<(), Closed> {
        if self.closed {
            return Err(Closed);
        }
        self.dirty = true;
        let text = text_only(payload);
        if self.conn.queue_with(|out| frame::encode_text(out, &text)) {
            self.push().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Closed> {
        if self.closed {
            return Err(Closed);
        }
        self.dirty = false;
        self.push().await
    }

    async fn close(&mut self, reason: CloseReason) {
        if self.closed {
            return;
        }
        // A member dropped as too slow gets the close behind what it has not read yet.
        let wait = match reason {
            CloseReason::TooSlow => self.idle_timeout().max(CLOSE_WAIT),
            _ => CLOSE_WAIT,
        };
        reason.announce(self.peer);
        self.close_within(wait).await;
    }
}
