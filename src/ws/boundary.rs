//! Where a client's byte stream stands between WebSocket frames.
//!
//! A connection may be put to sleep ([`super::hibernate`]) only between messages: with no
//! frame half-read and no fragmented message begun, tungstenite holds nothing that would be
//! lost with it. [`Boundary`] follows the frame headers of the bytes handed to tungstenite
//! (a few comparisons per frame; payloads are skipped, not looked at) to know when that is.

use crate::codec::{HeadBuf, Header, opcode};

/// The frame boundary tracker. Fed every byte given to the WebSocket parser, in order.
#[derive(Debug, Default)]
pub struct Boundary {
    /// Payload bytes of the current frame still to come.
    rest: u64,
    /// A header cut by the end of a piece.
    head: HeadBuf,
    /// A data message sent in fragments has begun and its last fragment has not come.
    fragmented: bool,
}

impl Boundary {
    /// Follows `bytes`, the next bytes of the stream.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.rest > 0 {
                let n = self.rest.min(bytes.len() as u64);
                self.rest -= n;
                bytes = &bytes[n as usize..];
                continue;
            }
            let (header, used) = self.head.take(bytes);
            bytes = &bytes[used..];
            if let Some(header) = header {
                self.frame_started(header);
            }
        }
    }

    /// A whole header: take in what it says.
    fn frame_started(&mut self, header: Header) {
        self.rest = header.len;
        match header.opcode {
            // Text or binary: a message of one frame, or the first of several.
            opcode::TEXT | opcode::BINARY => self.fragmented = !header.fin,
            // A continuation: the last one ends the message.
            opcode::CONTINUATION if header.fin => self.fragmented = false,
            // Control frames may come between fragments and change nothing.
            _ => {}
        }
    }

    /// True between messages: every byte fed belongs to a complete frame, and no message
    /// is waiting for more fragments.
    pub fn at_rest(&self) -> bool {
        self.rest == 0 && !self.head.is_partial() && !self.fragmented
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame of `len` bytes.
    fn frame(fin: bool, opcode: u8, len: usize) -> Vec<u8> {
        crate::codec::client_frame(fin, opcode, &vec![b'x'; len], [1, 2, 3, 4])
    }

    /// Feeds `stream` in pieces of `piece` bytes; returns `at_rest` after each piece.
    fn feed_in_pieces(stream: &[u8], piece: usize) -> (Boundary, Vec<bool>) {
        let mut boundary = Boundary::default();
        let states = stream
            .chunks(piece)
            .map(|p| {
                boundary.feed(p);
                boundary.at_rest()
            })
            .collect();
        (boundary, states)
    }

    #[test]
    fn whole_frames_of_every_length_encoding_end_at_rest() {
        for len in [0, 1, 125, 126, 65535, 65536, 70000] {
            let stream = frame(true, 1, len);
            for piece in [1, 2, 3, 7, 64, stream.len()] {
                let (boundary, states) = feed_in_pieces(&stream, piece);
                assert!(boundary.at_rest(), "len {len}, pieces of {piece}");
                // Never at rest before the last byte.
                assert!(
                    states[..states.len() - 1].iter().all(|&s| !s),
                    "len {len}, pieces of {piece}"
                );
            }
        }
    }

    #[test]
    fn a_frame_cut_anywhere_is_not_at_rest() {
        let stream = [frame(true, 2, 300), frame(true, 1, 5)].concat();
        for cut in 1..stream.len() {
            let mut boundary = Boundary::default();
            boundary.feed(&stream[..cut]);
            let between = cut == frame(true, 2, 300).len();
            assert_eq!(boundary.at_rest(), between, "cut at {cut}");
        }
    }

    #[test]
    fn a_fragmented_message_is_at_rest_only_after_its_last_fragment() {
        let first = frame(false, 1, 10);
        let ping = frame(true, 9, 4);
        let middle = frame(false, 0, 10);
        let last = frame(true, 0, 3);
        let mut boundary = Boundary::default();
        for (part, rest_after) in [
            (&first, false),
            (&ping, false),
            (&middle, false),
            (&last, true),
        ] {
            boundary.feed(part);
            assert_eq!(boundary.at_rest(), rest_after);
        }
    }

    #[test]
    fn many_frames_in_one_piece() {
        let stream: Vec<u8> = (0..100).flat_map(|i| frame(true, 1, i * 13)).collect();
        let (boundary, _) = feed_in_pieces(&stream, 4096);
        assert!(boundary.at_rest());
        let mut cut = Boundary::default();
        cut.feed(&stream[..stream.len() - 1]);
        assert!(!cut.at_rest());
    }
}
