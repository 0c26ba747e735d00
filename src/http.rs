//! Routing HTTP requests on the main port: WebSocket routes (each owns its path and
//! everything under it), the asset listing, the Ruffle configuration, and static files.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http::header;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::backend::relay::Hello;
use crate::backend::{Admitted, Ask, ByteHandler};
use crate::body::{Body, generated, javascript, text};
use crate::gateway::Gateway;
use crate::routes::Route;
use crate::session::Transport;
use crate::shutdown::ConnGuard;
use crate::sockjs::{self, path::Endpoint as At, path::Kind, websocket::Framed};
use crate::tally::{Counted, CountedBytes, Tally};
use crate::ws::hixie76::{self, handshake::Draft};
use crate::ws::{self, handshake};

/// Routes one request.
pub async fn handle(
    req: Request<Incoming>,
    gw: Arc<Gateway>,
    peer: SocketAddr,
    local: SocketAddr,
    guard: ConnGuard,
) -> Result<Response<Body>, Infallible> {
    // The URI's own bytes are shared, not copied.
    let uri = req.uri().clone();
    let path = uri.path();
    if let Some((route, rest)) = gw.routes.find(path) {
        // `Upgrade: websocket` alone: the handshake checks the rest.
        let upgrading = handshake::has_token(req.headers(), &header::UPGRADE, "websocket");
        if rest.is_empty() && (upgrading || !route.sockjs.enabled) {
            return Ok(upgrade(req, route, &gw, (peer, local), guard, Framing::Plain).await);
        }
        let at = match route.sockjs.enabled {
            true => sockjs::path::parse(rest),
            false => None,
        };
        let Some(at) = at else {
            let why = format!("no such endpoint under {}", route.path);
            return Ok(text(StatusCode::NOT_FOUND, &why));
        };
        let framing = match at {
            At::RawWebsocket => Framing::Plain,
            At::Session {
                kind: Kind::Websocket,
                ..
            } => Framing::Sockjs,
            at => return Ok(comet(req, route, at, &gw, peer, local).await),
        };
        if !route.sockjs.websocket {
            return Ok(text(
                StatusCode::NOT_FOUND,
                "websocket is off on this route",
            ));
        }
        if req.method() != Method::GET {
            return Ok(sockjs::pages::not_allowed("GET"));
        }
        if !handshake::is_upgrade(req.headers()) {
            return Ok(text(
                StatusCode::BAD_REQUEST,
                "Can \"Upgrade\" only to \"WebSocket\".",
            ));
        }
        return Ok(upgrade(req, route, &gw, (peer, local), guard, framing).await);
    }
    if path == "/assets.json" {
        return Ok(match *req.method() {
            Method::GET | Method::HEAD => gw.files.listing().await,
            _ => text(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD"),
        });
    }
    if path == "/crossdomain.xml" {
        return Ok(match *req.method() {
            Method::GET | Method::HEAD => {
                generated(gw.policies.url.clone(), crate::policy::url::CONTENT_TYPE)
            }
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

/// How a WebSocket's messages are framed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// As they are.
    Plain,
    /// In SockJS frames.
    Sockjs,
}

/// A SockJS request that is not a WebSocket, for the SockJS transport.
async fn comet(
    req: Request<Incoming>,
    route: &Route,
    at: At<'_>,
    gw: &Gateway,
    peer: SocketAddr,
    local: SocketAddr,
) -> Response<Body> {
    let query = req.uri().query().map(str::to_owned);
    // SockJS's URLs carry its own query: the server is told none.
    let hello = (route.backend.wants_hello()).then(|| hello_of(Transport::SockjsXhr, &req));
    let ask = sockjs::Ask {
        route: &route.path,
        options: &route.sockjs,
        allow: &gw.allow,
        peer,
        client: gw.slots.per_ip().client(peer.ip(), req.headers()),
    };
    let admit = |transport| {
        let room = room_key(route, query.as_deref()).map_err(|why| why.reason.to_string())?;
        let hello = hello.map(|hello| Hello { transport, ..hello });
        match route.backend.admit(Ask {
            room: &room,
            target: None,
            addrs: (peer, local),
            hello,
            stream: None,
        })? {
            Admitted::Messages(handler) => {
                let tally = Tally::new(route.traffic.clone(), peer, transport.as_str());
                Ok(Counted::new(handler, tally))
            }
            Admitted::Bytes(_) => {
                Err("SockJS carries text: this route's backend relays bytes".into())
            }
        }
    };
    // Boxed: the SockJS answer is large, and rare next to a WebSocket's.
    Box::pin(gw.sockjs.handle(req, at, ask, admit)).await
}

/// What a relayed client's request tells its server: its headers, and whether it came
/// over TLS (`X-Forwarded-Proto: https`).
fn hello_of(transport: Transport, req: &Request<Incoming>) -> Hello {
    Hello {
        tls: req.extensions().get::<crate::stream::Secure>().is_some(),
        ..Hello::from_headers(transport, req.headers())
    }
}

/// The room key: the route, and the room the client asked for.
fn room_key(route: &Route, query: Option<&str>) -> Result<String, handshake::Rejection> {
    let asked = query
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("room="));
    Ok(match asked {
        Some(name) => format!("{}?room={}", route.path, handshake::check_room(name)?),
        None => route.path.clone(),
    })
}

/// Answers a WebSocket upgrade request on `route`: 101 and a session, or an error status.
/// A relayed client's server is connected first, so that its choice of subprotocol is the
/// client's.
async fn upgrade(
    mut req: Request<Incoming>,
    route: &Route,
    gw: &Gateway,
    addrs: (SocketAddr, SocketAddr),
    guard: ConnGuard,
    framing: Framing,
) -> Response<Body> {
    let (peer, local) = addrs;
    if handshake::is_upgrade(req.headers()) {
        let client = gw.slots.per_ip().client(peer.ip(), req.headers());
        let counted = (gw.slots.handshake(client)).and_then(|()| guard.count_against(client));
        if let Err(refused) = counted {
            tracing::info!(%peer, %client, route = %route.path, "websocket refused: {}", refused.message());
            return too_many(&refused);
        }
    }
    if handshake::is_upgrade(req.headers())
        && let Some(draft) = hixie76::handshake::draft_of(req.headers())
    {
        return upgrade_hixie(req, route, gw, (peer, local), guard, framing, draft).await;
    }
    let checked = handshake::check(
        req.method(),
        req.version(),
        req.headers(),
        req.uri().query(),
        &gw.allow,
    );
    let mut accepted = match checked {
        Ok(accepted) => accepted,
        Err(rejection) => {
            refused(&req, (peer, gw), route, None, &rejection);
            return rejection.response();
        }
    };
    let room = match &accepted.room {
        Some(name) => format!("{}?room={name}", route.path),
        None => route.path.clone(),
    };
    let transport = match framing {
        Framing::Sockjs => Transport::SockjsWebsocket,
        Framing::Plain => accepted.transport,
    };
    let hello = route.backend.wants_hello().then(|| Hello {
        query: (framing == Framing::Plain)
            .then(|| req.uri().query().map(str::to_owned))
            .flatten(),
        ..hello_of(transport, &req)
    });
    let requested = accepted.target.as_deref();
    let ask = Ask {
        room: &room,
        target: requested,
        addrs: (peer, local),
        hello,
        stream: (framing == Framing::Plain).then_some(transport),
    };
    let backend = route.backend.name();
    let admitted = match route.backend.admit(ask) {
        Ok(admitted) => admitted,
        Err(why) => {
            tracing::warn!(%peer, route = %route.path, backend, requested = requested.unwrap_or(""), "backend refused the client: {why}");
            gw.metrics.refused(403, true);
            return text(StatusCode::FORBIDDEN, &why);
        }
    };
    let tally = |transport| Tally::new(route.traffic.clone(), peer, transport);
    let client = |transport: Transport, label: &'static str| {
        guard.counts_in(label);
        ws::Client {
            peer,
            transport,
            guard,
        }
    };
    match admitted {
        Admitted::Messages(mut handler) => {
            let protocol = handler.connect().await;
            tracing::info!(%peer, %transport, route = %route.path, backend, "websocket handshake");
            let handler = Counted::new(handler, tally(transport.as_str()));
            match framing {
                Framing::Sockjs => {
                    let handler = Framed::new(handler, route.sockjs.heartbeat);
                    gw.sockjs_ws.upgrade(
                        &mut req,
                        &accepted,
                        handler,
                        client(transport, transport.as_str()),
                    )
                }
                Framing::Plain => {
                    accepted.protocol = protocol;
                    gw.ws.upgrade(
                        &mut req,
                        &accepted,
                        handler,
                        client(transport, transport.as_str()),
                    )
                }
            }
        }
        Admitted::Bytes(_) if framing == Framing::Sockjs => text(
            StatusCode::FORBIDDEN,
            "SockJS carries text: this route's backend relays bytes",
        ),
        Admitted::Bytes(mut relay) => {
            accepted.protocol = relay.connect().await;
            // The socket proxy's raw bytes need binary frames, whatever the handshake looks
            // like; a relay's stream is the client's own.
            let (transport, label) = match relay {
                ByteHandler::Proxy(_) => (Transport::Rfc6455, "proxy"),
                ByteHandler::Relay(_) | ByteHandler::Frames(_) => (transport, transport.as_str()),
            };
            tracing::info!(%peer, %transport, route = %route.path, backend, target = %relay.server(), "websocket handshake");
            let relay = CountedBytes::new(relay, tally(label));
            gw.ws
                .upgrade_bytes(&mut req, &accepted, relay, client(transport, label))
        }
    }
}

/// Answers a hixie-76 (or hixie-75) upgrade request on `route`: its 101 head and a session,
/// or an error status. As for RFC 6455, but the room comes from the query alone, and a
/// byte-stream backend is refused: the drafts have text frames only.
async fn upgrade_hixie(
    mut req: Request<Incoming>,
    route: &Route,
    gw: &Gateway,
    addrs: (SocketAddr, SocketAddr),
    guard: ConnGuard,
    framing: Framing,
    draft: Draft,
) -> Response<Body> {
    let (peer, local) = addrs;
    let resource = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let checked = hixie76::handshake::check(
        draft,
        req.method(),
        req.version(),
        req.headers(),
        resource,
        &gw.allow,
    )
    .and_then(|opening| Ok((room_key(route, req.uri().query())?, opening)));
    let (room, opening) = match checked {
        Ok(checked) => checked,
        Err(rejection) => {
            refused(
                &req,
                (peer, gw),
                route,
                Some(Transport::Hixie76),
                &rejection,
            );
            return closing(rejection.response());
        }
    };
    let hello = route.backend.wants_hello().then(|| Hello {
        query: (framing == Framing::Plain)
            .then(|| req.uri().query().map(str::to_owned))
            .flatten(),
        ..hello_of(Transport::Hixie76, &req)
    });
    let ask = Ask {
        room: &room,
        target: None,
        addrs: (peer, local),
        hello,
        stream: None,
    };
    let backend = route.backend.name();
    let mut handler = match route.backend.admit(ask) {
        Ok(Admitted::Messages(handler)) => handler,
        Ok(Admitted::Bytes(_)) => {
            let refused = handshake::Rejection {
                status: StatusCode::UPGRADE_REQUIRED,
                reason: "this route relays bytes in binary messages, which hixie-76 does not have: \
                         connect with RFC 6455",
            };
            tracing::warn!(%peer, transport = %Transport::Hixie76, route = %route.path, backend, "websocket refused: a byte stream needs binary messages");
            gw.metrics.refused(refused.status.as_u16(), false);
            return closing(refused.response());
        }
        Err(why) => {
            tracing::warn!(%peer, transport = %Transport::Hixie76, route = %route.path, backend, "backend refused the client: {why}");
            gw.metrics.refused(403, true);
            return closing(text(StatusCode::FORBIDDEN, &why));
        }
    };
    // The drafts' answer names the subprotocol the client asked for, as it is.
    let _ = handler.connect().await;
    let transport = Transport::Hixie76;
    guard.counts_in(transport.as_str());
    let client = ws::Client {
        peer,
        transport,
        guard,
    };
    let handler = Counted::new(
        handler,
        Tally::new(route.traffic.clone(), peer, transport.as_str()),
    );
    let sockjs = framing == Framing::Sockjs;
    tracing::info!(%peer, %transport, draft = ?draft, sockjs, route = %route.path, backend, "websocket handshake");
    match sockjs {
        true => {
            let handler = Framed::new(handler, route.sockjs.heartbeat);
            gw.sockjs_ws
                .upgrade_hixie(&mut req, &opening, handler, client)
        }
        false => gw.ws.upgrade_hixie(&mut req, &opening, handler, client),
    }
}

/// `res`, closing the connection after it: a refused hixie-76 request's 8-byte body follows
/// its head, and must not be read as the next request.
fn closing(mut res: Response<Body>) -> Response<Body> {
    res.headers_mut()
        .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
    res
}

/// 429, for a client over a limit per address, with when to try again.
fn too_many(refused: &crate::per_ip::Refused) -> Response<Body> {
    let mut res = closing(text(StatusCode::TOO_MANY_REQUESTS, refused.message()));
    res.headers_mut()
        .insert(header::RETRY_AFTER, refused.retry_after.into());
    res
}

/// Logs a refused WebSocket handshake, with the origin it came from (and its transport,
/// when the handshake tells it).
fn refused(
    req: &Request<Incoming>,
    (peer, gw): (SocketAddr, &Gateway),
    route: &Route,
    transport: Option<Transport>,
    rejection: &handshake::Rejection,
) {
    let origin = (req.headers().get(header::ORIGIN))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let transport = transport.map(tracing::field::display);
    let status = rejection.status.as_u16();
    // A plain HTTP request on a WebSocket route (a curl probe, a crawler) is not news; a
    // handshake that fails is.
    match status {
        405 | 426 => {
            tracing::debug!(%peer, route = %route.path, status, reason = rejection.reason, "websocket refused")
        }
        _ => {
            tracing::info!(%peer, transport, route = %route.path, origin, status, reason = rejection.reason, "websocket refused")
        }
    }
    gw.metrics.refused(status, false);
}
