//! The common case, read at once: small data frames that each hold a whole message and
//! arrive whole in one read (a chat line, a game's move, a relayed echo). They are taken
//! a frame at a time without the state machine's steps, and leave the stream exactly where
//! the general path would. Anything else (a cut frame, a fragment, a control frame, a
//! frame the intake refuses or RFC 6455 forbids) is left to the general path, which
//! decides it and says why.

use bytes::BytesMut;

use super::{Inbound, Kind};
use crate::codec::{opcode, unmask};
use crate::session::Intake;

/// The first byte of a final, unreserved frame of `opcode`.
const fn first(opcode: u8) -> u8 {
    0x80 | opcode
}

impl Inbound {
    /// Takes whole messages, each one frame read whole, from the front of `buf` (between
    /// frames, no message open): unmasked and appended to `out` as the general path would
    /// (with its NUL, when the intake says so), or kept as they came for frames passed on.
    /// Returns how many bytes it took; it stops at the first frame it cannot take so.
    pub(super) fn whole_frames(&mut self, buf: &mut [u8], out: &mut BytesMut) -> usize {
        debug_assert!(self.kind == Kind::Head && !self.head.is_partial() && !self.open);
        // The intake and the counts in locals: nothing is written back per frame.
        let Intake {
            text: takes_text,
            nul_ended,
            max_message,
            frames,
        } = self.intake;
        let (mut read, mut messages, mut bytes) = (0, 0, 0);
        // The last frame taken: the state a frame leaves for the general path.
        let mut last = None;
        // Room for every payload of the read at once: one reservation, not one a frame.
        out.reserve(buf.len());
        while let [b0, b1, ..] = buf[read..] {
            let text = match b0 {
                b if b == first(opcode::BINARY) => false,
                b if b == first(opcode::TEXT) && takes_text => true,
                _ => break,
            };
            // Masked, and a length that fits in the header's first two bytes or the next
            // two (written shortest, as it is passed on so).
            let (len, at) = match b1 {
                0x80..=0xfd => (usize::from(b1 & 0x7f), 2),
                0xfe => match buf.get(read + 2..read + 4) {
                    Some(&[hi, lo]) if u16::from_be_bytes([hi, lo]) >= 126 => {
                        (usize::from(u16::from_be_bytes([hi, lo])), 4)
                    }
                    _ => break,
                },
                _ => break,
            };
            let head = at + 4;
            if buf.len() - read < head + len || len as u64 > max_message {
                break;
            }
            let frame = &mut buf[read..read + head + len];
            let (header, payload) = frame.split_at_mut(head);
            let mask: [u8; 4] = header[at..].try_into().expect("4 bytes");
            if frames {
                if text {
                    // Checked on an unmasked copy: the frame passes masked, as it came.
                    let mut plain = [0u8; 125];
                    let Some(plain) = plain.get_mut(..len) else {
                        break;
                    };
                    plain.copy_from_slice(payload);
                    unmask(&mut { mask }, plain);
                    if std::str::from_utf8(plain).is_err() {
                        break;
                    }
                }
                out.extend_from_slice(header);
                out.extend_from_slice(payload);
            } else {
                unmask(&mut { mask }, payload);
                let refused = (text && std::str::from_utf8(payload).is_err())
                    || (nul_ended && memchr::memchr(0, payload).is_some());
                if refused {
                    // Masked again, for the general path to read and refuse.
                    unmask(&mut { mask }, payload);
                    break;
                }
                out.extend_from_slice(payload);
                if nul_ended {
                    out.extend_from_slice(&[0]);
                }
            }
            (messages, bytes) = (messages + 1, bytes + len as u64);
            last = Some((text, len as u64, mask));
            read += head + len;
        }
        if let Some((text, len, mask)) = last {
            (self.text, self.size, self.fin) = (text, len, true);
            (self.mask, self.key) = (mask, mask);
            self.counted = (self.counted.0 + messages, self.counted.1 + bytes);
        }
        read
    }
}
