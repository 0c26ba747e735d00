//! Flash `XMLSocket` framing, pure: what an XMLSocket server writes is a stream of messages,
//! each ended by a NUL byte; each message a client sends it is written the same way.
//!
//! A relay to an XMLSocket server turns each NUL-ended piece into one text message for the
//! client, and each client message into one NUL-ended write. A piece longer than the largest
//! message accepted is an error found while reading (the buffer never grows past it); a
//! client message that holds a NUL cannot be written (the server would read two messages),
//! and is refused.

use std::ops::Range;

use bytes::BytesMut;

/// Why the server's stream cannot be read on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PieceError {
    /// A message longer than the largest accepted, and no NUL in sight.
    TooLarge,
    /// A message that is not UTF-8.
    NotUtf8,
}

impl PieceError {
    /// Why the session ends, in words.
    pub fn reason(self) -> &'static str {
        match self {
            PieceError::TooLarge => "the server sent a message larger than --max-message-size",
            PieceError::NotUtf8 => "the server sent a message that is not UTF-8",
        }
    }
}

/// Checks one whole message from the server: at most `max` bytes, and UTF-8.
pub fn check(piece: &[u8], max: usize) -> Result<(), PieceError> {
    if piece.len() > max {
        return Err(PieceError::TooLarge);
    }
    std::str::from_utf8(piece).map_err(|_| PieceError::NotUtf8)?;
    Ok(())
}

/// Splits what an XMLSocket server sends into its messages.
#[derive(Clone, Debug)]
pub struct Splitter {
    /// Bytes at the buffer's start already known to hold no NUL.
    scanned: usize,
    /// The longest message accepted.
    max: usize,
}

impl Splitter {
    /// A splitter of messages of at most `max` bytes.
    pub fn new(max: usize) -> Splitter {
        Splitter { scanned: 0, max }
    }

    /// The next message in `buf` (its range, and how many bytes it takes with its NUL), or
    /// `None` when more is needed. Call again with the same bytes (less what was taken) and
    /// more: what was looked at is not looked at again.
    pub fn next(&mut self, buf: &[u8]) -> Result<Option<(Range<usize>, usize)>, PieceError> {
        let Some(i) = memchr::memchr(0, &buf[self.scanned..]) else {
            self.scanned = buf.len();
            return match buf.len() > self.max {
                true => Err(PieceError::TooLarge),
                false => Ok(None),
            };
        };
        let end = self.scanned + i;
        self.scanned = 0;
        check(&buf[..end], self.max)?;
        Ok(Some((0..end, end + 1)))
    }
}

/// Appends `message` as one XMLSocket write: the message and its NUL. `Err` (nothing
/// written) when the message holds a NUL itself.
pub fn encode(message: &[u8], out: &mut BytesMut) -> Result<(), HasNul> {
    if memchr::memchr(0, message).is_some() {
        return Err(HasNul);
    }
    out.extend_from_slice(message);
    out.extend_from_slice(&[0]);
    Ok(())
}

/// A client message that holds a NUL: an XMLSocket server would read it as two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HasNul;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message of `stream`, fed to a splitter `step` bytes at a time.
    fn split(stream: &[u8], step: usize, max: usize) -> Result<Vec<String>, PieceError> {
        let mut splitter = Splitter::new(max);
        let (mut buf, mut got) = (Vec::new(), Vec::new());
        for chunk in stream.chunks(step) {
            buf.extend_from_slice(chunk);
            while let Some((range, taken)) = splitter.next(&buf)? {
                got.push(String::from_utf8(buf[range].to_vec()).unwrap());
                buf.drain(..taken);
            }
        }
        Ok(got)
    }

    #[test]
    fn messages_end_at_their_nul_however_the_stream_is_cut() {
        let stream = "<a/>\0\0<b x=\"ü\"/>\0<c/>\0partial".as_bytes();
        for step in 1..=stream.len() {
            assert_eq!(
                split(stream, step, 64).unwrap(),
                ["<a/>", "", "<b x=\"ü\"/>", "<c/>"],
                "{step}"
            );
        }
    }

    #[test]
    fn a_message_past_the_limit_is_an_error_before_its_nul_arrives() {
        assert_eq!(split(b"12345\0", 1, 5).unwrap(), ["12345"]);
        assert_eq!(split(b"123456\0", 7, 5), Err(PieceError::TooLarge));
        // No NUL yet, and already too long: found without waiting for the rest.
        let mut splitter = Splitter::new(5);
        assert_eq!(splitter.next(b"123456"), Err(PieceError::TooLarge));
    }

    #[test]
    fn a_message_that_is_not_utf8_is_an_error() {
        assert_eq!(split(b"\xff\xfe\0", 3, 64), Err(PieceError::NotUtf8));
    }

    #[test]
    fn a_client_message_is_written_with_its_nul_unless_it_holds_one() {
        let mut out = BytesMut::new();
        encode(b"<hello/>", &mut out).unwrap();
        assert_eq!(&out[..], b"<hello/>\0");
        assert_eq!(encode(b"two\0messages", &mut out), Err(HasNul));
        assert_eq!(&out[..], b"<hello/>\0");
    }
}
