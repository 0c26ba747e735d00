//! The WebSocket endpoint: upgrading an HTTP request ([`handshake`]) and running the
//! connection as a [`session::WsSession`] against its backend.

pub mod conn;
pub mod handshake;
pub mod session;

use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{CONNECTION, SEC_WEBSOCKET_ACCEPT, UPGRADE};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tungstenite::protocol::{Role, WebSocketConfig};

use crate::backend::{self, Target};
use crate::config::{BackendKind, Limits, Route};
use crate::http::{Body, text};
use crate::prefixed::Prefixed;
use crate::server::{ConnGuard, Gateway};
use crate::session::Transport;
use conn::Conn;
use session::WsSession;
use tokio::net::TcpStream;

/// The tungstenite settings for the limits: a small read buffer and no write buffer, so an
/// idle connection is cheap ([`conn::Conn`] batches reads and writes instead).
pub fn ws_config(limits: &Limits) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_write_buffer_size(limits.max_message_size.saturating_mul(2).max(1 << 20))
        .max_message_size(Some(limits.max_message_size))
        .max_frame_size(Some(limits.max_message_size))
}

/// Answers an upgrade request on `route`: 101 and a session task, or an error status.
pub fn upgrade(
    mut req: Request<Incoming>,
    route: &Route,
    gw: &Arc<Gateway>,
    peer: SocketAddr,
    guard: &ConnGuard,
) -> Response<Body> {
    let accepted = match handshake::check(req.method(), req.headers(), req.uri().query(), &gw.allow)
    {
        Ok(accepted) => accepted,
        Err(rejection) => {
            let origin = req
                .headers()
                .get(http::header::ORIGIN)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            tracing::warn!(%peer, route = %route.path, origin, status = rejection.status.as_u16(), reason = rejection.reason, "websocket refused");
            let mut res = text(rejection.status, rejection.reason);
            if rejection.status == StatusCode::UPGRADE_REQUIRED {
                // RFC 9110 15.5.22: a 426 names the protocol in Upgrade; RFC 6455 4.2.2:
                // and the WebSocket versions the server speaks.
                let headers = res.headers_mut();
                headers.insert(UPGRADE, http::HeaderValue::from_static("websocket"));
                headers.insert(
                    http::header::SEC_WEBSOCKET_VERSION,
                    http::HeaderValue::from_static("13"),
                );
            }
            return res;
        }
    };
    let mut transport = accepted.transport;
    let mut proxy = None;
    if route.backend == BackendKind::Proxy {
        match gw.targets.pick(accepted.target.as_deref()) {
            Ok(target) => proxy = Some(target.clone()),
            Err(why) => {
                tracing::warn!(%peer, route = %route.path, requested = accepted.target.as_deref().unwrap_or(""), "socket proxy refused: {why}");
                return text(StatusCode::FORBIDDEN, &why);
            }
        }
        // Raw bytes need binary frames, whatever the handshake looks like.
        transport = Transport::Rfc6455;
    }
    let room = match &accepted.room {
        Some(name) => format!("{}?room={name}", route.path),
        None => route.path.clone(),
    };
    match &proxy {
        Some(target) => {
            tracing::info!(%peer, %transport, route = %route.path, backend = route.backend.as_str(), %target, "websocket handshake")
        }
        None => {
            tracing::info!(%peer, %transport, route = %route.path, backend = route.backend.as_str(), "websocket handshake")
        }
    }

    let on_upgrade = hyper::upgrade::on(&mut req);
    let gw2 = gw.clone();
    let kind = route.backend;
    let guard = guard.clone();
    gw.tracker.spawn(async move {
        let _guard = guard;
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                tracing::debug!(%peer, %error, "upgrade failed");
                return;
            }
        };
        // Back to the TCP stream itself (no boxed I/O on the hot path), with whatever the
        // client sent after its handshake that the HTTP parser already read.
        let Ok(parts) = upgraded.downcast::<TokioIo<Prefixed<TcpStream>>>() else {
            tracing::error!(%peer, "upgraded connection is not a TCP stream");
            return;
        };
        let (tcp, prefix) = parts.io.into_inner().into_parts();
        let pending = if prefix.is_empty() {
            parts.read_buf
        } else {
            [prefix, parts.read_buf].concat().into()
        };
        let limits = &gw2.config.limits;
        let ws = WebSocketStream::from_raw_socket(
            Conn::new(tcp, pending),
            Role::Server,
            Some(ws_config(limits)),
        )
        .await;
        let mut session = WsSession::new(
            ws,
            transport,
            peer,
            gw2.shutdown.signal(),
            limits.idle_timeout,
            limits.max_message_size,
        );
        let target = Target {
            kind,
            room,
            rooms: &gw2.rooms,
            send_queue: limits.send_queue,
            proxy,
            connect_timeout: limits.handshake_timeout,
        };
        backend::run(target, &mut session).await;
        tracing::debug!(%peer, %transport, "websocket closed");
    });

    let mut res = Response::new(crate::http::empty());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = res.headers_mut();
    headers.insert(UPGRADE, http::HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, http::HeaderValue::from_static("Upgrade"));
    headers.insert(
        SEC_WEBSOCKET_ACCEPT,
        accepted
            .accept_key
            .parse()
            .expect("base64 is a valid header value"),
    );
    res
}
