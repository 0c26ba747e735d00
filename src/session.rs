//! What backends see of a client: a stream of messages in and out, whatever carried them.
//!
//! A transport (the RFC 6455 WebSocket today; Comet and hixie-76 later) turns a connection into a
//! [`Session`]. Backends are generic over the trait, so they never learn which transport a client
//! used, and the transport is where transport rules live, such as never sending a binary frame to
//! web-socket-js.

use std::fmt;
use std::future::Future;

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

    /// True when the message body is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
}

impl Transport {
    /// The label used in logs and documentation.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Rfc6455 => "rfc6455",
            Transport::Flash => "flash",
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
    /// The client sent a kind of message this backend cannot take (text to the socket
    /// proxy): 1003 (unsupported data), with what is accepted as the reason.
    Unsupported(&'static str),
    /// The other end of a relay finished; everything it sent has been delivered: 1000.
    TargetClosed,
    /// The other end of a relay could not be reached or failed: 1011, with why.
    TargetFailed(String),
}

impl CloseReason {
    /// Logs why the session ends and returns the close code and reason to tell the client
    /// (a reason fits a close frame: [`fit_close_reason`]).
    pub fn announce(&self, peer: std::net::SocketAddr) -> (u16, &str) {
        match self {
            CloseReason::TooSlow => {
                tracing::warn!(%peer, "closing: 1008 send queue full, the client does not read");
                (1008, "send queue full: the client does not read")
            }
            CloseReason::Unsupported(what) => {
                tracing::warn!(%peer, what, "closing: 1003");
                (1003, what)
            }
            CloseReason::TargetClosed => {
                tracing::debug!(%peer, "closing: 1000 target closed");
                (1000, "target closed")
            }
            CloseReason::TargetFailed(why) => {
                tracing::warn!(%peer, why, "closing: 1011");
                (1011, fit_close_reason(why))
            }
        }
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
    /// How the client is connected.
    fn transport(&self) -> Transport;

    /// The next message from the client, or `None` once the session is over (closed by either
    /// side, failed, or the gateway is shutting down). Errors are logged and answered with the
    /// right close code by the transport, so the caller only stops.
    ///
    /// Cancel safe: it can be raced in `select!` without losing a message.
    fn recv(&mut self) -> impl Future<Output = Option<Payload>> + Send;

    /// Queues a message for the client. Writes are batched and flushed when the session waits
    /// for input; this waits only while the transport's bounded write buffer is full.
    /// An error means the session is over.
    fn send(&mut self, payload: Payload) -> impl Future<Output = Result<(), Closed>> + Send;

    /// Sends what [`send`](Self::send) queued now, waiting while the client does not read.
    /// For relays, whose other end must not wait for the client to speak first.
    fn flush(&mut self) -> impl Future<Output = Result<(), Closed>> + Send;

    /// Ends the session with the given reason, telling the client when the transport can.
    fn close(&mut self, reason: CloseReason) -> impl Future<Output = ()> + Send;

    /// True when [`recv`](Self::recv) ended only so that the connection can sleep: the
    /// client is still there, and the transport serves it again when it wakes. A backend
    /// then keeps the client's place (a room membership, say) for the transport to sleep with.
    fn is_asleep(&self) -> bool {
        false
    }
}

/// A client whose messages make one byte stream: the socket proxy's. Where one message
/// ends carries no meaning, so bytes flow through without being gathered into messages.
pub trait ByteSession: Send {
    /// Waits for bytes from the client and appends what has arrived to `into`. False once
    /// the client's side is over (it closed, broke the protocol, went silent, or the gateway
    /// is stopping); bytes it sent before that are in `into`, and [`finish`](Self::finish)
    /// ends the session.
    ///
    /// Cancel safe: it can be raced in `select!` without losing a byte.
    fn read_into(&mut self, into: &mut BytesMut) -> impl Future<Output = bool> + Send;

    /// Queues `bytes` for the client as one message. Nothing is sent until
    /// [`flush`](Self::flush): the caller bounds what it queues.
    fn write(&mut self, bytes: &[u8]);

    /// Sends what was queued, waiting while the client does not read (up to its idle
    /// timeout). An error means the session is over.
    fn flush(&mut self) -> impl Future<Output = Result<(), Closed>> + Send;

    /// Ends the session with `reason`, telling the client when the transport can.
    fn close(&mut self, reason: CloseReason) -> impl Future<Output = ()> + Send;

    /// Ends the session once [`read_into`](Self::read_into) has returned false: answers the
    /// client's close, or tells it why its side was ended.
    fn finish(&mut self) -> impl Future<Output = ()> + Send;
}

/// The session is over; nothing more can be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

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
    fn empty_binary_is_a_bare_prefix() {
        assert_eq!(
            text_only(Payload::Binary(Bytes::new())).as_str(),
            FLASH_BINARY_PREFIX
        );
    }
}
