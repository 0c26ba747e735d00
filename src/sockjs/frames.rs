//! SockJS framing, pure: the frames a server sends (`o`, `h`, `a[...]`, `c[code,"reason"]`),
//! their wrapping per transport, and the client's payloads.
//!
//! Messages are JSON strings, escaped as the protocol asks beyond JSON: besides `"`, `\` and
//! the control characters, the characters that browsers or proxies mangle
//! (`\u200c-\u200f`, `\u2028-\u202f`, `\u2060-\u206f`, `\ufff0-\uffff`) are written as
//! `\uXXXX`, so every valid string a client sends comes back as it was.

use bytes::Bytes;
use tungstenite::Utf8Bytes;

pub(crate) mod array;
mod scan;
mod wrap;

pub use wrap::Wrap;

/// The open frame.
pub const OPEN: &str = "o";
/// The heartbeat frame.
pub const HEARTBEAT: &str = "h";

/// Hex digits, for escapes and chunk sizes.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Where frames are written: text, or the bytes of a response.
pub trait Out {
    /// Appends `s`.
    fn put(&mut self, s: &str);
}

impl Out for String {
    fn put(&mut self, s: &str) {
        self.push_str(s);
    }
}

impl Out for Vec<u8> {
    fn put(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }
}

/// True for a character the protocol has servers send as `\uXXXX`.
fn escaped(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{200c}'..='\u{200f}'
        | '\u{2028}'..='\u{202f}'
        | '\u{2060}'..='\u{206f}'
        | '\u{fff0}'..='\u{ffff}')
}

/// Appends `s` to `out` as a JSON string, escaped as the protocol asks.
pub fn quote(s: &str, out: &mut impl Out) {
    let Some(first) = first_maybe_escaped(s.as_bytes()) else {
        out.put("\"");
        out.put(s);
        out.put("\"");
        return;
    };
    // `first` starts a character: the bytes that can are ASCII or lead bytes.
    out.put("\"");
    out.put(&s[..first]);
    let s = &s[first..];
    let mut plain = 0;
    for (i, c) in s.char_indices() {
        let short = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\u{8}' => "\\b",
            '\u{c}' => "\\f",
            c if escaped(c) => "",
            _ => continue,
        };
        out.put(&s[plain..i]);
        plain = i + c.len_utf8();
        match short.is_empty() {
            true => unicode_escape(c, out),
            false => out.put(short),
        }
    }
    out.put(&s[plain..]);
    out.put("\"");
}

/// Appends `\uXXXX` for `c`, a character of the Basic Multilingual Plane.
fn unicode_escape(c: char, out: &mut impl Out) {
    let n = c as usize;
    let digit = |shift: usize| HEX[n >> shift & 0xf];
    let escape = [b'\\', b'u', digit(12), digit(8), digit(4), digit(0)];
    out.put(std::str::from_utf8(&escape).expect("ASCII"));
}

/// True for a byte that may start something to escape: a control character, `"`, `\\`, or
/// the lead byte of a character in `U+2000..U+2FFF` or `U+F000..U+FFFF`.
fn maybe_escaped(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\' || b == 0xe2 || b == 0xef
}

/// Where the first byte of `s` that may start something to escape is.
fn first_maybe_escaped(s: &[u8]) -> Option<usize> {
    let word = |w| scan::any(w, 0x20, [b'"', b'\\', 0xe2, 0xef]);
    scan::find(s, word, maybe_escaped)
}

/// Appends the message frame `a[...]` of `messages` to `out`.
pub fn messages<S: AsRef<str>>(messages: impl IntoIterator<Item = S>, out: &mut impl Out) {
    out.put("a[");
    for (i, message) in messages.into_iter().enumerate() {
        if i > 0 {
            out.put(",");
        }
        quote(message.as_ref(), out);
    }
    out.put("]");
}

/// The close frame `c[code,"reason"]`.
pub fn close(code: u16, reason: &str) -> String {
    let mut out = format!("c[{code},");
    quote(reason, &mut out);
    out.push(']');
    out
}

/// True when `callback` is a name the protocol allows for htmlfile and jsonp:
/// `[a-zA-Z0-9-_.]`, at most 32 characters.
pub fn valid_callback(callback: &str) -> bool {
    !callback.is_empty()
        && callback.len() <= 32
        && callback
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// What is wrong with a client's payload, in the protocol's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Nothing, or not an array.
    Expected,
    /// Not JSON, or an array of something else than strings.
    Broken,
}

impl Refused {
    /// The protocol's message for it.
    pub fn message(self) -> &'static str {
        match self {
            Refused::Expected => "Payload expected.",
            Refused::Broken => "Broken JSON encoding.",
        }
    }
}

/// The messages of an `xhr_send` or `jsonp_send` body: a JSON array of strings.
pub fn client_messages(body: &Bytes) -> Result<Vec<Utf8Bytes>, Refused> {
    if body.is_empty() {
        return Err(Refused::Expected);
    }
    // What clients send: strings, most of them slices of the body. Anything else is
    // looked at again, to tell the protocol's two errors apart.
    if let Some(messages) = array::strings(body) {
        return Ok(messages);
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| Refused::Broken)?;
    let serde_json::Value::Array(items) = value else {
        return Err(Refused::Expected);
    };
    items
        .into_iter()
        .map(|item| match item {
            serde_json::Value::String(s) => Ok(s.into()),
            _ => Err(Refused::Broken),
        })
        .collect()
}

/// The messages of one WebSocket message from a SockJS client: an array of strings, or one
/// string; an empty message carries none. `Err` when it is neither: the protocol has the
/// connection closed then.
pub fn websocket_messages(text: &Utf8Bytes) -> Result<Vec<Utf8Bytes>, Refused> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    if text.starts_with('[') {
        return client_messages(&Bytes::from(text.clone()));
    }
    serde_json::from_str::<String>(text)
        .map(|s| vec![s.into()])
        .map_err(|_| Refused::Broken)
}

/// The `d` field of a form-encoded `jsonp_send` body, percent-decoded; `None` without one.
pub fn form_field_d(body: &[u8]) -> Option<Vec<u8>> {
    body.split(|&b| b == b'&').find_map(|pair| {
        let value = pair.strip_prefix(b"d=")?;
        Some(percent_decode(value))
    })
}

/// Decodes `+` (a space, in forms) and `%XX`; a malformed escape stays as it is.
fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let spaced: Vec<u8> = bytes
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_encoding::percent_decode(&spaced).collect()
}

#[cfg(test)]
mod tests;
