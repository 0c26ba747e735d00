//! hixie-76 framing: decoding what a client sends, over a byte buffer, and encoding what it
//! is sent. Pure: no I/O.
//!
//! What the draft says (draft-ietf-hybi-thewebsocketprotocol-00, sections 4.2 and 5.3):
//!
//! - A frame starts with its type byte. With the high bit clear (`0x00`-`0x7F`) the data
//!   runs up to a `0xFF` byte: type `0x00` is a text message, UTF-8; any other type's data is
//!   discarded.
//! - With the high bit set (`0x80`-`0xFF`), a length follows, in 7-bit groups, most
//!   significant first, each byte but the last with its high bit set; then that many bytes,
//!   discarded. Type `0xFF` with length 0 (`0xFF 0x00`) is the closing handshake.
//! - There are no pings, no binary messages and no close codes.
//!
//! What flashgate adds: text that is not UTF-8 is an error (the draft would replace it; an
//! RFC 6455 client gets 1007 for it), and no frame's data may pass the largest message
//! accepted, which is checked while the data is scanned, before more is read.

use std::ops::Range;

use bytes::BufMut;

/// The closing handshake, both ways.
pub const CLOSE: [u8; 2] = [0xFF, 0x00];

/// What the next frame is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// More bytes are needed.
    Incomplete,
    /// A text message: its UTF-8 bytes are at this range of the buffer.
    Text(Range<usize>),
    /// The client's closing handshake.
    Close,
}

/// A decoding step: a frame, and how many bytes at the buffer's start the caller drops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// Bytes done with: the frame's, or what was discarded on the way to it.
    pub consumed: usize,
    /// What was found.
    pub frame: Frame,
}

/// Why a client's frames cannot be read on: the connection ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// A frame's data would pass the largest message accepted.
    TooLarge,
    /// A text message that is not UTF-8.
    NotUtf8,
}

impl FrameError {
    /// Why, for the log.
    pub fn reason(self) -> &'static str {
        match self {
            FrameError::TooLarge => "a frame larger than --max-message-size",
            FrameError::NotUtf8 => "a text message that is not UTF-8",
        }
    }
}

/// Where the decoder stands between calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Before a frame's type byte.
    Start,
    /// In a text message; the buffer starts at its `0x00`. `scanned` data bytes hold no
    /// `0xFF` (so they are not scanned again).
    Text { scanned: usize },
    /// In the data of a frame discarded up to `0xFF`; `seen` bytes so far.
    Sentinel { seen: usize },
    /// Reading a length-prefixed frame's length; `length` so far.
    Length { kind: u8, length: usize },
    /// Discarding `left` more bytes of a length-prefixed frame.
    Skip { left: usize },
    /// The closing handshake was read: nothing more is decoded.
    Closed,
}

/// A client's frames, decoded from a buffer the caller fills and drains.
#[derive(Clone, Debug)]
pub struct Decoder {
    /// Where it stands.
    state: State,
    /// The most data a frame may have.
    max: usize,
}

impl Decoder {
    /// A decoder of frames whose data is at most `max` bytes.
    pub fn new(max: usize) -> Decoder {
        Decoder {
            state: State::Start,
            max,
        }
    }

    /// True when no frame is begun: the connection may sleep without losing a byte.
    pub fn at_rest(&self) -> bool {
        self.state == State::Start
    }

    /// The next frame in `buf`, which starts where the last call's `consumed` ended. Each
    /// call goes on from where the last one stopped: on [`Frame::Incomplete`] give the same
    /// bytes (less `consumed`) and more.
    pub fn decode(&mut self, buf: &[u8]) -> Result<Decoded, FrameError> {
        let mut at = 0;
        loop {
            let rest = &buf[at..];
            let done = |consumed, frame| Ok(Decoded { consumed, frame });
            match self.state {
                State::Closed => return done(at, Frame::Close),
                State::Start => {
                    let Some(&kind) = rest.first() else {
                        return done(at, Frame::Incomplete);
                    };
                    self.state = match kind {
                        0x00 => State::Text { scanned: 0 },
                        0x01..=0x7F => State::Sentinel { seen: 0 },
                        _ => State::Length { kind, length: 0 },
                    };
                    if kind != 0x00 {
                        at += 1;
                    }
                }
                State::Text { scanned } => {
                    let data = &rest[1..];
                    match memchr::memchr(0xFF, &data[scanned..]) {
                        Some(i) => {
                            let end = scanned + i;
                            if end > self.max {
                                return Err(FrameError::TooLarge);
                            }
                            if std::str::from_utf8(&data[..end]).is_err() {
                                return Err(FrameError::NotUtf8);
                            }
                            self.state = State::Start;
                            return done(at + end + 2, Frame::Text(at + 1..at + 1 + end));
                        }
                        None if data.len() > self.max => return Err(FrameError::TooLarge),
                        None => {
                            self.state = State::Text {
                                scanned: data.len(),
                            };
                            return done(at, Frame::Incomplete);
                        }
                    }
                }
                State::Sentinel { seen } => match memchr::memchr(0xFF, rest) {
                    Some(i) if seen + i <= self.max => {
                        at += i + 1;
                        self.state = State::Start;
                    }
                    None if seen + rest.len() <= self.max => {
                        self.state = State::Sentinel {
                            seen: seen + rest.len(),
                        };
                        return done(buf.len(), Frame::Incomplete);
                    }
                    _ => return Err(FrameError::TooLarge),
                },
                State::Length { kind, length } => {
                    let Some(&b) = rest.first() else {
                        return done(at, Frame::Incomplete);
                    };
                    at += 1;
                    let length = length
                        .checked_mul(128)
                        .map(|l| l + usize::from(b & 0x7F))
                        .filter(|&l| l <= self.max)
                        .ok_or(FrameError::TooLarge)?;
                    self.state = match (b & 0x80 != 0, kind, length) {
                        (true, _, _) => State::Length { kind, length },
                        (false, 0xFF, 0) => {
                            self.state = State::Closed;
                            return done(at, Frame::Close);
                        }
                        (false, _, _) => State::Skip { left: length },
                    };
                }
                State::Skip { left } => {
                    let n = left.min(rest.len());
                    at += n;
                    if n < left {
                        self.state = State::Skip { left: left - n };
                        return done(at, Frame::Incomplete);
                    }
                    self.state = State::Start;
                }
            }
        }
    }
}

/// Appends `text` as one text frame.
pub fn encode_text(out: &mut impl BufMut, text: &str) {
    out.put_u8(0x00);
    out.put_slice(text.as_bytes());
    out.put_u8(0xFF);
}

/// Appends the closing handshake.
pub fn encode_close(out: &mut impl BufMut) {
    out.put_slice(&CLOSE);
}

#[cfg(test)]
mod tests;
