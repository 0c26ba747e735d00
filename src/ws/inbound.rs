//! A client's frames as one byte stream (the socket proxy's, a TCP relay's), decoded as they
//! are read.
//!
//! The payload of data frames is unmasked where it was read and appended to the caller's
//! stream, so what a client sends reaches the server without an allocation per message,
//! and a message of any size streams through without being held whole. What the stream
//! takes is the service's [`Intake`]: binary only (the socket proxy), or text as well (its
//! UTF-8 checked as it streams, [`utf8`]); each message followed by a NUL (XMLSocket);
//! messages up to a size.
//!
//! Control frames are answered (a ping gets its pong, written to the replies) or end the
//! stream (a close). A stream of frames ([`Intake::frames`], for a WebSocket server) is
//! checked the same way but keeps the client's frames as they came: each data frame's
//! header, then its payload still masked (text unmasked in the read buffer only to check
//! its UTF-8), and control frames whole, the server's to answer. Anything RFC 6455 forbids, and what the intake refuses, ends it with
//! the close code that says why (1002 protocol error, 1003 a kind of data not taken, 1007
//! text that is not UTF-8, 1009 a message too large).

mod utf8;
mod whole;

use bytes::BytesMut;

use crate::codec::{self, BadClose, HeadBuf, Header, opcode, unmask};
use crate::session::{Intake, close_code};
use utf8::Utf8Stream;

/// How the client's side of the stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The client sent a close frame, with its status code if it gave one; it gets the
    /// same code back (RFC 6455 5.5.1).
    Closed(Option<u16>),
    /// The client broke the protocol: the close code to answer with, and why.
    Failed(u16, &'static str),
}

/// What the frame being read is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Between frames: the next byte starts a header.
    Head,
    /// Payload of a data frame (a first frame or a continuation).
    Data,
    /// A control frame's payload (ping, pong or close), gathered whole.
    Control(u8),
}

/// Where a client's stream of frames stands between reads.
#[derive(Debug)]
pub struct Inbound {
    /// What the stream takes.
    intake: Intake,
    /// The frame being read.
    kind: Kind,
    /// A header cut by the end of a read.
    head: HeadBuf,
    /// Payload bytes of this frame still to come.
    left: u64,
    /// This frame's mask, turned so that the next payload byte takes `mask[0]`.
    mask: [u8; 4],
    /// This frame's mask as it came (frames passed on keep it).
    key: [u8; 4],
    /// Where this frame starts in the stream, when it started in this read (frames passed
    /// on): a frame refused by its payload is taken back, and the stream ends whole.
    start: Option<usize>,
    /// A fragmented message is open: a continuation may follow, a new message not.
    open: bool,
    /// The data frame being read ends its message.
    fin: bool,
    /// The message being read is text.
    text: bool,
    /// Its bytes so far, frames read whole included.
    size: u64,
    /// Its UTF-8, when text.
    utf8: Utf8Stream,
    /// The payload of a control frame so far (at most 125 bytes; allocated for control
    /// frames only).
    control: Vec<u8>,
    /// Data messages begun, and the payload bytes of their frames, counted at each header.
    counted: (u64, u64),
}

impl Default for Inbound {
    fn default() -> Self {
        Inbound::new(Intake::default())
    }
}

impl Inbound {
    /// A stream that takes what `intake` says.
    pub fn new(intake: Intake) -> Inbound {
        Inbound {
            intake,
            kind: Kind::Head,
            head: HeadBuf::default(),
            left: 0,
            mask: [0; 4],
            key: [0; 4],
            start: None,
            open: false,
            fin: false,
            text: false,
            size: 0,
            utf8: Utf8Stream::default(),
            control: Vec::new(),
            counted: (0, 0),
        }
    }

    /// Data messages begun so far, and their payload bytes (a refused frame's included).
    pub fn counted(&self) -> (u64, u64) {
        self.counted
    }

    /// Decodes `buf`, bytes just read from the client: the payload of data frames is
    /// unmasked (in `buf`) and appended to `out` (each message followed by a NUL when the
    /// intake says so), and each ping's pong is appended to `replies`. Stops at the end of
    /// the stream, which it returns.
    pub fn decode(
        &mut self,
        buf: &mut [u8],
        out: &mut BytesMut,
        replies: &mut Vec<u8>,
    ) -> Option<End> {
        let mut read = 0;
        self.start = None;
        while read < buf.len() {
            if self.kind == Kind::Head && !self.head.is_partial() && !self.open {
                read += self.whole_frames(&mut buf[read..], out);
                if read == buf.len() {
                    break;
                }
            }
            match self.kind {
                Kind::Head => match self.header(&buf[read..], out) {
                    Ok(used) => read += used,
                    Err(end) => return Some(end),
                },
                Kind::Data => {
                    let n =
                        (buf.len() - read).min(usize::try_from(self.left).unwrap_or(usize::MAX));
                    let piece = &mut buf[read..read + n];
                    let at = out.len();
                    if self.intake.frames {
                        // Passed on masked, as it came; text unmasked here only to be checked.
                        out.extend_from_slice(piece);
                        if self.text {
                            unmask(&mut self.mask, piece);
                        }
                    } else {
                        unmask(&mut self.mask, piece);
                    }
                    if let Err(end) = self.check(piece) {
                        out.truncate(at);
                        self.take_back(out);
                        return Some(end);
                    }
                    if !self.intake.frames {
                        out.extend_from_slice(piece);
                    }
                    read += n;
                    self.left -= n as u64;
                }
                Kind::Control(_) => {
                    let n = (buf.len() - read).min(self.left as usize);
                    let start = self.control.len();
                    self.control.extend_from_slice(&buf[read..read + n]);
                    unmask(&mut self.mask, &mut self.control[start..]);
                    read += n;
                    self.left -= n as u64;
                }
            }
            if self.kind != Kind::Head
                && self.left == 0
                && let Err(end) = self.frame_done(out, replies)
            {
                return Some(end);
            }
        }
        None
    }

    /// Checks a piece of a message's payload against the intake.
    fn check(&mut self, piece: &[u8]) -> Result<(), End> {
        // Whichever comes first, as if the bytes came one by one: text that cannot be
        // UTF-8 up to and with the first NUL, or the NUL. (Frames passed on keep their
        // masks: there is no NUL rule for them.)
        let nul = match self.intake.nul_ended && !self.intake.frames {
            true => memchr::memchr(0, piece),
            false => None,
        };
        let upto = nul.map_or(piece.len(), |at| at + 1);
        if self.text && self.utf8.feed(&piece[..upto]).is_err() {
            return Err(End::Failed(close_code::INVALID, "text that is not UTF-8"));
        }
        if nul.is_some() {
            return Err(End::Failed(
                close_code::UNSUPPORTED,
                "a message with a NUL byte: XMLSocket would read it as two",
            ));
        }
        Ok(())
    }

    /// Reads a header from the front of `bytes` (completing one cut by the last read);
    /// returns how many bytes it took.
    fn header(&mut self, bytes: &[u8], out: &mut BytesMut) -> Result<usize, End> {
        let (header, used) = self.head.take(bytes);
        if let Some(header) = header {
            self.start_frame(header)?;
            // A data frame's header is passed on once checked; a control frame whole.
            if self.intake.frames && self.kind == Kind::Data {
                self.start = Some(out.len());
                codec::encode_head(out, &header);
            }
        }
        Ok(used)
    }

    /// Frames passed on: takes the refused frame back out of `out` when all of it that was
    /// passed is there, so that the stream ends between frames. (Of a frame begun in an
    /// earlier read, the piece that failed is never passed.)
    fn take_back(&mut self, out: &mut BytesMut) {
        if let Some(start) = self.start.take() {
            out.truncate(start);
            self.kind = Kind::Head;
        }
    }

    /// True between frames: a stream of frames ends here whole
    /// ([`Intake::frames`](crate::session::Intake)).
    pub fn at_boundary(&self) -> bool {
        // A control frame is passed on only once whole.
        self.kind != Kind::Data
    }

    /// Checks a whole header and sets up its frame.
    fn start_frame(&mut self, header: Header) -> Result<(), End> {
        use close_code::{PROTOCOL, TOO_BIG, UNSUPPORTED};
        let Header {
            fin,
            rsv,
            opcode,
            len,
            mask,
        } = header;
        if rsv != 0 {
            return Err(End::Failed(PROTOCOL, "reserved bits set"));
        }
        let Some(mask) = mask else {
            return Err(End::Failed(PROTOCOL, "client frames must be masked"));
        };
        if len >> 63 != 0 {
            return Err(End::Failed(PROTOCOL, "frame length out of range"));
        }
        self.kind = match opcode {
            opcode::CONTINUATION if !self.open => {
                return Err(End::Failed(PROTOCOL, "continuation without a message"));
            }
            opcode::TEXT | opcode::BINARY if self.open => {
                return Err(End::Failed(PROTOCOL, "new message inside a fragmented one"));
            }
            opcode::TEXT if !self.intake.text => {
                return Err(End::Failed(
                    UNSUPPORTED,
                    "the socket proxy relays binary messages only",
                ));
            }
            opcode::CONTINUATION | opcode::TEXT | opcode::BINARY => {
                if opcode != opcode::CONTINUATION {
                    (self.text, self.size) = (opcode == opcode::TEXT, 0);
                    self.counted.0 += 1;
                }
                self.counted.1 = self.counted.1.saturating_add(len);
                self.size = self.size.saturating_add(len);
                if self.size > self.intake.max_message {
                    return Err(End::Failed(TOO_BIG, "message too large"));
                }
                (self.open, self.fin) = (!fin, fin);
                Kind::Data
            }
            op if opcode::is_control(op) && !fin => {
                return Err(End::Failed(PROTOCOL, "fragmented control frame"));
            }
            op if opcode::is_control(op) && len > 125 => {
                return Err(End::Failed(PROTOCOL, "control frame too long"));
            }
            opcode::CLOSE | opcode::PING | opcode::PONG => Kind::Control(opcode),
            _ => return Err(End::Failed(PROTOCOL, "unknown opcode")),
        };
        self.left = len;
        (self.mask, self.key) = (mask, mask);
        Ok(())
    }

    /// A frame's payload is complete: end its message, or answer or end on a control frame.
    fn frame_done(&mut self, out: &mut BytesMut, replies: &mut Vec<u8>) -> Result<(), End> {
        let kind = std::mem::replace(&mut self.kind, Kind::Head);
        let body = std::mem::take(&mut self.control);
        match kind {
            Kind::Data if self.fin => {
                if self.text && self.utf8.end().is_err() {
                    self.take_back(out);
                    return Err(End::Failed(close_code::INVALID, "text that is not UTF-8"));
                }
                // (Frames passed on are the server's to tell apart: no NUL between them.)
                if self.intake.nul_ended && !self.intake.frames {
                    out.extend_from_slice(&[0]);
                }
            }
            Kind::Control(opcode::CLOSE) => {
                let end = close_end(&body);
                if self.intake.frames && matches!(end, End::Closed(_)) {
                    codec::encode_masked(out, true, opcode::CLOSE, &body, self.key);
                }
                return Err(end);
            }
            // The server answers pings (and hears pongs) when the frames are its.
            Kind::Control(op) if self.intake.frames => {
                codec::encode_masked(out, true, op, &body, self.key)
            }
            Kind::Control(opcode::PING) => codec::encode_raw(replies, opcode::PONG, &body),
            _ => {} // a data frame that continues, or a pong
        }
        Ok(())
    }
}

/// What a close frame's body says (RFC 6455 5.5.1, 7.4).
fn close_end(body: &[u8]) -> End {
    match codec::close_body(body) {
        Ok(code) => End::Closed(code),
        Err(bad @ BadClose::Reason) => End::Failed(close_code::INVALID, bad.why()),
        Err(bad) => End::Failed(close_code::PROTOCOL, bad.why()),
    }
}

#[cfg(test)]
mod tests;
