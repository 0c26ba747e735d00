//! flashgate's own pages and scripts (`web/`, and `assets/flashgate-compat.js`), built into
//! the binary so that it serves them from any directory. A `--web-dir` is served before
//! them (a page of the same name there wins); the third-party files never are embedded.
//! Each answer has the file's type, an `ETag` from its sha256 (so a revalidation is a 304)
//! and no body for `HEAD`.

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use rust_embed::{Embed, EmbeddedFile};

use crate::body::{Body, empty};

/// `web/`.
#[derive(Embed)]
#[folder = "web/"]
struct Pages;

/// Our own files in `assets/` (never its `vendor/`, which holds the third-party ones).
#[derive(Embed)]
#[folder = "assets/"]
#[include = "*.js"]
#[exclude = "vendor/*"]
struct Own;

/// The embedded file at URL path `path`, if there is one.
fn find(path: &str) -> Option<EmbeddedFile> {
    let path = path.trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    Pages::get(path).or_else(|| Own::get(path))
}

/// The names of the embedded files.
#[cfg(test)]
pub fn names() -> impl Iterator<Item = String> {
    Pages::iter()
        .chain(Own::iter())
        .map(|name| name.into_owned())
}

/// The answer for an embedded file, or `None` when `req` names none.
fn answer<B>(req: &Request<B>) -> Option<Response<Body>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return None;
    }
    let file = find(req.uri().path())?;
    let length = file.data.len();
    let tag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..12]));
    let tag = HeaderValue::from_str(&tag).expect("hex is a valid header value");
    let fresh = req
        .headers()
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim() == "*" || v.trim().trim_start_matches("W/") == tag);
    let mut res = match (fresh, req.method() == Method::HEAD) {
        (true, _) => {
            let mut res = Response::new(empty());
            *res.status_mut() = StatusCode::NOT_MODIFIED;
            res
        }
        (false, true) => Response::new(empty()),
        (false, false) => {
            // Built in, the bytes are static: shared, not copied.
            let bytes = match file.data {
                Cow::Borrowed(data) => Bytes::from_static(data),
                Cow::Owned(data) => Bytes::from(data),
            };
            Response::new(
                Full::new(bytes)
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
        }
    };
    let headers = res.headers_mut();
    headers.insert(ETAG, tag);
    let kind = HeaderValue::from_str(file.metadata.mimetype()).ok();
    headers.insert(
        CONTENT_TYPE,
        kind.unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if !fresh {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    }
    Some(res)
}

/// The embedded files, in front of `next` (which answers whatever they do not hold).
#[derive(Clone)]
pub struct Embedded<F> {
    next: F,
}

impl<F> Embedded<F> {
    pub fn new(next: F) -> Embedded<F> {
        Embedded { next }
    }
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl<B, F, R> tower::Service<Request<B>> for Embedded<F>
where
    F: tower::Service<Request<B>, Response = Response<R>, Error = Infallible>,
    F::Future: Send + 'static,
    R: http_body::Body<Data = Bytes> + Send + 'static,
    R::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.next.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Answer {
        if let Some(res) = answer(&req) {
            return Box::pin(std::future::ready(Ok(res)));
        }
        let next = self.next.call(req);
        Box::pin(async move {
            let res = next.await?;
            Ok(res.map(|body| body.map_err(std::io::Error::other).boxed_unsync()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_pages_are_in_and_the_third_party_files_are_not() {
        let names: Vec<String> = names().collect();
        for ours in [
            "index.html",
            "flashgate.js",
            "legacy.html",
            "flashgate-compat.js",
        ] {
            assert!(
                names.iter().any(|n| n == ours),
                "{ours} not embedded: {names:?}"
            );
        }
        assert!(!names.iter().any(|n| n.starts_with("vendor/")), "{names:?}");
        assert!(find("/").is_some() && find("/index.html").is_some());
        assert!(find("/web_socket.js").is_none());
    }

    #[test]
    fn a_revalidation_with_the_etag_is_a_304() {
        let get = Request::get("/flashgate.js").body(()).unwrap();
        let first = answer(&get).unwrap();
        assert_eq!(first.status(), StatusCode::OK);
        let tag = first.headers()[ETAG].clone();
        assert!(
            first.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .contains("javascript")
        );
        let again = Request::get("/flashgate.js")
            .header(IF_NONE_MATCH, tag)
            .body(())
            .unwrap();
        assert_eq!(answer(&again).unwrap().status(), StatusCode::NOT_MODIFIED);
        let post = Request::post("/flashgate.js").body(()).unwrap();
        assert!(answer(&post).is_none());
    }
}
