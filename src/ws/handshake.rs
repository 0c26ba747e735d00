//! The RFC 6455 opening handshake, server side: checking a request's headers and deciding
//! the client's transport. Pure: headers in, decision out.

use base64::Engine;
use http::HeaderValue;
use http::header::{
    CONNECTION, ORIGIN, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE, USER_AGENT,
};
use http::{HeaderMap, Method, Response, StatusCode, Version};
use tungstenite::handshake::derive_accept_key;

use crate::body::{Body, text};
use crate::origin::AllowList;
use crate::session::Transport;

/// A request that may be upgraded.
#[derive(Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The `Sec-WebSocket-Accept` value.
    pub accept_key: String,
    /// How the client is connected; decides whether it may get binary frames.
    pub transport: Transport,
    /// The `?room=` of the request, if any.
    pub room: Option<String>,
    /// The `?target=` of a socket-proxy request (percent-decoded), if any.
    pub target: Option<String>,
    /// The subprotocol to answer with: the one a relayed client's server chose.
    pub protocol: Option<HeaderValue>,
}

/// Why a request is not upgraded: an HTTP status and a reason for the body and the log.
#[derive(Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The status to answer with.
    pub status: StatusCode,
    /// What was wrong.
    pub reason: &'static str,
}

impl Rejection {
    /// The answer: the status, the reason as the body, and for a 426 what is spoken here.
    pub fn response(&self) -> Response<Body> {
        let mut res = text(self.status, self.reason);
        if self.status == StatusCode::UPGRADE_REQUIRED {
            // RFC 9110 15.5.22: a 426 names the protocol in Upgrade; RFC 6455 4.2.2: and the
            // WebSocket versions the server speaks.
            let headers = res.headers_mut();
            headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
            headers.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        }
        res
    }
}

fn reject(status: StatusCode, reason: &'static str) -> Rejection {
    Rejection { status, reason }
}

/// Every WebSocket handshake, of every draft, is an HTTP/1.1 (or later) GET.
pub fn a_get(method: &Method, version: Version) -> Result<(), Rejection> {
    if method != Method::GET {
        return Err(reject(
            StatusCode::METHOD_NOT_ALLOWED,
            "a WebSocket handshake is a GET request",
        ));
    }
    if version < Version::HTTP_11 {
        return Err(reject(
            StatusCode::BAD_REQUEST,
            "a WebSocket handshake needs HTTP/1.1",
        ));
    }
    Ok(())
}

/// True when the request asks for a WebSocket upgrade at all.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    has_token(headers, &UPGRADE, "websocket") && has_token(headers, &CONNECTION, "upgrade")
}

/// True when header `name` lists `token` (comma-separated, any case).
pub fn has_token(headers: &HeaderMap, name: &http::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Checks an upgrade request against RFC 6455 and the allow-list.
///
/// Transport: web-socket-js's Flash handshake always carries `Origin` (and a `Cookie` line)
/// but never `User-Agent`, which every browser sends; so `Origin` without `User-Agent` means
/// Flash. A page can also say so itself with `?flash=1` (and `?flash=0` says it is not).
pub fn check(
    method: &Method,
    version: Version,
    headers: &HeaderMap,
    query: Option<&str>,
    allow: &AllowList,
) -> Result<Accepted, Rejection> {
    // RFC 6455 4.1: an HTTP/1.1 (or later) GET, with a Host.
    a_get(method, version)?;
    if !headers.contains_key(http::header::HOST) {
        return Err(reject(
            StatusCode::BAD_REQUEST,
            "a WebSocket handshake needs a Host header",
        ));
    }
    if !is_upgrade(headers) {
        return Err(reject(
            StatusCode::UPGRADE_REQUIRED,
            "this is a WebSocket endpoint: connect with a WebSocket client",
        ));
    }
    if headers.get(SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes()) != Some(b"13") {
        return Err(reject(
            StatusCode::UPGRADE_REQUIRED,
            "only WebSocket version 13 (RFC 6455) is spoken here",
        ));
    }
    let key = headers
        .get(SEC_WEBSOCKET_KEY)
        .ok_or(reject(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key"))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(key.as_bytes());
    if key.len() != 24 || !decoded.is_ok_and(|k| k.len() == 16) {
        return Err(reject(
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Key is not 16 bytes of base64",
        ));
    }
    let origin = headers
        .get(ORIGIN)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let host = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok());
    if let Some(origin) = origin
        && !allow.allows(origin, host)
    {
        return Err(reject(
            StatusCode::FORBIDDEN,
            "origin not allowed (see --allow-origin)",
        ));
    }

    let mut room = None;
    let mut flash = None;
    let mut target = None;
    for pair in query.unwrap_or("").split('&') {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("room", name) => room = Some(check_room(name)?),
            ("flash", "1") => flash = Some(true),
            ("flash", "0") => flash = Some(false),
            ("target", value) => {
                target = Some(
                    percent_encoding::percent_decode_str(value)
                        .decode_utf8_lossy()
                        .into_owned(),
                )
            }
            _ => {}
        }
    }
    let flash = flash.unwrap_or(origin.is_some() && !headers.contains_key(USER_AGENT));
    Ok(Accepted {
        accept_key: derive_accept_key(key.as_bytes()),
        transport: if flash {
            Transport::Flash
        } else {
            Transport::Rfc6455
        },
        room,
        target,
        protocol: None,
    })
}

/// A room name as a client gives it, checked.
pub fn check_room(name: &str) -> Result<String, Rejection> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    match ok {
        true => Ok(name.to_string()),
        false => Err(reject(
            StatusCode::BAD_REQUEST,
            "a room name is 1 to 64 letters, digits, '-', '_' or '.'",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(list: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in list {
            map.append(*k, v.parse().unwrap());
        }
        map
    }

    const BASE: [(&str, &str); 4] = [
        ("host", "gw:8080"),
        ("upgrade", "websocket"),
        ("connection", "keep-alive, Upgrade"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut list = BASE.to_vec();
        list.push(("sec-websocket-version", "13"));
        list.extend_from_slice(extra);
        headers(&list)
    }

    fn allow() -> AllowList {
        AllowList::serving("127.0.0.1:8080".parse().unwrap())
    }

    #[test]
    fn an_http_1_0_request_or_one_without_host_is_not_upgraded() {
        let old = check(&Method::GET, Version::HTTP_10, &with(&[]), None, &allow());
        assert_eq!(old.unwrap_err().status, StatusCode::BAD_REQUEST);
        let mut hostless = with(&[]);
        hostless.remove(http::header::HOST);
        let no_host = check(&Method::GET, Version::HTTP_11, &hostless, None, &allow());
        assert_eq!(
            no_host.unwrap_err().reason,
            "a WebSocket handshake needs a Host header"
        );
    }

    #[test]
    fn rfc_example_key_gives_rfc_accept_value() {
        let ok = check(&Method::GET, Version::HTTP_11, &with(&[]), None, &allow()).unwrap();
        assert_eq!(ok.accept_key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(ok.transport, Transport::Rfc6455);
    }

    #[test]
    fn flash_is_origin_without_user_agent() {
        let flash = check(
            &Method::GET,
            Version::HTTP_11,
            &with(&[("origin", "http://gw:8080")]),
            None,
            &allow(),
        )
        .unwrap();
        assert_eq!(flash.transport, Transport::Flash);
        let browser = with(&[("origin", "http://gw:8080"), ("user-agent", "Mozilla/5.0")]);
        assert_eq!(
            check(&Method::GET, Version::HTTP_11, &browser, None, &allow())
                .unwrap()
                .transport,
            Transport::Rfc6455
        );
    }

    #[test]
    fn query_overrides_the_transport_guess() {
        assert_eq!(
            check(
                &Method::GET,
                Version::HTTP_11,
                &with(&[]),
                Some("flash=1"),
                &allow()
            )
            .unwrap()
            .transport,
            Transport::Flash
        );
        let flash_shape = with(&[("origin", "http://gw:8080")]);
        assert_eq!(
            check(
                &Method::GET,
                Version::HTTP_11,
                &flash_shape,
                Some("flash=0"),
                &allow()
            )
            .unwrap()
            .transport,
            Transport::Rfc6455
        );
    }

    #[test]
    fn foreign_origin_is_forbidden() {
        let err = check(
            &Method::GET,
            Version::HTTP_11,
            &with(&[("origin", "http://evil.example")]),
            None,
            &allow(),
        )
        .unwrap_err();
        assert_eq!(err.status, StatusCode::FORBIDDEN);
    }

    #[test]
    fn wrong_version_missing_key_and_plain_get_are_refused() {
        let mut old = headers(&BASE);
        old.insert("sec-websocket-version", "8".parse().unwrap());
        assert_eq!(
            check(&Method::GET, Version::HTTP_11, &old, None, &allow())
                .unwrap_err()
                .status,
            StatusCode::UPGRADE_REQUIRED
        );
        let mut no_key = with(&[]);
        no_key.remove("sec-websocket-key");
        assert_eq!(
            check(&Method::GET, Version::HTTP_11, &no_key, None, &allow())
                .unwrap_err()
                .status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            check(
                &Method::GET,
                Version::HTTP_11,
                &headers(&[("host", "x")]),
                None,
                &allow()
            )
            .unwrap_err()
            .status,
            StatusCode::UPGRADE_REQUIRED
        );
        assert_eq!(
            check(&Method::POST, Version::HTTP_11, &with(&[]), None, &allow())
                .unwrap_err()
                .status,
            StatusCode::METHOD_NOT_ALLOWED
        );
    }

    #[test]
    fn rooms_are_checked() {
        assert_eq!(
            check(
                &Method::GET,
                Version::HTTP_11,
                &with(&[]),
                Some("room=lobby-1"),
                &allow()
            )
            .unwrap()
            .room
            .as_deref(),
            Some("lobby-1")
        );
        for bad in ["room=", "room=a/b", "room=%2e%2e"] {
            assert_eq!(
                check(
                    &Method::GET,
                    Version::HTTP_11,
                    &with(&[]),
                    Some(bad),
                    &allow()
                )
                .unwrap_err()
                .status,
                StatusCode::BAD_REQUEST
            );
        }
    }
}
