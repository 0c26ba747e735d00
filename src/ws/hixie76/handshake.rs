//! The opening handshake of hixie-76 (and of hixie-75, which has no keys), server side.
//! Pure: a request's headers in, the answer's fields out.
//!
//! What the draft says (draft-ietf-hybi-thewebsocketprotocol-00, section 5.2):
//!
//! - For each of `Sec-WebSocket-Key1` and `Sec-WebSocket-Key2`, the key's number is its
//!   digits, concatenated and read as one decimal number, every other character ignored,
//!   divided by the count of its spaces (U+0020). No space at all, or a number that is not an
//!   exact multiple of the spaces, aborts the connection (a sign of a cross-protocol attack).
//!   The quotient is sent as a big-endian 32-bit integer, so it must fit in 32 bits.
//! - The request's body is 8 bytes, the third key. The answer, sent after the response
//!   head, is the MD5 digest of the first key's quotient, the second's (both big-endian
//!   32-bit) and those 8 bytes: 16 bytes.
//! - The head is `HTTP/1.1 101 WebSocket Protocol Handshake`, `Upgrade: WebSocket`,
//!   `Connection: Upgrade`, `Sec-WebSocket-Origin` (the request's `Origin`),
//!   `Sec-WebSocket-Location` (the URL the client asked for) and, when the client asked for
//!   one, `Sec-WebSocket-Protocol` with the same value.
//!
//! hixie-75 (draft-hixie-thewebsocketprotocol-75) has neither keys nor body nor answer; its
//! head is `HTTP/1.1 101 Web Socket Protocol Handshake` with `WebSocket-Origin`,
//! `WebSocket-Location` and `WebSocket-Protocol`.

use http::header::{
    HOST, ORIGIN, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};
use md5::{Digest, Md5};

use crate::origin::AllowList;
use crate::ws::handshake::Rejection;

/// The first key's header.
pub const KEY1: HeaderName = HeaderName::from_static("sec-websocket-key1");
/// The second key's header.
pub const KEY2: HeaderName = HeaderName::from_static("sec-websocket-key2");
/// hixie-75's subprotocol header.
const PROTOCOL_75: HeaderName = HeaderName::from_static("websocket-protocol");

/// How many bytes the request's body (the third key) has in hixie-76.
pub const BODY_LEN: usize = 8;

/// Which draft a client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Draft {
    /// draft-hixie-76 (draft-ietf-hybi-thewebsocketprotocol-00): keys and an MD5 answer.
    Hixie76,
    /// draft-hixie-75: no keys, no answer.
    Hixie75,
}

impl Draft {
    /// The reason phrase of the 101 status line, as the draft spells it.
    pub fn reason(self) -> &'static str {
        match self {
            Draft::Hixie76 => "WebSocket Protocol Handshake",
            Draft::Hixie75 => "Web Socket Protocol Handshake",
        }
    }
}

/// The draft an upgrade request speaks, if it is not RFC 6455: no `Sec-WebSocket-Version`
/// and no `Sec-WebSocket-Key`; with either of the numbered keys it is hixie-76, with
/// neither hixie-75. The caller has checked `Upgrade: WebSocket` and `Connection: Upgrade`.
pub fn draft_of(headers: &HeaderMap) -> Option<Draft> {
    if headers.contains_key(SEC_WEBSOCKET_VERSION) || headers.contains_key(SEC_WEBSOCKET_KEY) {
        return None;
    }
    match headers.contains_key(KEY1) || headers.contains_key(KEY2) {
        true => Some(Draft::Hixie76),
        false => Some(Draft::Hixie75),
    }
}

/// Why a key is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// The header is missing, or appears more than once.
    Missing,
    /// It has no digit: no number to divide.
    NoDigits,
    /// It has no space: the draft's sign of a cross-protocol attack.
    NoSpaces,
    /// Its number is not an exact multiple of its spaces.
    NotAMultiple,
    /// Its number divided by its spaces does not fit in 32 bits.
    TooLarge,
}

/// The number a key stands for: its digits as one decimal number, divided by its count of
/// spaces, as the draft says (see the module's documentation).
pub fn key_number(key: &[u8]) -> Result<u32, KeyError> {
    let spaces = key.iter().filter(|&&b| b == b' ').count() as u128;
    let mut digits = key
        .iter()
        .filter(|b| b.is_ascii_digit())
        .map(|b| u128::from(b - b'0'));
    if digits.clone().next().is_none() {
        return Err(KeyError::NoDigits);
    }
    if spaces == 0 {
        return Err(KeyError::NoSpaces);
    }
    // The number may have any count of digits: its remainder is kept apart, and past 128
    // bits its quotient by at most a header's length of spaces is past 32 bits anyway.
    let (mut number, mut remainder) = (Some(0u128), 0u128);
    for digit in digits.by_ref() {
        number = number
            .and_then(|n| n.checked_mul(10))
            .and_then(|n| n.checked_add(digit));
        remainder = (remainder * 10 + digit) % spaces;
    }
    if remainder != 0 {
        return Err(KeyError::NotAMultiple);
    }
    let quotient = number.ok_or(KeyError::TooLarge)? / spaces;
    u32::try_from(quotient).map_err(|_| KeyError::TooLarge)
}

/// The 16-byte answer: MD5 of both keys' numbers (big-endian) and the body's 8 bytes.
pub fn answer(key1: u32, key2: u32, body: &[u8; BODY_LEN]) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update(key1.to_be_bytes());
    md5.update(key2.to_be_bytes());
    md5.update(body);
    md5.finalize().into()
}

/// An accepted hixie handshake: what the answer needs.
#[derive(Debug, PartialEq, Eq)]
pub struct Opening {
    /// The draft spoken.
    pub draft: Draft,
    /// The keys' numbers (hixie-76 only): the answer needs them once the body is read.
    pub keys: Option<(u32, u32)>,
    /// The `Origin` the client sent, echoed in the answer.
    pub origin: Option<HeaderValue>,
    /// The `Host` the client asked, for the location.
    pub host: String,
    /// The path and query the client asked, for the location.
    pub resource: String,
    /// The subprotocol the client asked, echoed.
    pub protocol: Option<HeaderValue>,
}

fn reject(status: StatusCode, reason: &'static str) -> Rejection {
    Rejection { status, reason }
}

/// Why `key` (1 or 2) was refused, for the 400's body and the log.
fn key_reason(which: u8, error: KeyError) -> &'static str {
    match (which, error) {
        (1, KeyError::Missing) => "hixie-76: missing (or repeated) Sec-WebSocket-Key1",
        (1, KeyError::NoDigits) => "hixie-76: Sec-WebSocket-Key1 has no digits",
        (1, KeyError::NoSpaces) => "hixie-76: Sec-WebSocket-Key1 has no spaces",
        (1, KeyError::NotAMultiple) => {
            "hixie-76: Sec-WebSocket-Key1's number is not a multiple of its spaces"
        }
        (1, KeyError::TooLarge) => {
            "hixie-76: Sec-WebSocket-Key1's number divided by its spaces does not fit in 32 bits"
        }
        (_, KeyError::Missing) => "hixie-76: missing (or repeated) Sec-WebSocket-Key2",
        (_, KeyError::NoDigits) => "hixie-76: Sec-WebSocket-Key2 has no digits",
        (_, KeyError::NoSpaces) => "hixie-76: Sec-WebSocket-Key2 has no spaces",
        (_, KeyError::NotAMultiple) => {
            "hixie-76: Sec-WebSocket-Key2's number is not a multiple of its spaces"
        }
        (_, KeyError::TooLarge) => {
            "hixie-76: Sec-WebSocket-Key2's number divided by its spaces does not fit in 32 bits"
        }
    }
}

/// The one value of header `name`, if it appears exactly once.
fn single<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h HeaderValue> {
    let mut all = headers.get_all(name).iter();
    match (all.next(), all.next()) {
        (Some(value), None) => Some(value),
        _ => None,
    }
}

/// Checks a hixie upgrade request (`draft` from [`draft_of`]) to `resource` (its path and
/// query) against the draft and the allow-list.
pub fn check(
    draft: Draft,
    method: &Method,
    version: Version,
    headers: &HeaderMap,
    resource: &str,
    allow: &AllowList,
) -> Result<Opening, Rejection> {
    crate::ws::handshake::a_get(method, version)?;
    let host = single(headers, &HOST)
        .and_then(|v| v.to_str().ok())
        .ok_or(reject(
            StatusCode::BAD_REQUEST,
            "a WebSocket handshake needs a Host header",
        ))?;
    let keys = match draft {
        Draft::Hixie75 => None,
        Draft::Hixie76 => {
            let key = |which: u8, name: &HeaderName| {
                let value = single(headers, name).ok_or(KeyError::Missing);
                value
                    .and_then(|v| key_number(v.as_bytes()))
                    .map_err(|e| reject(StatusCode::BAD_REQUEST, key_reason(which, e)))
            };
            Some((key(1, &KEY1)?, key(2, &KEY2)?))
        }
    };
    let origin = headers.get(ORIGIN);
    if let Some(origin) = origin
        && !allow.allows(origin.to_str().unwrap_or("\u{fffd}"), Some(host))
    {
        return Err(reject(
            StatusCode::FORBIDDEN,
            "origin not allowed (see --allow-origin)",
        ));
    }
    let protocol = match draft {
        Draft::Hixie76 => headers.get(SEC_WEBSOCKET_PROTOCOL),
        Draft::Hixie75 => headers.get(PROTOCOL_75),
    };
    Ok(Opening {
        draft,
        keys,
        origin: origin.cloned(),
        host: host.to_string(),
        resource: resource.to_string(),
        protocol: protocol.cloned(),
    })
}

impl Opening {
    /// The URL the client asked for, with `scheme` (`ws`, or `wss` behind TLS).
    pub fn location(&self, scheme: &str) -> String {
        format!("{scheme}://{}{}", self.host, self.resource)
    }

    /// The answer's header fields after its status line, in the draft's order.
    pub fn fields(&self, scheme: &str) -> Vec<(HeaderName, HeaderValue)> {
        let (origin, location, protocol) = match self.draft {
            Draft::Hixie76 => (
                HeaderName::from_static("sec-websocket-origin"),
                HeaderName::from_static("sec-websocket-location"),
                SEC_WEBSOCKET_PROTOCOL,
            ),
            Draft::Hixie75 => (
                HeaderName::from_static("websocket-origin"),
                HeaderName::from_static("websocket-location"),
                PROTOCOL_75,
            ),
        };
        let mut fields = vec![
            (http::header::UPGRADE, HeaderValue::from_static("WebSocket")),
            (
                http::header::CONNECTION,
                HeaderValue::from_static("Upgrade"),
            ),
        ];
        fields.extend(self.origin.clone().map(|v| (origin, v)));
        // Host and path are visible ASCII already (the HTTP parser took them).
        if let Ok(value) = HeaderValue::from_str(&self.location(scheme)) {
            fields.push((location, value));
        }
        fields.extend(self.protocol.clone().map(|v| (protocol, v)));
        fields
    }

    /// The whole response head as the draft writes it, status line to blank line.
    pub fn head(&self, scheme: &str) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 101 {}\r\n", self.draft.reason()).into_bytes();
        for (name, value) in self.fields(scheme) {
            head.extend_from_slice(canonical(&name).as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        head
    }
}

/// A header name as the draft spells it (`Sec-WebSocket-Origin`).
fn canonical(name: &HeaderName) -> String {
    name.as_str()
        .split('-')
        .map(|part| match part {
            "websocket" => "WebSocket".to_string(),
            part => {
                let mut chars = part.chars();
                chars.next().map_or(String::new(), |c| {
                    c.to_ascii_uppercase().to_string() + chars.as_str()
                })
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests;
