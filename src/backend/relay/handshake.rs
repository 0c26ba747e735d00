//! The opening handshake with an upstream WebSocket server, client side: the request the
//! gateway sends for one client, and the check of the server's answer. Pure: what the
//! client said in, bytes out; bytes in, the server's choice or why it is refused.
//!
//! Written here rather than left to tungstenite's client: tungstenite refuses an answer
//! without a subprotocol when the request offered some, which RFC 6455 allows (4.1: the
//! server may choose none), and every client's offer is passed on.

use std::fmt::Write as _;
use std::net::SocketAddr;

use base64::Engine;
use http::HeaderValue;
use tungstenite::handshake::derive_accept_key;

use super::Hello;

/// The most bytes of an answer's head read before it is refused as too large.
pub const MAX_HEAD: usize = 16 * 1024;

/// Where the request goes: the server's `host:port` (as `Host` says it) and the resource.
pub struct Target<'a> {
    /// `Host`: the name and port the route gives.
    pub host: &'a str,
    /// The route's path and query on the server, e.g. `/socket?app=1`.
    pub resource: &'a str,
}

/// What the route lets the server learn of the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tell {
    /// `X-Forwarded-For`, `X-Forwarded-Host`, `X-Forwarded-Proto` and `Forwarded`.
    pub forwarded: bool,
    /// The client's `Cookie` header.
    pub cookies: bool,
}

/// A fresh `Sec-WebSocket-Key`: 16 random bytes, base64.
pub fn new_key() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the system has randomness");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The request for `hello`'s client at `addrs` (the client's address, and the gateway's it
/// reached), written into `out`: to the route's resource, with the client's query after
/// the route's own.
pub fn request(
    target: &Target<'_>,
    hello: &Hello,
    addrs: (SocketAddr, SocketAddr),
    tell: Tell,
    key: &str,
    out: &mut Vec<u8>,
) {
    let (path, route_query) = target
        .resource
        .split_once('?')
        .unwrap_or((target.resource, ""));
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(path.as_bytes());
    let queries = [route_query, hello.query.as_deref().unwrap_or("")];
    for (i, query) in queries.into_iter().filter(|q| !q.is_empty()).enumerate() {
        out.push(if i == 0 { b'?' } else { b'&' });
        out.extend_from_slice(query.as_bytes());
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    // Values as they came, byte for byte: a parsed request's hold no CR or LF, and may hold
    // bytes that are not UTF-8.
    let mut header = |name: &str, value: &[u8]| {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };
    header("Host", target.host.as_bytes());
    header("Upgrade", b"websocket");
    header("Connection", b"Upgrade");
    header("Sec-WebSocket-Version", b"13");
    header("Sec-WebSocket-Key", key.as_bytes());
    if let Some(origin) = bytes(&hello.origin) {
        header("Origin", origin);
    }
    if let Some(protocols) = bytes(&hello.protocols) {
        header("Sec-WebSocket-Protocol", protocols);
    }
    if tell.cookies
        && let Some(cookie) = bytes(&hello.cookie)
    {
        header("Cookie", cookie);
    }
    header("X-Flashgate-Transport", hello.transport.as_str().as_bytes());
    if tell.forwarded {
        let (client, _) = addrs;
        let proto = if hello.tls { "https" } else { "http" };
        let ip = client.ip().to_canonical().to_string();
        header("X-Forwarded-For", ip.as_bytes());
        header("X-Forwarded-Proto", proto.as_bytes());
        let host = bytes(&hello.host);
        if let Some(host) = host {
            header("X-Forwarded-Host", host);
        }
        // RFC 7239: a node with a port is quoted, an IPv6 one in brackets.
        let mut forwarded = match client.ip().to_canonical() {
            std::net::IpAddr::V4(v4) => format!("for=\"{v4}:{}\"", client.port()),
            std::net::IpAddr::V6(v6) => format!("for=\"[{v6}]:{}\"", client.port()),
        };
        let _ = write!(forwarded, ";proto={proto}");
        match host.and_then(|h| std::str::from_utf8(h).ok()) {
            Some(host) if is_token(host) => {
                let _ = write!(forwarded, ";host={host}");
            }
            // `host:port`: a quoted string (a Host header holds no quote or backslash).
            Some(host) if !host.contains(['"', '\\']) => {
                let _ = write!(forwarded, ";host=\"{host}\"");
            }
            _ => {}
        }
        header("Forwarded", forwarded.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// A header value's bytes.
fn bytes(value: &Option<HeaderValue>) -> Option<&[u8]> {
    value.as_ref().map(HeaderValue::as_bytes)
}

/// True when `text` may stand unquoted in a `Forwarded` parameter: an RFC 9110 token
/// (`host:port` is not one, for its `:`).
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The server's answer, accepted.
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    /// The bytes of the head, which the connection's first frames follow.
    pub head_len: usize,
    /// The subprotocol the server chose, if any: one the client offered.
    pub protocol: Option<HeaderValue>,
}

/// Reads the server's answer to a request made with `key` that offered `offered`
/// subprotocols: `Ok(None)` while the head is incomplete.
pub fn answer(
    bytes: &[u8],
    key: &str,
    offered: Option<&HeaderValue>,
) -> Result<Option<Answer>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut res = httparse::Response::new(&mut headers);
    let head_len = match res.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if bytes.len() >= MAX_HEAD => {
            return Err(format!("its answer's head is over {MAX_HEAD} bytes"));
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => return Err(format!("its answer is not HTTP ({error})")),
    };
    let code = res.code.unwrap_or(0);
    if code != 101 {
        let reason = res.reason.unwrap_or("");
        return Err(format!("it answered {code} {reason}")
            .trim_end()
            .to_string());
    }
    let get = |name: &str| {
        res.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
            .collect::<Vec<_>>()
    };
    let lists = |name: &str, token: &str| {
        get(name)
            .iter()
            .filter_map(|v| std::str::from_utf8(v).ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if !lists("upgrade", "websocket") || !lists("connection", "upgrade") {
        return Err("its 101 does not upgrade to websocket".into());
    }
    let expected = derive_accept_key(key.as_bytes());
    if get("sec-websocket-accept").first().map(|v| v.trim_ascii()) != Some(expected.as_bytes()) {
        return Err("its Sec-WebSocket-Accept does not match the key".into());
    }
    let protocol = match get("sec-websocket-protocol").as_slice() {
        [] => None,
        [chosen] => {
            let chosen = chosen.trim_ascii();
            let offered = offered
                .and_then(|o| o.to_str().ok())
                .into_iter()
                .flat_map(|o| o.split(','))
                .any(|p| p.trim().as_bytes() == chosen);
            if !offered {
                return Err("it chose a subprotocol the client did not offer".into());
            }
            Some(HeaderValue::from_bytes(chosen).map_err(|e| e.to_string())?)
        }
        _ => return Err("it chose more than one subprotocol".into()),
    };
    Ok(Some(Answer { head_len, protocol }))
}

#[cfg(test)]
#[path = "handshake/tests.rs"]
mod tests;
