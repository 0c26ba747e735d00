//! Where a client's byte stream stands between WebSocket frames.
//!
//! A connection may be put to sleep ([`super::hibernate`]) only between messages: with no
//! frame half-read and no fragmented message begun, tungstenite holds nothing that would be
//! lost with it. [`Boundary`] follows the frame headers of the bytes handed to tungstenite
//! (a few comparisons per frame; payloads are skipped, not looked at) to know when that is.

/// The frame boundary tracker. Fed every byte given to the WebSocket parser, in order.
#[derive(Debug, Default)]
pub struct Boundary {
    /// Payload bytes of the current frame still to come.
    rest: u64,
    /// The header read so far (at most 14 bytes: 2, an 8-byte length, a 4-byte mask).
    head: [u8; 14],
    /// Bytes in `head`.
    have: u8,
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
            // Most often a whole header is at hand: read it where it is.
            if self.have == 0 {
                let need = header_len(bytes);
                if bytes.len() >= need {
                    self.frame_started(&bytes[..need]);
                    bytes = &bytes[need..];
                    continue;
                }
            }
            let need = header_len(&self.head[..self.have as usize]);
            let have = self.have as usize;
            let take = (need - have).min(bytes.len());
            self.head[have..have + take].copy_from_slice(&bytes[..take]);
            self.have += take as u8;
            bytes = &bytes[take..];
            // Two bytes tell the header's full length: it may need more than first thought.
            let have = self.have as usize;
            if have == header_len(&self.head[..have]) {
                let head = self.head;
                self.frame_started(&head[..have]);
            }
        }
    }

    /// `head` is a whole header: take in what it says.
    fn frame_started(&mut self, head: &[u8]) {
        let fin = head[0] & 0x80 != 0;
        let opcode = head[0] & 0x0f;
        self.rest = match head[1] & 0x7f {
            126 => u64::from(u16::from_be_bytes([head[2], head[3]])),
            127 => u64::from_be_bytes(head[2..10].try_into().expect("8 bytes")),
            n => u64::from(n),
        };
        match opcode {
            // Text or binary: a message of one frame, or the first of several.
            1 | 2 => self.fragmented = !fin,
            // A continuation: the last one ends the message.
            0 if fin => self.fragmented = false,
            // Control frames may come between fragments and change nothing.
            _ => {}
        }
        self.have = 0;
    }

    /// True between messages: every byte fed belongs to a complete frame, and no message
    /// is waiting for more fragments.
    pub fn at_rest(&self) -> bool {
        self.rest == 0 && self.have == 0 && !self.fragmented
    }
}

/// The length of the header that begins with `head` (2 until the second byte is known).
fn header_len(head: &[u8]) -> usize {
    let Some(&second) = head.get(1) else {
        return 2;
    };
    let length = match second & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    2 + length + mask
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame (the mask is zero, which changes nothing here).
    fn frame(fin: bool, opcode: u8, len: usize) -> Vec<u8> {
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        match len {
            0..=125 => out.push(0x80 | len as u8),
            126..=0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&[0; 4]);
        out.extend(std::iter::repeat_n(b'x', len));
        out
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
