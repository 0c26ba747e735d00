//! A WebSocket server's frames on their way to a client that speaks RFC 6455 too (a relay
//! that passes frames as they are, [`Intake::frames`](crate::session::Intake)), checked as
//! they pass.
//!
//! Each data frame's header is passed on as soon as it is whole, then its payload as it
//! comes, so a message of any size streams; a control frame is gathered whole (at most 125
//! bytes) and passed on then. What a client could not take from a server ends the stream
//! before the offending frame: reserved bits (no extension is agreed), a masked frame,
//! fragments out of order, a bad control frame, a message over the route's largest, a bad
//! close frame, anything after the close. Text is not checked as UTF-8: the client checks
//! what it is sent.
//!
//! The stream's state tells the transport where it may put frames of its own (a ping, its
//! close): only between the server's frames ([`Outbound::at_boundary`]).

use bytes::BytesMut;

use crate::codec::{self, HeadBuf, Header, opcode};

/// What the frame being passed is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Between frames: the next byte starts a header.
    Head,
    /// Payload of a data frame, passed as it comes.
    Data,
    /// A control frame's payload, gathered whole.
    Control(u8),
    /// The server's close frame has passed: nothing may follow.
    Closed,
}

/// Where a server's stream of frames stands between reads.
#[derive(Debug)]
pub struct Outbound {
    /// The frame being passed.
    kind: Kind,
    /// A header cut by the end of a read.
    head: HeadBuf,
    /// Payload bytes of this frame still to come.
    left: u64,
    /// A fragmented message is open.
    open: bool,
    /// The message's bytes so far.
    size: u64,
    /// The largest message passed.
    max: u64,
    /// A control frame's payload so far.
    control: Vec<u8>,
    /// The code of the server's close frame, once passed (if it gave one).
    code: Option<u16>,
    /// Data messages begun, and the payload bytes of their frames, counted at each header.
    counted: (u64, u64),
}

impl Outbound {
    /// A stream whose messages may be up to `max` bytes.
    pub fn new(max: u64) -> Outbound {
        Outbound {
            kind: Kind::Head,
            head: HeadBuf::default(),
            left: 0,
            open: false,
            size: 0,
            max,
            control: Vec::new(),
            code: None,
            counted: (0, 0),
        }
    }

    /// True when what was passed so far ends between frames: the transport may add its own.
    pub fn at_boundary(&self) -> bool {
        self.kind != Kind::Data
    }

    /// True once the server's close frame has passed.
    pub fn closed(&self) -> bool {
        self.kind == Kind::Closed
    }

    /// Data messages begun so far, and their payload bytes.
    pub fn counted(&self) -> (u64, u64) {
        self.counted
    }

    /// The code of the server's close frame, once passed, if it gave one: what a reply to
    /// it carries (RFC 6455 5.5.1).
    pub fn close_code(&self) -> Option<u16> {
        self.code
    }

    /// Appends to `out` what of `bytes` (the server's next bytes) passes; `Err` says why the
    /// rest cannot, and everything before the offending frame is in `out`.
    pub fn pass(&mut self, mut bytes: &[u8], out: &mut BytesMut) -> Result<(), &'static str> {
        while !bytes.is_empty() {
            match self.kind {
                Kind::Closed => return Err("frames after its close frame"),
                Kind::Head => {
                    let (header, used) = self.head.take(bytes);
                    bytes = &bytes[used..];
                    let Some(header) = header else { break };
                    self.start_frame(&header)?;
                    if self.kind == Kind::Data {
                        codec::encode_head(out, &header);
                    }
                }
                Kind::Data => {
                    let n = bytes
                        .len()
                        .min(usize::try_from(self.left).unwrap_or(usize::MAX));
                    out.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                    self.left -= n as u64;
                }
                Kind::Control(_) => {
                    let n = bytes.len().min(self.left as usize);
                    self.control.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                    self.left -= n as u64;
                }
            }
            if self.left == 0 {
                self.frame_done(out)?;
            }
        }
        Ok(())
    }

    /// Checks a whole header and sets up its frame.
    fn start_frame(&mut self, header: &Header) -> Result<(), &'static str> {
        let (fin, opcode, len) = (header.fin, header.opcode, header.len);
        if header.rsv != 0 {
            return Err("reserved bits set, and no extension was agreed");
        }
        if header.mask.is_some() {
            return Err("a masked frame: a server's frames must not be");
        }
        if len >> 63 != 0 {
            return Err("a frame length out of range");
        }
        self.kind = match opcode {
            opcode::CONTINUATION if !self.open => return Err("a continuation without a message"),
            opcode::TEXT | opcode::BINARY if self.open => {
                return Err("a new message inside a fragmented one");
            }
            opcode::CONTINUATION | opcode::TEXT | opcode::BINARY => {
                if opcode != opcode::CONTINUATION {
                    self.size = 0;
                    self.counted.0 += 1;
                }
                self.counted.1 = self.counted.1.saturating_add(len);
                self.size = self.size.saturating_add(len);
                if self.size > self.max {
                    return Err("a message over the largest size");
                }
                self.open = !fin;
                Kind::Data
            }
            op if opcode::is_control(op) && (!fin || len > 125) => {
                return Err("a fragmented or too long control frame");
            }
            opcode::CLOSE | opcode::PING | opcode::PONG => Kind::Control(opcode),
            _ => return Err("an unknown opcode"),
        };
        self.left = len;
        Ok(())
    }

    /// A frame's payload is complete: a control frame is checked and passed on.
    fn frame_done(&mut self, out: &mut BytesMut) -> Result<(), &'static str> {
        let kind = std::mem::replace(&mut self.kind, Kind::Head);
        let Kind::Control(op) = kind else {
            return Ok(());
        };
        if op == opcode::CLOSE {
            self.code = codec::close_body(&self.control).map_err(codec::BadClose::why)?;
            self.kind = Kind::Closed;
        }
        codec::encode_raw(out, op, &self.control);
        self.control = Vec::new();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
