//! UTF-8 checked as a text message streams by, piece by piece, without holding it: a
//! character cut between two pieces is carried over (at most three bytes), and bytes that
//! can begin no valid text fail at once, not when the message ends.

/// Where the check of one message stands between its pieces.
#[derive(Debug, Default, Clone)]
pub struct Utf8Stream {
    /// The start of a character the last piece cut.
    carry: [u8; 4],
    /// How many bytes of `carry` are held.
    held: usize,
}

/// The bytes seen are not UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotUtf8;

/// How many bytes the character that `lead` starts takes (`lead` began a valid prefix).
fn width(lead: u8) -> usize {
    match lead {
        0xf0.. => 4,
        0xe0.. => 3,
        _ => 2,
    }
}

impl Utf8Stream {
    /// Checks `bytes`, the next piece of the message.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), NotUtf8> {
        if self.held > 0 {
            let width = width(self.carry[0]);
            let take = (width - self.held).min(bytes.len());
            self.carry[self.held..self.held + take].copy_from_slice(&bytes[..take]);
            self.held += take;
            bytes = &bytes[take..];
            let started = &self.carry[..self.held];
            match std::str::from_utf8(started) {
                Ok(_) => self.held = 0,
                // Still cut short (the piece was that small), and fine so far.
                Err(e) if e.error_len().is_none() && self.held < width => return Ok(()),
                Err(_) => return Err(NotUtf8),
            }
        }
        match std::str::from_utf8(bytes) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let cut = &bytes[e.valid_up_to()..];
                self.carry[..cut.len()].copy_from_slice(cut);
                self.held = cut.len();
                Ok(())
            }
            Err(_) => Err(NotUtf8),
        }
    }

    /// The message ended: it is UTF-8 unless a character was left unfinished. Ready for the
    /// next message either way.
    pub fn end(&mut self) -> Result<(), NotUtf8> {
        let held = std::mem::take(&mut self.held);
        match held {
            0 => Ok(()),
            _ => Err(NotUtf8),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks `message` fed in pieces of `step` bytes.
    fn check(message: &[u8], step: usize) -> Result<(), NotUtf8> {
        let mut stream = Utf8Stream::default();
        for piece in message.chunks(step) {
            stream.feed(piece)?;
        }
        stream.end()
    }

    #[test]
    fn agrees_with_the_standard_library_however_the_message_is_cut() {
        let cases: [&[u8]; 14] = [
            b"",
            b"plain ascii",
            "h\u{e9}llo \u{20ac} \u{1f600} end".as_bytes(),
            "\u{7ff}\u{800}\u{ffff}\u{10000}\u{10ffff}".as_bytes(),
            b"\xff",
            b"ok\xc3",
            b"\xc3\x28",
            b"\xe2\x82",
            b"\xed\xa0\x80",     // a surrogate
            b"\xf4\x90\x80\x80", // past U+10FFFF
            b"\xc0\xaf",         // overlong
            b"\xe0\x80\xaf",     // overlong
            b"\xf0\x9f\x98",     // cut at the end
            b"a\xf0\x9f\x98\x80b\x80",
        ];
        for message in cases {
            let expected = std::str::from_utf8(message).map(drop).map_err(|_| NotUtf8);
            for step in 1..=message.len().max(1) {
                assert_eq!(check(message, step), expected, "{message:x?} by {step}");
            }
        }
    }

    #[test]
    fn bytes_that_begin_no_text_fail_before_the_message_ends() {
        let mut stream = Utf8Stream::default();
        stream.feed(b"abc\xe2").unwrap();
        assert_eq!(stream.feed(b"\x28"), Err(NotUtf8));
        let mut stream = Utf8Stream::default();
        assert_eq!(stream.feed(b"\xf8"), Err(NotUtf8));
    }

    #[test]
    fn each_message_starts_afresh() {
        let mut stream = Utf8Stream::default();
        stream.feed(b"\xe2\x82").unwrap();
        assert_eq!(stream.end(), Err(NotUtf8));
        stream.feed(b"\xac").unwrap_err();
        let mut stream = Utf8Stream::default();
        stream.feed(b"\xe2\x82").unwrap();
        stream.feed(b"\xac").unwrap();
        assert_eq!(stream.end(), Ok(()));
    }
}
