//! The hixie-76 parsers: a key of the opening handshake, and the frames a client sends.

use http::{HeaderMap, HeaderValue, Method, Version};

use super::{cut, pieces};
use crate::origin::AllowList;
use crate::ws::hixie76::frame::{Decoder, Frame, FrameError, encode_close, encode_text};
use crate::ws::hixie76::handshake::{self, Draft, KeyError, answer, key_number};

/// The key rule (`ws::hixie76::handshake::key_number`) and the handshake check over it.
///
/// Asserts: a key's number is what the draft's rule gives, computed here by long division
/// of its digit string (so with no bound on its length): no digits or no spaces refused,
/// a remainder refused, a quotient past 32 bits refused. A request with the key as both
/// keys is hixie-76, accepted exactly when the key is; its answer's head has a 101 status
/// line and the location, and its 16-byte answer changes with any bit of the body.
pub fn hixie76_handshake(data: &[u8]) {
    let got = key_number(data);
    assert_eq!(got, key_rule(data), "{:?}", String::from_utf8_lossy(data));
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(http::header::HOST, HeaderValue::from_static("gw:80"));
    headers.insert(handshake::KEY1, value.clone());
    headers.insert(handshake::KEY2, value);
    assert_eq!(handshake::draft_of(&headers), Some(Draft::Hixie76));
    let allow = AllowList::parse(&["*".to_string()]).expect("* is an allow-list");
    let checked = handshake::check(
        Draft::Hixie76,
        &Method::GET,
        Version::HTTP_11,
        &headers,
        "/chat",
        &allow,
    );
    assert_eq!(checked.is_ok(), got.is_ok());
    if let Ok(opening) = checked {
        let key = got.unwrap();
        assert_eq!(opening.keys, Some((key, key)));
        let body = [data.len() as u8; 8];
        let mut other = body;
        other[data.len() % 8] ^= 1 << (data.len() % 7);
        assert_ne!(answer(key, key, &body), answer(key, key, &other));
        let head = opening.head("ws");
        let mut fields = [httparse::EMPTY_HEADER; 8];
        let mut response = httparse::Response::new(&mut fields);
        let parsed = response.parse(&head).expect("a well-formed head");
        assert!(parsed.is_complete());
        assert_eq!(response.code, Some(101));
        assert_eq!(response.reason, Some("WebSocket Protocol Handshake"));
        assert!(
            response
                .headers
                .iter()
                .any(|h| h.name == "Sec-WebSocket-Location" && h.value == b"ws://gw:80/chat")
        );
    }
}

/// The draft's key rule, independently: long division of the digit string by the spaces.
fn key_rule(key: &[u8]) -> Result<u32, KeyError> {
    let digits: Vec<u8> = key
        .iter()
        .filter(|b| b.is_ascii_digit())
        .map(|b| b - b'0')
        .collect();
    let spaces = key.iter().filter(|&&b| b == b' ').count() as u128;
    if digits.is_empty() {
        return Err(KeyError::NoDigits);
    }
    if spaces == 0 {
        return Err(KeyError::NoSpaces);
    }
    // Quotient digits, most significant first, and the remainder.
    let (mut quotient, mut remainder) = (Vec::new(), 0u128);
    for digit in digits {
        let part = remainder * 10 + u128::from(digit);
        quotient.push(part / spaces);
        remainder = part % spaces;
    }
    if remainder != 0 {
        return Err(KeyError::NotAMultiple);
    }
    let significant: Vec<u128> = quotient.into_iter().skip_while(|&d| d == 0).collect();
    if significant.len() > 10 {
        return Err(KeyError::TooLarge);
    }
    let value = significant.iter().fold(0u128, |n, &d| n * 10 + d);
    u32::try_from(value).map_err(|_| KeyError::TooLarge)
}

/// The largest message the frames target accepts: small, so that the limit is reached.
const MAX: usize = 64;

/// The frame decoder (`ws::hixie76::frame::Decoder`), over the input cut into reads as its
/// first bytes say ([`cut`]).
///
/// Asserts: decoded in one piece, a byte at a time, or cut as the input says, the stream
/// gives the same messages and the same end (closed, failed and why, or still open); each
/// step consumes no more than it was given and names a message inside it; each message is
/// UTF-8 and at most the limit; and the messages, encoded again, decode to themselves,
/// and with a closing handshake after them, to a close.
pub fn hixie76_frames(data: &[u8]) {
    let (pattern, stream) = cut(data);
    let whole = decode(&[stream]);
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(decode(&bytes), whole, "a byte at a time");
    assert_eq!(
        decode(&pieces(stream, &pattern)),
        whole,
        "cut as {pattern:?}"
    );
    let (messages, _) = whole;
    let mut again = Vec::new();
    for message in &messages {
        assert!(message.len() <= MAX);
        encode_text(&mut again, message);
    }
    assert_eq!(
        decode(&[&again]),
        (messages.clone(), Ok(false)),
        "encoded again"
    );
    encode_close(&mut again);
    assert_eq!(decode(&[&again]), (messages, Ok(true)), "and closed");
}

/// The messages of `pieces` decoded in turn, and the end: closed (true), open (false), or
/// failed.
fn decode(pieces: &[&[u8]]) -> (Vec<String>, Result<bool, FrameError>) {
    let mut decoder = Decoder::new(MAX);
    let (mut buf, mut messages) = (Vec::new(), Vec::new());
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            let step = match decoder.decode(&buf) {
                Ok(step) => step,
                Err(error) => return (messages, Err(error)),
            };
            assert!(step.consumed <= buf.len());
            if let Frame::Text(range) = &step.frame {
                assert!(range.end < step.consumed, "{range:?} in {}", step.consumed);
                let text = std::str::from_utf8(&buf[range.clone()]).expect("UTF-8");
                messages.push(text.to_string());
            }
            buf.drain(..step.consumed);
            match step.frame {
                Frame::Close => return (messages, Ok(true)),
                Frame::Incomplete => break,
                Frame::Text(_) => {}
            }
        }
    }
    (messages, Ok(false))
}
