//! HTTP response bodies, and the small responses every layer writes.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full, combinators::UnsyncBoxBody};

/// The response body of every handler.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// Any body of ours, boxed.
pub fn boxed<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes, Error = std::io::Error> + Send + 'static,
{
    body.boxed_unsync()
}

/// An empty body.
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A plain-text response; the body is `message` and a newline.
pub fn text(status: StatusCode, message: &str) -> Response<Body> {
    let body = Full::new(Bytes::from(format!("{message}\n")))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut res = Response::new(body);
    *res.status_mut() = status;
    res.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// A JSON response.
pub fn json(value: &serde_json::Value) -> Response<Body> {
    let body = Full::new(Bytes::from(value.to_string()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut res = Response::new(body);
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// A generated script, never cached (it follows the configuration).
pub fn javascript(source: Bytes) -> Response<Body> {
    generated(source, "text/javascript; charset=utf-8")
}

/// A document generated from the configuration, of media type `kind`, never cached.
pub fn generated(source: Bytes, kind: &'static str) -> Response<Body> {
    let mut res = Response::new(
        Full::new(source)
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}
