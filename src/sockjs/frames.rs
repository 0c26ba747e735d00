//! SockJS framing, pure: the frames a server sends (`o`, `h`, `a[...]`, `c[code,"reason"]`),
//! their wrapping per transport, and the client's payloads.
//!
//! Messages are JSON strings, escaped as the protocol asks beyond JSON: besides `"`, `\` and
//! the control characters, the characters that browsers or proxies mangle
//! (`\u200c-\u200f`, `\u2028-\u202f`, `\u2060-\u206f`, `\ufff0-\uffff`) are written as
//! `\uXXXX`, so every valid string a client sends comes back as it was.

use std::fmt::Write as _;

use crate::session::Framing;

/// The open frame.
pub const OPEN: &str = "o";
/// The heartbeat frame.
pub const HEARTBEAT: &str = "h";

/// Appends `data` to `out` as one chunk of an HTTP/1.1 chunked body.
pub fn chunk(data: &[u8], out: &mut Vec<u8>) {
    use std::io::Write as _;
    let _ = write!(out, "{:x}\r\n", data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
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
pub fn quote(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('"');
    // Most text has nothing to escape: only these bytes can start something that is.
    let maybe = |b: &u8| *b < 0x20 || *b == b'"' || *b == b'\\' || *b == 0xe2 || *b == 0xef;
    let Some(first) = s.bytes().position(|b| maybe(&b)) else {
        out.push_str(s);
        out.push('"');
        return;
    };
    // `first` starts a character: the bytes that can are ASCII or lead bytes.
    out.push_str(&s[..first]);
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
        out.push_str(&s[plain..i]);
        plain = i + c.len_utf8();
        if short.is_empty() {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push_str(short);
        }
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

/// Appends the message frame `a[...]` of `messages` to `out`.
pub fn messages<'a>(messages: impl IntoIterator<Item = &'a str>, out: &mut String) {
    out.push_str("a[");
    for (i, message) in messages.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        quote(message, out);
    }
    out.push(']');
}

/// The close frame `c[code,"reason"]`.
pub fn close(code: u16, reason: &str) -> String {
    let mut out = format!("c[{code},");
    quote(reason, &mut out);
    out.push(']');
    out
}

/// How a transport wraps each frame on its response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wrap {
    /// xhr and xhr_streaming: the frame and a newline.
    Line,
    /// eventsource: one `data:` event.
    Event,
    /// htmlfile: a script calling `p` with the frame as a JavaScript string.
    Script,
    /// jsonp: `/**/callback("frame");`.
    Callback(String),
}

impl Wrap {
    /// Appends `frame`, wrapped, to `out`.
    /// How a room frames for a streaming response wrapped this way (chunked); `None`
    /// for a polling one.
    pub fn framing(&self) -> Option<Framing> {
        match self {
            Wrap::Line => Some(Framing::SockjsXhrStreaming),
            Wrap::Event => Some(Framing::SockjsEventsource),
            Wrap::Script => Some(Framing::SockjsHtmlfile),
            Wrap::Callback(_) => None,
        }
    }

    pub fn frame(&self, frame: &str, out: &mut String) {
        match self {
            Wrap::Line => {
                out.push_str(frame);
                out.push('\n');
            }
            Wrap::Event => {
                // Frames are JSON: no raw CR, LF or NUL can be in one to break the event.
                out.push_str("data: ");
                out.push_str(frame);
                out.push_str("\r\n\r\n");
            }
            Wrap::Script => {
                out.push_str("<script>\np(");
                quote_script(frame, out);
                out.push_str(");\n</script>\r\n");
            }
            Wrap::Callback(callback) => {
                out.push_str("/**/");
                out.push_str(callback);
                out.push('(');
                quote_script(frame, out);
                out.push_str(");\r\n");
            }
        }
    }
}

/// Appends `frame` as a JavaScript string literal inside a script: JSON-quoted, and with
/// `<` escaped so that a message can never end the script element.
fn quote_script(frame: &str, out: &mut String) {
    let start = out.len();
    quote(frame, out);
    if out[start..].contains('<') {
        let quoted = out.split_off(start);
        out.push_str(&quoted.replace('<', "\\u003c"));
    }
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
pub fn client_messages(body: &[u8]) -> Result<Vec<String>, Refused> {
    if body.is_empty() {
        return Err(Refused::Expected);
    }
    // What clients send: straight into strings. Anything else is looked at again, to tell
    // the protocol's two errors apart.
    if let Ok(messages) = serde_json::from_slice::<Vec<String>>(body) {
        return Ok(messages);
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| Refused::Broken)?;
    let serde_json::Value::Array(items) = value else {
        return Err(Refused::Expected);
    };
    items
        .into_iter()
        .map(|item| match item {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(Refused::Broken),
        })
        .collect()
}

/// The messages of one WebSocket message from a SockJS client: an array of strings, or one
/// string; an empty message carries none. `Err` when it is neither: the protocol has the
/// connection closed then.
pub fn websocket_messages(text: &str) -> Result<Vec<String>, Refused> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    if text.starts_with('[') {
        return client_messages(text.as_bytes());
    }
    serde_json::from_str::<String>(text)
        .map(|s| vec![s])
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
