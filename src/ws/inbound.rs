//! A client's frames as one byte stream (the socket proxy's), decoded in place.
//!
//! Binary frames and their continuations are unmasked where they were read and moved to the
//! front of that buffer, so what a client sends reaches the target without a copy or an
//! allocation per message, and a message of any size streams through without being held
//! whole. Message boundaries carry no meaning here: a byte stream is what the proxy relays.
//!
//! Control frames are answered (a ping gets its pong, written to the replies) or end the
//! stream (a close). Anything RFC 6455 forbids, and text, ends it with the close code that
//! says why (1002 protocol error, 1003 text, 1007 a close reason that is not UTF-8).

use crate::codec::{self, HeadBuf, Header, opcode, unmask};
use crate::session::close_code;

/// How the client's side of the stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The client sent a close frame, with its status code if it gave one; it gets the
    /// same code back (RFC 6455 5.5.1).
    Closed(Option<u16>),
    /// The client broke the protocol: the close code to answer with, and why.
    Failed(u16, &'static str),
}

/// What one call of [`Inbound::decode`] found.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded {
    /// Payload bytes now at the front of the buffer.
    pub data: usize,
    /// Set when the stream ended; bytes after the end were not looked at.
    pub end: Option<End>,
}

/// What the frame being read is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Between frames: the next byte starts a header.
    Head,
    /// Binary payload (a first frame or a continuation).
    Data,
    /// A control frame's payload (ping, pong or close), gathered whole.
    Control(u8),
}

/// Where a client's stream of frames stands between reads.
#[derive(Debug)]
pub struct Inbound {
    /// The frame being read.
    kind: Kind,
    /// A header cut by the end of a read.
    head: HeadBuf,
    /// Payload bytes of this frame still to come.
    left: u64,
    /// This frame's mask, turned so that the next payload byte takes `mask[0]`.
    mask: [u8; 4],
    /// A fragmented binary message is open: a continuation may follow, a new message not.
    open: bool,
    /// The payload of a control frame so far (at most 125 bytes; allocated for control
    /// frames only).
    control: Vec<u8>,
}

impl Default for Inbound {
    fn default() -> Self {
        Inbound {
            kind: Kind::Head,
            head: HeadBuf::default(),
            left: 0,
            mask: [0; 4],
            open: false,
            control: Vec::new(),
        }
    }
}

impl Inbound {
    /// Decodes `buf`, bytes just read from the client, in place: the payload of binary
    /// frames is unmasked and moved to the front (`data` bytes of it), and each ping's pong
    /// is appended to `replies`. Stops at the end of the stream.
    pub fn decode(&mut self, buf: &mut [u8], replies: &mut Vec<u8>) -> Decoded {
        let (mut read, mut data) = (0, 0);
        while read < buf.len() {
            match self.kind {
                Kind::Head => match self.header(&buf[read..]) {
                    Ok(used) => read += used,
                    Err(end) => {
                        return Decoded {
                            data,
                            end: Some(end),
                        };
                    }
                },
                Kind::Data => {
                    let n =
                        (buf.len() - read).min(usize::try_from(self.left).unwrap_or(usize::MAX));
                    buf.copy_within(read..read + n, data);
                    unmask(&mut self.mask, &mut buf[data..data + n]);
                    read += n;
                    data += n;
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
                && let Err(end) = self.frame_done(replies)
            {
                return Decoded {
                    data,
                    end: Some(end),
                };
            }
        }
        Decoded { data, end: None }
    }

    /// Reads a header from the front of `bytes` (completing one cut by the last read);
    /// returns how many bytes it took.
    fn header(&mut self, bytes: &[u8]) -> Result<usize, End> {
        let (header, used) = self.head.take(bytes);
        if let Some(header) = header {
            self.start_frame(header)?;
        }
        Ok(used)
    }

    /// Checks a whole header and sets up its frame.
    fn start_frame(&mut self, header: Header) -> Result<(), End> {
        use close_code::{PROTOCOL, UNSUPPORTED};
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
            opcode::TEXT if !self.open => {
                return Err(End::Failed(
                    UNSUPPORTED,
                    "the socket proxy relays binary messages only",
                ));
            }
            opcode::TEXT | opcode::BINARY if self.open => {
                return Err(End::Failed(PROTOCOL, "new message inside a fragmented one"));
            }
            opcode::CONTINUATION | opcode::BINARY => {
                self.open = !fin;
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
        self.mask = mask;
        Ok(())
    }

    /// A frame's payload is complete: answer or end on a control frame.
    fn frame_done(&mut self, replies: &mut Vec<u8>) -> Result<(), End> {
        let kind = std::mem::replace(&mut self.kind, Kind::Head);
        let body = std::mem::take(&mut self.control);
        match kind {
            Kind::Control(opcode::PING) => codec::encode_raw(replies, opcode::PONG, &body),
            Kind::Control(opcode::CLOSE) => return Err(close_end(&body)),
            _ => {} // data, or a pong
        }
        Ok(())
    }
}

/// What a close frame's body says (RFC 6455 5.5.1, 7.4).
fn close_end(body: &[u8]) -> End {
    match body {
        [] => End::Closed(None),
        [_] => End::Failed(close_code::PROTOCOL, "close frame with a one-byte body"),
        [a, b, reason @ ..] => {
            let code = u16::from_be_bytes([*a, *b]);
            if !close_code::may_receive(code) {
                End::Failed(close_code::PROTOCOL, "close code not allowed")
            } else if std::str::from_utf8(reason).is_err() {
                End::Failed(close_code::INVALID, "close reason is not valid UTF-8")
            } else {
                End::Closed(Some(code))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame: `opcode`, `fin`, masked with a fixed mask.
    fn frame(fin: bool, opcode: u8, body: &[u8]) -> Vec<u8> {
        codec::client_frame(fin, opcode, body, [0x37, 0xfa, 0x21, 0x3d])
    }

    /// Decodes `wire` cut into pieces of `piece` bytes: the payload, the replies, the end.
    fn decode_in_pieces(wire: &[u8], piece: usize) -> (Vec<u8>, Vec<u8>, Option<End>) {
        let (mut inbound, mut data, mut replies) = (Inbound::default(), Vec::new(), Vec::new());
        for chunk in wire.chunks(piece) {
            let mut buf = chunk.to_vec();
            let got = inbound.decode(&mut buf, &mut replies);
            data.extend_from_slice(&buf[..got.data]);
            if got.end.is_some() {
                return (data, replies, got.end);
            }
        }
        (data, replies, None)
    }

    fn bytes(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn frames_of_every_length_encoding_arrive_whole_however_they_are_cut() {
        let bodies = [
            bytes(0),
            bytes(1),
            bytes(125),
            bytes(126),
            bytes(65535),
            bytes(65536),
        ];
        let wire: Vec<u8> = bodies.iter().flat_map(|b| frame(true, 2, b)).collect();
        let all: Vec<u8> = bodies.concat();
        for piece in [1, 2, 3, 5, 13, 14, 1000, wire.len()] {
            let (data, replies, end) = decode_in_pieces(&wire, piece);
            assert!(data == all, "cut into {piece}-byte pieces");
            assert_eq!((replies.len(), end), (0, None));
        }
    }

    #[test]
    fn fragments_and_pings_between_them_keep_the_bytes_in_order() {
        let mut wire = frame(false, 2, b"hello ");
        wire.extend(frame(true, 9, b"are you there"));
        wire.extend(frame(false, 0, b"wide "));
        wire.extend(frame(true, 0xa, b""));
        wire.extend(frame(true, 0, b"world"));
        wire.extend(frame(true, 2, b"!"));
        for piece in [1, 4, 7, wire.len()] {
            let (data, replies, end) = decode_in_pieces(&wire, piece);
            assert_eq!(data, b"hello wide world!");
            assert_eq!(replies, [&[0x8a, 13][..], b"are you there"].concat());
            assert_eq!(end, None);
        }
    }

    #[test]
    fn a_close_ends_the_stream_and_nothing_after_it_is_read() {
        let mut wire = frame(true, 2, b"last");
        wire.extend(frame(
            true,
            8,
            &[&1000u16.to_be_bytes()[..], b"bye"].concat(),
        ));
        wire.extend(frame(true, 2, b"ignored"));
        assert_eq!(
            decode_in_pieces(&wire, wire.len()),
            (b"last".to_vec(), vec![], Some(End::Closed(Some(1000))))
        );
        let bare = frame(true, 8, b"");
        assert_eq!(decode_in_pieces(&bare, 1).2, Some(End::Closed(None)));
    }

    #[test]
    fn what_the_protocol_forbids_ends_with_the_code_that_says_why() {
        let unmasked = vec![0x82, 1, b'x'];
        let mut reserved = frame(true, 2, b"x");
        reserved[0] |= 0x40;
        let mut in_message = frame(false, 2, b"a");
        in_message.extend(frame(true, 2, b"b"));
        let long_ping = frame(true, 9, &[0; 126]);
        let cases: [(Vec<u8>, u16); 10] = [
            (unmasked, 1002),
            (reserved, 1002),
            (frame(true, 0, b"x"), 1002),
            (frame(true, 1, b"text"), 1003),
            (in_message, 1002),
            (frame(false, 9, b""), 1002),
            (long_ping, 1002),
            (frame(true, 3, b""), 1002),
            (frame(true, 8, &[3, 0xe8, 0xff]), 1007),
            (frame(true, 8, &1005u16.to_be_bytes()), 1002),
        ];
        for (wire, code) in cases {
            match decode_in_pieces(&wire, 1).2 {
                Some(End::Failed(got, _)) => assert_eq!(got, code, "{wire:x?}"),
                other => panic!("{wire:x?}: {other:?}"),
            }
        }
    }
}
