//! The seam between transports and backends.
//!
//! A transport (the RFC 6455 WebSocket, hixie-76, SockJS's Comet) turns a connection into a
//! [`Session`] (or a [`ByteSession`]), and hands it to a [`Service`] (or a [`ByteService`]): one
//! backend's handler of that client, made for it by the router. Transports are generic over the
//! service traits and backends over the session traits, so neither names the other, and the
//! transport is where transport rules live, such as never sending a binary frame to
//! web-socket-js.
//!
//! A client whose connection sleeps (it has no task while silent) is reached through a
//! [`Delivery`]: its place in its transport's table of sleepers ([`Sleepers`]), which owns
//! the socket, knows the client's framing and writes without waiting. A broadcast room holds
//! one for each sleeping member.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use base64::Engine;
use bytes::{Bytes, BytesMut};
use tungstenite::Utf8Bytes;

/// One application message. Cloning is cheap (reference counted), so a broadcast shares one copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// A text message; always valid UTF-8.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl Payload {
    /// Size of the message body in bytes.
    pub fn len(&self) -> usize {
        match self {
            Payload::Text(t) => t.len(),
            Payload::Binary(b) => b.len(),
        }
    }
}

/// The prefix of a binary message delivered to a client that cannot receive binary frames.
///
/// web-socket-js 1.0 closes the connection (1003) on any binary frame, so a Flash client gets a
/// text message `data:application/octet-stream;base64,<base64 of the bytes>` instead: a data URL,
/// which any page can recognise and decode with `atob`.
pub const FLASH_BINARY_PREFIX: &str = "data:application/octet-stream;base64,";

/// Turns binary into the text form described at [`FLASH_BINARY_PREFIX`]; text passes unchanged.
pub fn text_only(payload: Payload) -> Utf8Bytes {
    match payload {
        Payload::Text(text) => text,
        Payload::Binary(bytes) => {
            let engine = &base64::engine::general_purpose::STANDARD;
            let mut out =
                String::with_capacity(FLASH_BINARY_PREFIX.len() + bytes.len().div_ceil(3) * 4);
            out.push_str(FLASH_BINARY_PREFIX);
            engine.encode_string(&bytes, &mut out);
            out.into()
        }
    }
}

/// How a client reached the gateway. Logged with every session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A WebSocket client that can receive every kind of frame (browsers, native clients).
    Rfc6455,
    /// web-socket-js running in Flash (or Ruffle): RFC 6455 framing, but text frames only.
    Flash,
    /// A hixie-76 (or hixie-75) WebSocket: text frames only.
    Hixie76,
    /// SockJS framing over a WebSocket.
    SockjsWebsocket,
    /// SockJS xhr-polling.
    SockjsXhr,
    /// SockJS xhr-streaming.
    SockjsXhrStreaming,
    /// SockJS eventsource.
    SockjsEventsource,
    /// SockJS htmlfile.
    SockjsHtmlfile,
    /// SockJS jsonp-polling.
    SockjsJsonp,
}

impl Transport {
    /// True when the client takes text only: binary reaches it as [`text_only`] says.
    pub fn text_only(self) -> bool {
        !matches!(self, Transport::Rfc6455)
    }

    /// The label used in logs and documentation.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Rfc6455 => "rfc6455",
            Transport::Flash => "flash",
            Transport::Hixie76 => "hixie76",
            Transport::SockjsWebsocket => "sockjs-websocket",
            Transport::SockjsXhr => "sockjs-xhr-polling",
            Transport::SockjsXhrStreaming => "sockjs-xhr-streaming",
            Transport::SockjsEventsource => "sockjs-eventsource",
            Transport::SockjsHtmlfile => "sockjs-htmlfile",
            Transport::SockjsJsonp => "sockjs-jsonp-polling",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the gateway ends a session itself. Each maps to one WebSocket close code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The client's send queue overflowed because it does not read: 1008 (policy violation). Not
    /// 1013 "try again later": the client broke the rule, and retrying at once would fail again.
    TooSlow,
    /// The far end of a relay finished; everything it sent has been delivered: 1000.
    UpstreamClosed,
    /// The far end of a relay could not be reached or failed: 1011, with why.
    UpstreamFailed(String),
    /// This code and reason, passed on as they are: from a relay's far end, or the
    /// configuration (a code a server may not send becomes 1011).
    Peer(u16, String),
}

impl CloseReason {
    /// The close code and reason to tell the client (a reason fits a close frame:
    /// [`fit_close_reason`]).
    pub fn code(&self) -> (u16, &str) {
        match self {
            CloseReason::TooSlow => (
                close_code::POLICY,
                "send queue full: the client does not read",
            ),
            CloseReason::UpstreamClosed => (close_code::NORMAL, "target closed"),
            CloseReason::UpstreamFailed(why) => (close_code::ERROR, fit_close_reason(why)),
            CloseReason::Peer(code, why) => {
                let code = match close_code::may_send(*code) {
                    true => *code,
                    false => close_code::ERROR,
                };
                (code, fit_close_reason(why))
            }
        }
    }

    /// Logs why the session ends and returns [`code`](Self::code).
    pub fn announce(&self, peer: std::net::SocketAddr) -> (u16, &str) {
        let (code, reason) = self.code();
        match self {
            CloseReason::TooSlow => {
                tracing::warn!(%peer, "closing: 1008 send queue full, the client does not read")
            }
            CloseReason::UpstreamClosed => tracing::debug!(%peer, "closing: 1000 target closed"),
            CloseReason::UpstreamFailed(why) => tracing::warn!(%peer, why, "closing: 1011"),
            CloseReason::Peer(_, why) => {
                tracing::debug!(%peer, code, why, "closing: passed on as given")
            }
        }
        (code, reason)
    }
}

/// WebSocket close codes (RFC 6455 7.4), named once.
pub mod close_code {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// Going away: the gateway stops, or the client was idle.
    pub const AWAY: u16 = 1001;
    /// Protocol error.
    pub const PROTOCOL: u16 = 1002;
    /// Data of a kind the endpoint cannot take.
    pub const UNSUPPORTED: u16 = 1003;
    /// Text that is not UTF-8.
    pub const INVALID: u16 = 1007;
    /// Policy violation (a client that does not read).
    pub const POLICY: u16 = 1008;
    /// A message larger than the endpoint takes.
    pub const TOO_BIG: u16 = 1009;
    /// Internal error (a relay's far end failed).
    pub const ERROR: u16 = 1011;

    /// True when a close frame may carry `code` (RFC 6455 7.4.1-2): the defined codes that
    /// are not reserved for local use, and 3000-4999.
    pub fn may_send(code: u16) -> bool {
        matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
    }

    /// True when a close frame from a peer may carry `code`: what may be sent, and the
    /// codes registered since RFC 6455 (1012-1014).
    pub fn may_receive(code: u16) -> bool {
        may_send(code) || matches!(code, 1012..=1014)
    }
}

/// `reason` cut to what a close frame carries (123 bytes), at a character boundary.
pub fn fit_close_reason(reason: &str) -> &str {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

/// The gateway's side of one client conversation.
///
/// `recv` also does the transport's housekeeping (flushing batched writes, answering pings,
/// idle checks, shutdown), so a backend only loops over `recv` and `send`.
pub trait Session: Send {
    /// The next message from the client, or `None` once the session is over (closed by either
    /// side, failed, or the gateway is shutting down). Errors are logged and answered with the
    /// right close code by the transport, so the caller only stops.
    ///
    /// Cancel safe: it can be raced in `select!` without losing a message.
    fn recv(&mut self) -> impl Future<Output = Option<Payload>> + Send;

    /// Queues a message for the client. Writes are batched and flushed when the session waits
    /// for input; this waits only while the transport's bounded write buffer is full, and
    /// never longer than the idle timeout or past the gateway's shutdown.
    /// An error means the session is over.
    fn send(&mut self, payload: Payload) -> impl Future<Output = Result<(), Closed>> + Send;

    /// Sends what [`send`](Self::send) queued now, waiting while the client does not read
    /// (bounded as `send` is). For relays, whose other end must not wait for the client to
    /// speak first.
    fn flush(&mut self) -> impl Future<Output = Result<(), Closed>> + Send;

    /// Ends the session with the given reason, telling the client when the transport can.
    fn close(&mut self, reason: CloseReason) -> impl Future<Output = ()> + Send;

    /// The close code and reason the client ended with, once [`recv`](Self::recv) has
    /// returned `None`: `None` when it gave none (its transport has no close codes, it went
    /// away, or the gateway ended the session).
    fn farewell(&mut self) -> Option<(u16, Utf8Bytes)> {
        None
    }

    /// The close code the session ended with, sent or received, once it is over: `None`
    /// when there was none (the connection was lost, or its transport has no close codes).
    fn close_code(&self) -> Option<u16> {
        None
    }

    /// True when [`recv`](Self::recv) ended only so that the connection can sleep: the
    /// client is still there, and the transport serves it again when it wakes. A backend
    /// then keeps the client's place (a room membership, say) for the transport to sleep with.
    fn is_asleep(&self) -> bool {
        false
    }
}

/// A client whose messages make one byte stream: the socket proxy's, and a relay's to a TCP
/// or XMLSocket server. Bytes flow through without being gathered into messages; where one
/// message ends carries meaning only when the service's [`Intake`] says so.
pub trait ByteSession: Send {
    /// Waits for bytes from the client and appends what has arrived to `into`. False once
    /// the client's side is over (it closed, broke the protocol, went silent, or the gateway
    /// is stopping); bytes it sent before that are in `into`, and [`finish`](Self::finish)
    /// ends the session.
    ///
    /// Cancel safe: it can be raced in `select!` without losing a byte.
    fn read_into(&mut self, into: &mut BytesMut) -> impl Future<Output = bool> + Send;

    /// Queues `bytes` for the client as one binary message. Nothing is sent until
    /// [`flush`](Self::flush): the caller bounds what it queues.
    fn write(&mut self, bytes: &[u8]);

    /// Queues `text`, which the caller has checked is UTF-8, as one text message.
    fn write_text(&mut self, text: &[u8]);

    /// Queues `frames`, the next bytes of a WebSocket server's stream of RFC 6455 frames, to
    /// pass to the client as they are (the intake's [`frames`](Intake::frames)). A frame may
    /// be cut anywhere between calls. `Err` says why the server's frames cannot be passed
    /// on (what came before the offending frame is queued); the caller then closes.
    fn write_frames(&mut self, frames: &[u8]) -> Result<(), &'static str>;

    /// Sends what was queued, waiting while the client does not read (up to its idle
    /// timeout). An error means the session is over.
    fn flush(&mut self) -> impl Future<Output = Result<(), Closed>> + Send;

    /// Ends the session with `reason`, telling the client when the transport can.
    fn close(&mut self, reason: CloseReason) -> impl Future<Output = ()> + Send;

    /// Ends the session once [`read_into`](Self::read_into) has returned false: answers the
    /// client's close, or tells it why its side was ended.
    fn finish(&mut self) -> impl Future<Output = ()> + Send;

    /// The close code the session ended with, sent or received, once it is over.
    fn close_code(&self) -> Option<u16> {
        None
    }

    /// The client's data messages begun so far, and their payload bytes.
    fn read_so_far(&self) -> (u64, u64) {
        (0, 0)
    }

    /// The messages begun so far in the server's frames passed as they are
    /// ([`write_frames`](Self::write_frames)), and their payload bytes.
    fn frames_so_far(&self) -> (u64, u64) {
        (0, 0)
    }
}

/// The session is over; nothing more can be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// One backend's handler of one message client, made by the router for each session.
///
/// It lives as long as the client: across the sessions of a connection that sleeps and wakes,
/// so a woken client resumes the backend (and the room) it had.
pub trait Service: Send + 'static {
    /// Serves `session` until it ends or falls asleep ([`Session::is_asleep`]).
    fn serve<S: Session>(&mut self, session: &mut S) -> impl Future<Output = ()> + Send;

    /// True when the client's connection may fall asleep while it is silent: the service
    /// keeps nothing that speaks on its own (a relay's far end does, so its sessions never
    /// sleep). Transports ask before they let a session sleep.
    fn sleeps(&self) -> bool {
        true
    }

    /// The client's connection fell asleep and `delivery` now reaches it. A service that
    /// delivers to sleepers keeps the handle (a room does); `Err` hands it back when something
    /// came for the client meanwhile, and the transport serves it awake.
    fn sleep(&mut self, delivery: Delivery) -> Result<(), Delivery> {
        drop(delivery);
        Ok(())
    }

    /// The client's connection woke: the service lets go of its [`Delivery`] and says how
    /// to go on.
    fn wake(&mut self) -> Woken {
        Woken::Resumed
    }

    /// The transport closed the client with `code` while the service was not serving it
    /// (it slept, and did not answer its ping, or was dropped as too slow meanwhile).
    fn closed(&mut self, code: u16) {
        let _ = code;
    }
}

/// How a service takes back a client that slept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    /// Serve it again.
    Resumed,
    /// It was dropped as too slow while asleep: send what its [`Delivery`] owes, then close
    /// it with [`CloseReason::TooSlow`].
    TooSlow,
    /// Its place is gone: end the session.
    Gone,
}

/// One backend's handler of one byte-stream client (the socket proxy's, a TCP relay's).
pub trait ByteService: Send + 'static {
    /// What the service takes of the client's messages; the transport holds the client to
    /// it.
    fn intake(&self) -> Intake {
        Intake::default()
    }

    /// Relays `session` until either end is done.
    fn serve<S: ByteSession>(self, session: &mut S) -> impl Future<Output = ()> + Send;
}

/// What a byte service takes of a client's messages. By default (the socket proxy's):
/// binary messages of any size, made one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intake {
    /// Text messages are taken as well, their UTF-8 checked as they stream (1007 when it is
    /// not); otherwise a text message ends the session with 1003.
    pub text: bool,
    /// Each message is followed in the stream by a NUL byte, and a message holding a NUL is
    /// refused with 1003: Flash XMLSocket's framing. (Frames kept as they came,
    /// [`frames`](Self::frames), get no NUL between them.)
    pub nul_ended: bool,
    /// The largest message taken; a larger one ends the session with 1009.
    pub max_message: u64,
    /// The stream is the client's RFC 6455 frames as it sent them, masks and all, for a
    /// WebSocket server ([`ByteSession::write_frames`] the other way): checked as they pass,
    /// control frames included, and not answered by the transport. When the client's side
    /// ends other than by its own close frame, the stream ends with a close frame saying so
    /// (when the client stopped between frames).
    pub frames: bool,
}

impl Default for Intake {
    fn default() -> Self {
        Intake {
            text: false,
            nul_ended: false,
            max_message: u64::MAX,
            frames: false,
        }
    }
}

/// How messages are framed on a client's connection. A room frames each publish once per
/// framing, for all its sleeping members that share it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// RFC 6455 frames, binary included.
    Rfc6455,
    /// RFC 6455 text frames only (web-socket-js): binary as [`text_only`] text.
    Rfc6455Text,
    /// hixie-76 text frames (`0x00 … 0xFF`): binary as [`text_only`] text.
    Hixie76,
    /// A SockJS xhr-streaming response, chunked: `a[...]` lines.
    SockjsXhrStreaming,
    /// A SockJS eventsource response, chunked: `data:` events.
    SockjsEventsource,
    /// A SockJS htmlfile response, chunked: `<script>` calls.
    SockjsHtmlfile,
}

impl Framing {
    /// How many framings there are.
    pub const COUNT: usize = 6;

    /// A small index, unique per framing, below [`COUNT`](Self::COUNT).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A transport's table of clients whose connections sleep: what a [`Delivery`] writes
/// through. The table owns their sockets; a client that has left it (it woke, or its
/// connection is gone) is never written to, whatever handles to it remain.
pub trait Sleepers: Send + Sync {
    /// Appends `messages`, framed as `framing` says, to `out`.
    fn frame(&self, framing: Framing, messages: &[Payload], out: &mut Vec<u8>);

    /// Writes as much of `bytes` to the client `key` as its connection takes now, without
    /// waiting. What does not fit is owed: the connection wakes, and sends it before
    /// anything else.
    fn deliver(&self, key: usize, bytes: &[u8]) -> Delivered;
}

/// What a [`Delivery`] did with a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// All of it is on its way.
    All,
    /// Part of it; the connection wakes owing the rest (this happens once per sleep).
    Part,
    /// Nothing: the client is no longer asleep (it woke meanwhile, or is gone).
    Gone,
}

/// How a backend reaches a client that has no task (its connection sleeps): the client's
/// place in its transport's [`Sleepers`]. Cloning costs no allocation.
#[derive(Clone)]
pub struct Delivery {
    /// The transport's table.
    sleepers: Arc<dyn Sleepers>,
    /// The client's key in it (stale once the client has left it).
    key: usize,
    /// How the client's messages are framed.
    framing: Framing,
}

impl Delivery {
    /// The client `key` of `sleepers`, whose messages are framed as `framing` says.
    pub fn new(sleepers: Arc<dyn Sleepers>, key: usize, framing: Framing) -> Delivery {
        Delivery {
            sleepers,
            key,
            framing,
        }
    }

    /// How the client's messages are framed.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Appends `messages`, framed for this client, to `out`.
    pub fn frame(&self, messages: &[Payload], out: &mut Vec<u8>) {
        self.sleepers.frame(self.framing, messages, out);
    }

    /// Writes `bytes` (framed by [`frame`](Self::frame)) to the client without waiting.
    pub fn deliver(&self, bytes: &[u8]) -> Delivered {
        self.sleepers.deliver(self.key, bytes)
    }

    /// True when both reach the same client through the same table.
    pub fn same(&self, other: &Delivery) -> bool {
        self.key == other.key
            && std::ptr::addr_eq(Arc::as_ptr(&self.sleepers), Arc::as_ptr(&other.sleepers))
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_passes_through_unchanged() {
        let text = Utf8Bytes::from_static("héllo");
        assert_eq!(text_only(Payload::Text(text.clone())), text);
    }

    #[test]
    fn binary_becomes_a_base64_data_url() {
        let out = text_only(Payload::Binary(Bytes::from_static(&[0, 1, 2, 0xff])));
        assert_eq!(
            out.as_str(),
            "data:application/octet-stream;base64,AAEC/w=="
        );
    }

    #[test]
    fn a_relays_far_end_close_passes_through_unless_a_server_may_not_send_it() {
        let peer = "127.0.0.1:1".parse().unwrap();
        let passed = CloseReason::Peer(4001, "game over".into());
        assert_eq!(passed.announce(peer), (4001, "game over"));
        // 1006 only says a connection was lost: never sent in a close frame.
        let lost = CloseReason::Peer(1006, "gone".into());
        assert_eq!(lost.announce(peer), (close_code::ERROR, "gone"));
        let long = CloseReason::Peer(1000, "x".repeat(300));
        assert_eq!(long.announce(peer).1.len(), 123);
    }

    #[test]
    fn empty_binary_is_a_bare_prefix() {
        assert_eq!(
            text_only(Payload::Binary(Bytes::new())).as_str(),
            FLASH_BINARY_PREFIX
        );
    }
}
