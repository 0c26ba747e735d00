//! Taking an upgraded connection back from hyper: the TCP stream itself, with whatever the
//! client sent after its request head that the HTTP parser had already read.

use std::future::Future;

use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_util::task::TaskTracker;

use super::conn::Conn;
use crate::handoff::Handing;

/// Runs `serve` on `tracker` with the connection once `req` is upgraded (once its 101
/// answer is written).
pub fn when_upgraded<F, Fut>(tracker: &TaskTracker, req: &mut Request<Incoming>, serve: F)
where
    F: FnOnce(Conn) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let on_upgrade = hyper::upgrade::on(req);
    tracker.spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                tracing::debug!(%error, "upgrade failed");
                return;
            }
        };
        // Back to the TCP stream itself (no boxed I/O on the hot path), with whatever
        // the client sent after its handshake that the HTTP parser already read.
        let Ok(parts) = upgraded.downcast::<TokioIo<Handing>>() else {
            tracing::error!("upgraded connection is not a TCP stream");
            return;
        };
        let Some(io) = parts.io.into_inner().into_inner() else {
            tracing::error!("upgraded connection was handed off");
            return;
        };
        let (tcp, prefix) = io.into_parts();
        let pending = if prefix.is_empty() {
            parts.read_buf
        } else {
            [prefix, parts.read_buf].concat().into()
        };
        serve(Conn::new(tcp, pending)).await;
    });
}
