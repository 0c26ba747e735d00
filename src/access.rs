//! The access log: one line per HTTP request on the main port (target `flashgate::access`,
//! INFO): the peer, method, path (never the query), status, body length when known, and the
//! time to the response head.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;

use http::{Request, Response};
use hyper::body::Incoming;

use crate::body::Body;

/// Answers `req` with `serve`, and logs it when the access log is on (nothing is kept for
/// it otherwise).
pub async fn logged<F>(
    req: Request<Incoming>,
    peer: SocketAddr,
    serve: impl FnOnce(Request<Incoming>) -> F,
) -> Result<Response<Body>, Infallible>
where
    F: Future<Output = Result<Response<Body>, Infallible>>,
{
    if !tracing::enabled!(target: "flashgate::access", tracing::Level::INFO) {
        return serve(req).await;
    }
    let started = std::time::Instant::now();
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let res = serve(req).await?;
    // A streaming response's length is not known yet.
    let bytes = http_body::Body::size_hint(res.body()).exact();
    tracing::info!(
        target: "flashgate::access",
        %peer,
        %method,
        path = uri.path(),
        status = res.status().as_u16(),
        bytes,
        ms = started.elapsed().as_secs_f64() * 1e3,
        "http"
    );
    Ok(res)
}
