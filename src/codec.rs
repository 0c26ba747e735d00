//! RFC 6455 frames as the gateway writes and parses them by hand (section 5.2): the opcodes,
//! one header parser, the server's unmasked frames, the mask, and masked client frames (the
//! gateway's to an upstream WebSocket server, the tests' and the load generator's). Pure:
//! bytes in, bytes out.
//!
//! Every data frame the gateway sends is written here (sessions queue them on their
//! connection, a room writes them through a sleeper's delivery, a relay on its upstream
//! link), and so are the socket proxy's control frames; tungstenite writes only the control
//! frames of message sessions and upstream links.
//! A binary message for a client that takes text only becomes its text form
//! ([`crate::session::text_only`]).

use bytes::BufMut;

use crate::session::{Payload, text_only};

/// Opcodes (RFC 6455 5.2).
pub mod opcode {
    /// The next fragment of a message.
    pub const CONTINUATION: u8 = 0x0;
    /// A text message (or its first fragment).
    pub const TEXT: u8 = 0x1;
    /// A binary message (or its first fragment).
    pub const BINARY: u8 = 0x2;
    /// Close.
    pub const CLOSE: u8 = 0x8;
    /// Ping.
    pub const PING: u8 = 0x9;
    /// Pong.
    pub const PONG: u8 = 0xa;

    /// True for close, ping and pong.
    pub fn is_control(opcode: u8) -> bool {
        opcode & 0x8 != 0
    }
}

/// The longest header: 2 bytes, an 8-byte length and a 4-byte mask.
pub const MAX_HEAD: usize = 14;

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The last frame of its message.
    pub fin: bool,
    /// The three reserved bits (no extension is spoken: must be 0).
    pub rsv: u8,
    /// The opcode.
    pub opcode: u8,
    /// The payload's length.
    pub len: u64,
    /// The mask, when the frame is masked (every client frame must be).
    pub mask: Option<[u8; 4]>,
}

/// How long the header beginning with `head` is, once its first two bytes are there.
pub fn head_len(head: &[u8]) -> Option<usize> {
    let second = *head.get(1)?;
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    let length = match second & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    Some(2 + length + mask)
}

impl Header {
    /// Parses a whole header: `head` is exactly [`head_len`] bytes.
    pub fn parse(head: &[u8]) -> Header {
        let (len, rest) = match head[1] & 0x7f {
            126 => (
                u64::from(u16::from_be_bytes([head[2], head[3]])),
                &head[4..],
            ),
            127 => {
                let len = u64::from_be_bytes(head[2..10].try_into().expect("8 bytes"));
                (len, &head[10..])
            }
            n => (u64::from(n), &head[2..]),
        };
        Header {
            fin: head[0] & 0x80 != 0,
            rsv: (head[0] >> 4) & 0x7,
            opcode: head[0] & 0x0f,
            len,
            mask: (head[1] & 0x80 != 0).then(|| rest[..4].try_into().expect("4 bytes")),
        }
    }
}

/// A header arriving across reads.
#[derive(Debug, Default)]
pub struct HeadBuf {
    /// The header so far.
    head: [u8; MAX_HEAD],
    /// Bytes of it in `head`.
    have: u8,
}

impl HeadBuf {
    /// Takes a header from the front of `bytes` (completing one cut by the last read):
    /// the header once it is whole, and how many bytes were used.
    pub fn take(&mut self, bytes: &[u8]) -> (Option<Header>, usize) {
        // Most often a whole header is at hand: read it where it is.
        if self.have == 0
            && let Some(need) = head_len(bytes)
            && bytes.len() >= need
        {
            return (Some(Header::parse(&bytes[..need])), need);
        }
        let mut used = 0;
        loop {
            let have = usize::from(self.have);
            // Two bytes tell the header's full length: it may need more than first thought.
            let need = head_len(&self.head[..have]).unwrap_or(2);
            if have == need {
                self.have = 0;
                return (Some(Header::parse(&self.head[..need])), used);
            }
            if used == bytes.len() {
                return (None, used);
            }
            let n = (need - have).min(bytes.len() - used);
            self.head[have..have + n].copy_from_slice(&bytes[used..used + n]);
            self.have += n as u8;
            used += n;
        }
    }

    /// True when part of a header has arrived.
    pub fn is_partial(&self) -> bool {
        self.have != 0
    }
}

/// Unmasks (or masks) `bytes`, the next payload bytes of a frame, a word at a time, and
/// turns `mask` for the bytes after them.
pub fn unmask(mask: &mut [u8; 4], bytes: &mut [u8]) {
    let m = *mask;
    // The mask twice over, as one word (the same in either byte order).
    let half = u64::from(u32::from_ne_bytes(m));
    let word = half | half << 32;
    let mut words = bytes.chunks_exact_mut(8);
    for chunk in &mut words {
        let value = u64::from_ne_bytes(chunk.try_into().expect("8 bytes")) ^ word;
        chunk.copy_from_slice(&value.to_ne_bytes());
    }
    // Whole words keep the mask's phase: the rest starts at m[0].
    for (i, b) in words.into_remainder().iter_mut().enumerate() {
        *b ^= m[i & 3];
    }
    // Turned by the bytes past a whole number of masks: byte k first.
    let turn = 8 * (bytes.len() & 3) as u32;
    *mask = u32::from_le_bytes(m).rotate_right(turn).to_le_bytes();
}

/// Appends `payload` as one frame for a client (`text_only`: one that takes text frames only).
pub fn encode(out: &mut impl BufMut, payload: &Payload, text_only_client: bool) {
    match (payload, text_only_client) {
        (Payload::Text(text), _) => encode_raw(out, opcode::TEXT, text.as_bytes()),
        (Payload::Binary(bytes), false) => encode_raw(out, opcode::BINARY, bytes),
        (binary, true) => encode_raw(out, opcode::TEXT, text_only(binary.clone()).as_bytes()),
    }
}

/// Appends the length bits of a header for `len` (with the mask bit when `masked`).
fn put_len(out: &mut impl BufMut, len: usize, masked: bool) {
    let bit = if masked { 0x80 } else { 0 };
    match len {
        n @ 0..=125 => out.put_u8(bit | n as u8),
        n @ 126..=0xffff => {
            out.put_u8(bit | 126);
            out.put_u16(n as u16);
        }
        n => {
            out.put_u8(bit | 127);
            out.put_u64(n as u64);
        }
    }
}

/// Appends one whole, unmasked frame with `opcode` and `body`.
pub fn encode_raw(out: &mut impl BufMut, opcode: u8, body: &[u8]) {
    out.put_u8(0x80 | opcode);
    put_len(out, body.len(), false);
    out.put_slice(body);
}

/// Appends a close frame with `code` and `reason` (cut to fit: [`crate::session::fit_close_reason`]).
pub fn encode_close(out: &mut impl BufMut, code: u16, reason: &str) {
    let reason = crate::session::fit_close_reason(reason);
    out.put_u8(0x80 | opcode::CLOSE);
    put_len(out, 2 + reason.len(), false);
    out.put_u16(code);
    out.put_slice(reason.as_bytes());
}

/// What is wrong with a close frame's body (RFC 6455 5.5.1, 7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadClose {
    /// One byte: half a code.
    OneByte,
    /// A code no endpoint may send.
    Code,
    /// A reason that is not UTF-8.
    Reason,
}

impl BadClose {
    /// Why, in words.
    pub fn why(self) -> &'static str {
        match self {
            BadClose::OneByte => "a close frame with a one-byte body",
            BadClose::Code => "a close code no endpoint may send",
            BadClose::Reason => "a close reason that is not valid UTF-8",
        }
    }
}

/// The code a close frame's `body` carries, if any, or what is wrong with it.
pub fn close_body(body: &[u8]) -> Result<Option<u16>, BadClose> {
    match body {
        [] => Ok(None),
        [_] => Err(BadClose::OneByte),
        [a, b, reason @ ..] => {
            let code = u16::from_be_bytes([*a, *b]);
            if !crate::session::close_code::may_receive(code) {
                Err(BadClose::Code)
            } else if std::str::from_utf8(reason).is_err() {
                Err(BadClose::Reason)
            } else {
                Ok(Some(code))
            }
        }
    }
}

/// Appends `header` as it reads (lengths in their shortest form): a frame passed on.
pub fn encode_head(out: &mut impl BufMut, header: &Header) {
    out.put_u8(u8::from(header.fin) << 7 | header.rsv << 4 | header.opcode);
    let len = usize::try_from(header.len).unwrap_or(usize::MAX);
    put_len(out, len, header.mask.is_some());
    if let Some(mask) = header.mask {
        out.put_slice(&mask);
    }
}

/// A fresh masking key: 4 bytes from the system's random source, fetched 4 KiB at a time.
pub fn mask_key() -> [u8; 4] {
    thread_local! {
        static KEYS: std::cell::RefCell<([u8; 4096], usize)> =
            const { std::cell::RefCell::new(([0; 4096], 4096)) };
    }
    KEYS.with_borrow_mut(|(keys, used)| {
        if *used == keys.len() {
            getrandom::fill(keys).expect("the system has randomness");
            *used = 0;
        }
        let key = [
            keys[*used],
            keys[*used + 1],
            keys[*used + 2],
            keys[*used + 3],
        ];
        *used += 4;
        key
    })
}

/// Appends a close frame as a client sends it, masked with `mask`: with `code` and its
/// reason (cut to fit, as [`encode_close`] cuts it), or with no body.
pub fn encode_close_masked(out: &mut bytes::BytesMut, code: Option<(u16, &str)>, mask: [u8; 4]) {
    let mut body = Vec::new();
    if let Some((code, reason)) = code {
        body.extend_from_slice(&code.to_be_bytes());
        body.extend_from_slice(crate::session::fit_close_reason(reason).as_bytes());
    }
    encode_masked(out, true, opcode::CLOSE, &body, mask);
}

/// A masked client frame, as clients send them: for tests and the load generator.
pub fn client_frame(fin: bool, opcode: u8, body: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = bytes::BytesMut::with_capacity(body.len() + MAX_HEAD);
    encode_masked(&mut out, fin, opcode, body, mask);
    out.to_vec()
}

/// Appends one frame with `opcode` and `body`, masked with `mask`, as a client sends it.
pub fn encode_masked(out: &mut bytes::BytesMut, fin: bool, opcode: u8, body: &[u8], mask: [u8; 4]) {
    out.put_u8(u8::from(fin) << 7 | opcode);
    put_len(out, body.len(), true);
    out.put_slice(&mask);
    let start = out.len();
    out.extend_from_slice(body);
    unmask(&mut mask.clone(), &mut out[start..]);
}

#[cfg(test)]
mod tests;
