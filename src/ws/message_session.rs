//! A [`Session`] over an RFC 6455 WebSocket (tokio-tungstenite), for browsers, native
//! clients and web-socket-js (Flash).

use std::future::poll_fn;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Error, Message, Utf8Bytes};

mod closing;

use super::conn::Conn;
use super::watch::{Seen, Watch, pace};
use crate::session::{CloseReason, Closed, Payload, Session, Transport};
use crate::shutdown::Signal;

/// While messages keep coming, the shutdown signal is checked once per this many.
const CHECK_EVERY: u32 = 64;

/// How long the gateway waits for a close handshake to complete before dropping the socket.
pub(super) const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// A WebSocket client.
pub struct MessageSession {
    /// The connection.
    ws: WebSocketStream<Conn>,
    /// `Flash` clients never get a binary frame (web-socket-js closes with 1003 on one).
    transport: Transport,
    /// Who, for logs.
    peer: SocketAddr,
    /// Frames were queued since the last flush; flushed when the client has nothing more to say.
    dirty: bool,
    /// The stop signal, and the clock that ticks to check that the client is still there:
    /// every idle timeout, or more often when the session may fall asleep.
    watch: Watch,
    /// Ticks of silence that make an idle timeout.
    ticks_per_timeout: u32,
    /// Ticks of silence so far.
    quiet: u32,
    /// Something arrived since the last idle tick.
    heard: bool,
    /// A ping went out and nothing has come back yet.
    pinged: bool,
    /// The session may fall asleep at a silent tick (see [`super::hibernate`]).
    sleepy: bool,
    /// It did: [`recv`](Session::recv) ended so that the connection can sleep.
    asleep: bool,
    /// The largest message accepted, for the 1009 reason.
    max_message_size: usize,
    /// Messages taken since the shutdown signal was last checked.
    unchecked: u32,
    /// The session is over (not asleep): nothing more may be sent.
    closed: bool,
    /// The code and reason of the client's close frame (boxed: rare, and every open
    /// connection holds the field).
    farewell: Option<Box<(u16, Utf8Bytes)>>,
    /// The close code the session ended with: the client's, or its own close frame's,
    /// whichever came first.
    code: Option<u16>,
}

/// What woke the session up.
enum Event {
    Message(Message),
    Failed(Error),
    Ended,
    Stop,
    IdleTick,
}

impl MessageSession {
    /// Wraps an upgraded connection. With `sleep_after`, the session ends (see
    /// [`is_asleep`](Self::is_asleep)) once the client has been silent about that long
    /// and nothing is in flight, so that the connection can sleep.
    pub fn new(
        ws: WebSocketStream<Conn>,
        transport: Transport,
        peer: SocketAddr,
        stop: Signal,
        idle_timeout: Duration,
        sleep_after: Option<Duration>,
        max_message_size: usize,
    ) -> Self {
        let (tick, ticks_per_timeout) = pace(idle_timeout, sleep_after);
        MessageSession {
            ws,
            transport,
            peer,
            dirty: false,
            watch: Watch::new(stop, tick),
            ticks_per_timeout,
            quiet: 0,
            heard: false,
            pinged: false,
            sleepy: sleep_after.is_some(),
            asleep: false,
            max_message_size,
            unchecked: 0,
            closed: false,
            farewell: None,
            code: None,
        }
    }

    /// True when a ping is waiting for its answer.
    pub fn pinged(&self) -> bool {
        self.pinged
    }

    /// The connection, once the session is over.
    pub fn into_conn(self) -> Conn {
        self.ws.into_inner()
    }

    /// Pings the client now (a sleeping client whose idle timeout came).
    /// Bounded by the idle timeout: a client that does not read cannot hold it up.
    pub async fn ping(&mut self) -> Result<(), Closed> {
        let limit = self.idle_timeout();
        let sent = timeout(limit, async {
            self.queue_ping().await?;
            self.flush().await
        });
        sent.await.unwrap_or(Err(Closed))
    }

    /// Queues a ping; the next flush sends it.
    async fn queue_ping(&mut self) -> Result<(), Closed> {
        self.pinged = true;
        self.dirty = true;
        let ping = Message::Ping(Default::default());
        self.ws.feed(ping).await.map_err(|_| Closed)
    }

    /// The idle timeout (the idle timer may tick more often).
    fn idle_timeout(&self) -> Duration {
        self.watch.period().saturating_mul(self.ticks_per_timeout)
    }

    /// Bytes were queued under tungstenite (owed from a sleep): send them at the next
    /// chance, without waiting for them.
    pub fn unsent(&mut self) {
        self.dirty = true;
    }

    /// Reads the next frame; when there is none, flushes what was queued and checks the
    /// shutdown signal and the idle timer. Batching writes this way turns a burst of
    /// messages into one write system call.
    ///
    /// While messages keep arriving, the shutdown signal is checked only every
    /// [`CHECK_EVERY`] messages: a client flooding the gateway still notices a shutdown, and
    /// a busy connection does not pay for the checks on every message.
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Event> {
        self.unchecked += 1;
        if self.unchecked >= CHECK_EVERY {
            self.unchecked = 0;
            if let Some(event) = self.poll_watch(cx) {
                return Poll::Ready(event);
            }
        }
        match self.ws.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(message))) => return Poll::Ready(Event::Message(message)),
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Event::Failed(e)),
            Poll::Ready(None) => return Poll::Ready(Event::Ended),
            Poll::Pending => {}
        }
        if self.dirty {
            match self.ws.poll_flush_unpin(cx) {
                Poll::Ready(Ok(())) => self.dirty = false,
                Poll::Ready(Err(e)) => return Poll::Ready(Event::Failed(e)),
                Poll::Pending => {}
            }
        }
        // About to wait: the shutdown signal and the idle timer must be able to wake us.
        self.unchecked = 0;
        self.poll_watch(cx).map_or(Poll::Pending, Poll::Ready)
    }

    /// What the stop signal and the idle clock have to say, if anything.
    fn poll_watch(&mut self, cx: &mut Context<'_>) -> Option<Event> {
        match self.watch.poll(cx) {
            Seen::Stop => Some(Event::Stop),
            Seen::Tick => Some(Event::IdleTick),
            Seen::Nothing => None,
        }
    }

    /// Waits for what is queued to go out: never longer than the idle timeout (a client that
    /// takes nothing for that long is gone), and not past the gateway's shutdown. A session
    /// whose writes could not finish is over.
    async fn push(&mut self, flush: bool) -> Result<(), Closed> {
        let limit = self.idle_timeout();
        let peer = self.peer;
        let written = timeout(limit, async {
            let sent = poll_fn(|cx| {
                if self.watch.poll_stopping(cx) {
                    return Poll::Ready(Err(Closed));
                }
                match flush {
                    true => self.ws.poll_flush_unpin(cx).map_err(|_| Closed),
                    false => self.ws.get_mut().poll_send(cx).map_err(|_| Closed),
                }
            });
            sent.await
        });
        let result = match written.await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(%peer, "closing: the client did not read for the idle timeout");
                Err(Closed)
            }
        };
        if result.is_err() {
            self.closed = true;
        }
        result
    }

    /// Handles what woke [`recv`](Session::recv) other than a message: true to go on
    /// reading, false when the session is over.
    async fn housekeeping(&mut self, event: Event) -> bool {
        match event {
            Event::Message(_) => true,
            Event::Failed(error) => {
                self.fail(error).await;
                false
            }
            Event::Ended => {
                self.send_queued().await;
                false
            }
            Event::Stop => {
                self.close_with(CloseCode::Away, "server shutting down")
                    .await;
                false
            }
            Event::IdleTick if self.heard => {
                self.heard = false;
                self.pinged = false;
                self.quiet = 0;
                true
            }
            Event::IdleTick => {
                self.quiet += 1;
                // Silent, and nothing half-read or unsent (the reader waits, so it holds
                // nothing either): the connection can sleep without losing a byte.
                if self.sleepy && !self.dirty && self.ws.get_ref().at_rest() {
                    self.asleep = true;
                    return false;
                }
                if self.quiet < self.ticks_per_timeout {
                    return true;
                }
                self.quiet = 0;
                if !self.pinged {
                    self.queue_ping().await.is_ok()
                } else {
                    self.close_idle().await;
                    false
                }
            }
        }
    }
}

impl Session for MessageSession {
    /// True when the session ended so that the connection can sleep: the client has been
    /// silent, nothing is in flight, and the connection ([`into_conn`](MessageSession::into_conn))
    /// can be rebuilt into a new session without a byte lost.
    fn is_asleep(&self) -> bool {
        self.asleep
    }

    async fn recv(&mut self) -> Option<Payload> {
        loop {
            match poll_fn(|cx| self.poll_event(cx)).await {
                Event::Message(message) => {
                    self.heard = true;
                    match message {
                        Message::Text(text) => return Some(Payload::Text(text)),
                        Message::Binary(bytes) => return Some(Payload::Binary(bytes)),
                        Message::Close(Some(frame)) => {
                            let code = frame.code.into();
                            self.code = self.code.or(Some(code));
                            self.farewell = Some(Box::new((code, frame.reason)));
                            self.dirty = true;
                        }
                        // tungstenite has queued the pong or the close reply: flush it.
                        Message::Ping(_)
                        | Message::Pong(_)
                        | Message::Close(None)
                        | Message::Frame(_) => self.dirty = true,
                    }
                }
                // Boxed: rare, and large enough to double what every open connection holds.
                event => {
                    if !Box::pin(self.housekeeping(event)).await {
                        self.closed = !self.asleep;
                        return None;
                    }
                }
            }
        }
    }

    /// Frames `payload` straight into the connection's write queue: tungstenite writes only
    /// control frames, so a message is copied once on its way out, not twice.
    async fn send(&mut self, payload: Payload) -> Result<(), Closed> {
        if self.closed {
            return Err(Closed);
        }
        self.dirty = true;
        let text_only = self.transport.text_only();
        if self.ws.get_mut().queue(&payload, text_only) {
            self.push(false).await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Closed> {
        if self.closed {
            return Err(Closed);
        }
        self.dirty = false;
        self.push(true).await
    }

    fn farewell(&mut self) -> Option<(u16, Utf8Bytes)> {
        self.farewell.take().map(|farewell| *farewell)
    }

    fn close_code(&self) -> Option<u16> {
        self.code
    }

    async fn close(&mut self, reason: CloseReason) {
        // A member dropped as too slow gets the close frame behind the data it has not read
        // yet: a client that is merely slow gets it (and the reason) if it reads within the
        // idle timeout. Memory stays bounded: nothing more is queued.
        let wait = match reason {
            CloseReason::TooSlow => self.idle_timeout().max(CLOSE_WAIT),
            _ => CLOSE_WAIT,
        };
        let (code, text) = reason.announce(self.peer);
        self.close_within(CloseCode::from(code), text, wait).await;
    }
}
