//! How each transport wraps a frame on its response, and, on HTTP/1.1, in a chunk.

use super::{HEX, Out, quote};
use crate::session::Framing;

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

/// Room for a chunk's size line: sixteen hex digits and CRLF.
const HEAD: usize = 18;

impl Wrap {
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

    /// Appends `frame`, wrapped, to `out`.
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

    /// Appends the frame that `write` writes, wrapped, to `out`, as one chunk when
    /// `chunked`; how long it is wrapped. The frame is written in place (xhr, eventsource)
    /// or once more to be quoted (htmlfile, jsonp).
    pub fn put(&self, chunked: bool, out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) -> usize {
        let start = out.len();
        if chunked {
            out.resize(start + HEAD, 0);
        }
        let body = out.len();
        match self {
            Wrap::Line => {
                write(out);
                out.put("\n");
            }
            Wrap::Event => {
                out.put("data: ");
                write(out);
                out.put("\r\n\r\n");
            }
            Wrap::Script | Wrap::Callback(_) => {
                let mut frame = Vec::new();
                write(&mut frame);
                let frame = String::from_utf8(frame).expect("frames are text");
                let mut wrapped = String::new();
                self.frame(&frame, &mut wrapped);
                out.put(&wrapped);
            }
        }
        let len = out.len() - body;
        if chunked {
            // The size line, right before the data, and the room it did not need taken out.
            let (line, at) = size_line(len);
            out[start..body].copy_from_slice(&line);
            out.drain(start..start + at);
            out.put("\r\n");
        }
        len
    }
}

/// A chunk's size line for `len` bytes (its length in hex, and CRLF), at the end of
/// `HEAD` bytes, and where in them it starts.
fn size_line(len: usize) -> ([u8; HEAD], usize) {
    let mut line = [0; HEAD];
    line[HEAD - 2..].copy_from_slice(b"\r\n");
    let (mut at, mut rest) = (HEAD - 2, len);
    loop {
        at -= 1;
        line[at] = HEX[rest & 0xf];
        rest >>= 4;
        if rest == 0 {
            return (line, at);
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
