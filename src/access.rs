//! The access log: one line per HTTP request on the main port (target `flashgate::access`,
//! INFO): the peer, method, path (never the query), status, body length when known, and the
//! time to the response head.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;

use crate::body::Body;
use crate::gateway::Gateway;
use crate::shutdown::ConnGuard;

/// Answers one request, and logs it (target `flashgate::access`).
pub async fn handle(
    req: Request<Incoming>,
    gw: Arc<Gateway>,
    peer: SocketAddr,
    local: SocketAddr,
    guard: ConnGuard,
) -> Result<Response<Body>, Infallible> {
    let started = std::time::Instant::now();
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let res = crate::http::route(req, gw, peer, local, guard).await?;
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
