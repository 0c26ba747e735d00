//! The SockJS answers that carry no session: the greeting, `/info`, the iframe page, the
//! `OPTIONS` preflights, and the headers every SockJS response shares (caching, CORS, the
//! `JSESSIONID` cookie).

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full};
use sha2::{Digest, Sha256};

use crate::body::{Body, empty};

/// How long what may be cached is: a year, as the protocol advises.
const YEAR: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// A response with `status`, `content_type` (none when empty) and `body`.
pub fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let body: Bytes = body.into();
    let mut res = Response::new(
        Full::new(body)
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *res.status_mut() = status;
    if !content_type.is_empty() {
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    res
}

/// An empty response with `status`.
pub fn bare(status: StatusCode) -> Response<Body> {
    let mut res = Response::new(empty());
    *res.status_mut() = status;
    res
}

/// The protocol's answer to a bad request from a client: its message as plain text, with
/// status 500, as every SockJS client and server expects (`Payload expected.`, `Broken JSON
/// encoding.`, `"callback" parameter required`).
pub fn refused(message: &str) -> Response<Body> {
    response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "text/plain; charset=UTF-8",
        message.to_owned(),
    )
}

/// 405, with the methods that are allowed.
pub fn not_allowed(allow: &'static str) -> Response<Body> {
    let mut res = bare(StatusCode::METHOD_NOT_ALLOWED);
    res.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    res
}

/// Marks a response as never to be cached.
pub fn no_cache(headers: &mut HeaderMap) {
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache, no-transform, must-revalidate, max-age=0"),
    );
}

/// Marks a response as cacheable for a year.
pub fn cache_for_a_year(headers: &mut HeaderMap) {
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000"),
    );
    let expires = httpdate::fmt_http_date(SystemTime::now() + YEAR);
    if let Ok(value) = HeaderValue::from_str(&expires) {
        headers.insert(header::EXPIRES, value);
    }
}

/// The CORS grant for a request whose `Origin` the allow-list accepted (`None`: it sent
/// none): the origin itself with credentials, or `*` without.
pub fn cors(
    headers: &mut HeaderMap,
    origin: Option<&HeaderValue>,
    asked_headers: Option<&HeaderValue>,
) {
    match origin {
        Some(origin) => {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        None => {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
    }
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(asked) = asked_headers.filter(|v| !v.is_empty()) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
}

/// The `JSESSIONID` cookie for load balancers that stick to it: the client's own, or
/// `dummy`.
pub fn jsessionid(headers: &mut HeaderMap, request: &HeaderMap) {
    let theirs = request
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            (name.trim() == "JSESSIONID").then(|| value.trim())
        })
        .filter(|v| {
            !v.is_empty()
                && v.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
        });
    let cookie = format!("JSESSIONID={}; path=/", theirs.unwrap_or("dummy"));
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        headers.insert(header::SET_COOKIE, value);
    }
}

/// The answer to a preflight: cacheable for a year, allowing `methods`.
pub fn options(methods: &'static str) -> Response<Body> {
    let mut res = bare(StatusCode::NO_CONTENT);
    let headers = res.headers_mut();
    cache_for_a_year(headers);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(methods),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("31536000"),
    );
    res
}

/// The greeting at the base URL.
pub fn greeting() -> Response<Body> {
    response(
        StatusCode::OK,
        "text/plain; charset=UTF-8",
        Bytes::from_static(b"Welcome to SockJS!\n"),
    )
}

/// `/info`: what the client needs before it picks a transport, and fresh entropy.
pub fn info(websocket: bool, cookie_needed: bool) -> Response<Body> {
    let mut entropy = [0u8; 4];
    // The entropy only seeds the client's own choice of session id; a failing source
    // leaves it to the client's.
    let _ = getrandom::fill(&mut entropy);
    let body = serde_json::json!({
        "websocket": websocket,
        "cookie_needed": cookie_needed,
        "origins": ["*:*"],
        "entropy": u32::from_le_bytes(entropy),
    });
    let mut res = response(
        StatusCode::OK,
        "application/json; charset=UTF-8",
        body.to_string(),
    );
    no_cache(res.headers_mut());
    res
}

/// The iframe page that loads `sockjs_url` (the copy of sockjs-client flashgate serves),
/// and its entity tag.
pub struct Iframe {
    body: Bytes,
    etag: HeaderValue,
}

impl Iframe {
    /// The page for `sockjs_url`.
    pub fn new(sockjs_url: &str) -> Iframe {
        let body = format!(
            "<!DOCTYPE html>\n<html>\n<head>\n  \
             <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n  \
             <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n  \
             <script src=\"{sockjs_url}\"></script>\n  \
             <script>\n    document.domain = document.domain;\n    \
             SockJS.bootstrap_iframe();\n  </script>\n</head>\n<body>\n  \
             <h2>Don't panic!</h2>\n  \
             <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>\n\
             </body>\n</html>"
        );
        let digest = Sha256::digest(body.as_bytes());
        let etag = format!("\"{}\"", hex::encode(&digest[..12]));
        Iframe {
            body: Bytes::from(body),
            etag: HeaderValue::from_str(&etag).expect("hex is a valid header"),
        }
    }

    /// The page, or 304 when the client has it (`If-None-Match`). Only the gateway's own
    /// pages and `frame_ancestors` may frame it: its transports speak to the gateway as the
    /// gateway's own origin, for whichever page framed it.
    pub fn answer(&self, request: &HeaderMap, frame_ancestors: Option<String>) -> Response<Body> {
        let fresh = request
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|tag| tag.trim() == self.etag || tag.trim() == "*");
        let mut res = match fresh {
            true => bare(StatusCode::NOT_MODIFIED),
            false => response(
                StatusCode::OK,
                "text/html; charset=UTF-8",
                self.body.clone(),
            ),
        };
        let headers = res.headers_mut();
        cache_for_a_year(headers);
        headers.insert(header::ETAG, self.etag.clone());
        if let Some(sources) = frame_ancestors
            && let Ok(policy) = HeaderValue::from_str(&format!("frame-ancestors {sources}"))
        {
            headers.insert(header::CONTENT_SECURITY_POLICY, policy);
        }
        res
    }
}

/// The htmlfile page's head for `callback`, padded past 1 KiB (browsers render nothing of
/// a page before that).
pub fn htmlfile_head(callback: &str) -> String {
    let mut head = format!(
        "<!doctype html>\n<html><head>\n  \
         <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n  \
         <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n\
         </head><body><h2>Don't panic!</h2>\n  <script>\n    \
         document.domain = document.domain;\n    var c = parent.{callback};\n    \
         c.start();\n    function p(d) {{c.message(d);}};\n    \
         window.onload = function() {{c.stop();}};\n  </script>"
    );
    // The padding is the same for every callback, as the reference server's (which pads
    // its template, where a 14-character placeholder stands for the callback).
    let template = head.len() - callback.len() + "{{ callback }}".len();
    let pad = 1024usize.saturating_sub(template) + 13;
    head.extend(std::iter::repeat_n(' ', pad));
    head.push_str("\r\n\r\n");
    head
}
