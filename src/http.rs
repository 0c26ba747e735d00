//! Routing HTTP requests on the main port: WebSocket routes (each owns its path and
//! everything under it), the asset listing, the Ruffle configuration, and static files.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::backend::{Admitted, Ask};
use crate::body::{Body, javascript, text};
use crate::gateway::Gateway;
use crate::routes::Route;
use crate::shutdown::ConnGuard;
use crate::ws::{self, handshake};

/// Routes one request.
pub async fn handle(
    req: Request<Incoming>,
    gw: Arc<Gateway>,
    peer: SocketAddr,
    guard: ConnGuard,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path();
    if let Some((route, rest)) = gw.routes.find(path) {
        if !rest.is_empty() {
            let why = format!("no such endpoint under {}", route.path);
            return Ok(text(StatusCode::NOT_FOUND, &why));
        }
        return Ok(upgrade(req, route, &gw, peer, guard));
    }
    if path == "/assets.json" {
        return Ok(match *req.method() {
            Method::GET | Method::HEAD => gw.files.listing().await,
            _ => text(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD"),
        });
    }
    if path == "/ruffle-config.js" {
        return Ok(match *req.method() {
            Method::GET | Method::HEAD => javascript(gw.ruffle_config.clone()),
            _ => text(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD"),
        });
    }
    Ok(gw.files.serve(req, &gw.allow).await)
}

/// Answers a WebSocket upgrade request on `route`: 101 and a session, or an error status.
fn upgrade(
    mut req: Request<Incoming>,
    route: &Route,
    gw: &Gateway,
    peer: SocketAddr,
    guard: ConnGuard,
) -> Response<Body> {
    let checked = handshake::check(
        req.method(),
        req.version(),
        req.headers(),
        req.uri().query(),
        &gw.allow,
    );
    let accepted = match checked {
        Ok(accepted) => accepted,
        Err(rejection) => {
            let origin = req
                .headers()
                .get(http::header::ORIGIN)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            tracing::warn!(%peer, route = %route.path, origin, status = rejection.status.as_u16(), reason = rejection.reason, "websocket refused");
            return rejection.response();
        }
    };
    // The room key: the route, and the room the client asked for.
    let room = match &accepted.room {
        Some(name) => format!("{}?room={name}", route.path),
        None => route.path.clone(),
    };
    let ask = Ask {
        room: &room,
        target: accepted.target.as_deref(),
    };
    let backend = route.backend.name();
    let admitted = match route.backend.admit(&ask) {
        Ok(admitted) => admitted,
        Err(why) => {
            tracing::warn!(%peer, route = %route.path, backend, requested = ask.target.unwrap_or(""), "backend refused the client: {why}");
            return text(StatusCode::FORBIDDEN, &why);
        }
    };
    let client = |transport| ws::Client {
        peer,
        transport,
        guard,
    };
    match admitted {
        Admitted::Messages(handler) => {
            let transport = accepted.transport;
            tracing::info!(%peer, %transport, route = %route.path, backend, "websocket handshake");
            gw.ws
                .upgrade(&mut req, &accepted, handler, client(transport))
        }
        Admitted::Bytes(relay) => {
            // Raw bytes need binary frames, whatever the handshake looks like.
            let transport = crate::session::Transport::Rfc6455;
            tracing::info!(%peer, %transport, route = %route.path, backend, target = %relay.target, "websocket handshake");
            gw.ws
                .upgrade_bytes(&mut req, &accepted, relay, client(transport))
        }
    }
}
