//! The WebSocket endpoint: upgrading an HTTP request ([`handshake`]) and running the
//! connection as a [`session::WsSession`] against its backend; a connection that goes silent
//! sleeps ([`hibernate`]) and is served again by a new session when it wakes.

pub mod boundary;
pub mod conn;
pub mod frame;
pub mod handshake;
pub mod hibernate;
pub mod inbound;
pub mod session;
pub mod stream;

use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{CONNECTION, SEC_WEBSOCKET_ACCEPT, UPGRADE};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tungstenite::protocol::{Role, WebSocketConfig};

use crate::backend::Outcome;
use crate::backend::broadcast::{Claim, Membership};
use crate::backend::proxy::{self, ProxyTarget};
use crate::backend::{self, Target};
use crate::config::{BackendKind, Limits, Route};
use crate::http::{Body, text};
use crate::prefixed::Prefixed;
use crate::server::{ConnGuard, Gateway};
use crate::session::{CloseReason, Session, Transport};
use bytes::Bytes;
use conn::Conn;
use futures_util::FutureExt;
use hibernate::{Client, Parked, Seat, Wake};
use session::WsSession;
use stream::WsStream;
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
    // Boxed: what the task captures it keeps for its whole life.
    let client = Client {
        peer,
        transport,
        guard: guard.clone(),
    };
    let plan = Box::new((client, route.backend, room, proxy));
    gw.tracker.spawn(async move {
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
        let (client, kind, room, proxy) = *plan;
        let start = Start {
            conn: Conn::new(tcp, pending),
            client,
            kind,
            room,
            proxy,
            wake: None,
            member: None,
        };
        serve(gw2, Box::new(start)).await;
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

/// What a connection's session starts from.
struct Start {
    conn: Conn,
    client: Client,
    kind: BackendKind,
    /// The broadcast room key.
    room: String,
    /// The socket proxy's target.
    proxy: Option<ProxyTarget>,
    /// Why a sleeping connection was woken.
    wake: Option<Wake>,
    /// A sleeping broadcast member's place.
    member: Option<Membership>,
}

/// Runs a WebSocket connection against its backend until it closes or falls asleep.
///
/// `start` comes boxed and is unpacked at once: an `async fn` keeps its arguments for its
/// whole life, and each open connection would carry them twice.
async fn serve(gw: Arc<Gateway>, start: Box<Start>) {
    let Start {
        conn,
        client,
        kind,
        room,
        proxy,
        wake,
        mut member,
    } = *start;
    let gw = &gw;
    let limits = &gw.config.limits;
    // The socket proxy relays bytes, not messages: a session that frames by hand.
    if let Some(to) = proxy {
        let mut stream =
            WsStream::new(conn, client.peer, gw.shutdown.signal(), limits.idle_timeout);
        proxy::run(&mut stream, &to, limits.handshake_timeout).await;
        tracing::debug!(peer = %client.peer, "socket proxy closed");
        return;
    }
    let target = Target {
        kind,
        room,
        rooms: &gw.rooms,
    };
    let sleepy = matches!(target.kind, BackendKind::Echo | BackendKind::Broadcast)
        && !limits.hibernate_after.is_zero();
    let owes = conn.has_unsent();
    // Ready at once (no handshake to wait for): not awaited, so not part of the state.
    let ws = WebSocketStream::from_raw_socket(conn, Role::Server, Some(ws_config(limits)))
        .now_or_never()
        .expect("wrapping a socket does not wait");
    let mut session = WsSession::new(
        ws,
        client.transport,
        client.peer,
        gw.shutdown.signal(),
        limits.idle_timeout,
        sleepy.then_some(limits.hibernate_after),
        limits.max_message_size,
    );
    // What a publish could not fit into the socket while the member slept goes first, as
    // soon as the client reads.
    if owes {
        session.unsent();
    }
    // Rare paths first (boxed: their state should not be part of every connection's).
    let mut outcome = match wake {
        // Pinged, it goes back to sleep at once: the answer (or its absence) wakes it.
        Some(Wake::Ping) => match Box::pin(session.ping()).await {
            Ok(()) => Some(Outcome::Asleep(member.take())),
            Err(_) => return leave(gw, member),
        },
        Some(Wake::Expired) => {
            Box::pin(session.close_idle()).await;
            return leave(gw, member);
        }
        Some(Wake::Dropped) => return Box::pin(session.close(CloseReason::TooSlow)).await,
        Some(Wake::Readable) | None => None,
    };
    // One call site for the backend: each `.await` of it could hold its own copy of its state.
    let seat = loop {
        let ran = match outcome.take() {
            Some(outcome) => outcome,
            None => backend::run(&target, &mut session, member.take()).await,
        };
        match ran {
            Outcome::Ended => {
                tracing::debug!(peer = %client.peer, transport = %client.transport, "websocket closed");
                return;
            }
            Outcome::Asleep(None) => break None,
            // A broadcast member keeps its place, unless something came for it meanwhile.
            Outcome::Asleep(Some(asleep)) => {
                let (room, id) = (asleep.room.clone(), asleep.id);
                let flash = client.transport == Transport::Flash;
                match room.doze(asleep, session.raw_fd(), flash) {
                    Ok(()) => break Some((room, id)),
                    Err(awake) => {
                        session.stay_awake();
                        member = Some(awake);
                    }
                }
            }
        }
    };
    let pinged = session.pinged();
    let fd = session.raw_fd();
    let tcp = match session.into_conn().into_inner().into_std() {
        Ok(tcp) => tcp,
        Err(error) => {
            tracing::warn!(peer = %client.peer, %error, "cannot put a connection to sleep");
            return give_up(gw, seat);
        }
    };
    let dozing = seat.as_ref().map(|(room, id)| (room.clone(), *id));
    match gw.hibernation.sleep(Parked { tcp, client, seat }, pinged) {
        Ok(key) => {
            if let Some((room, id)) = dozing {
                room.dozed(id, fd, key);
            }
        }
        // The gateway is stopping: serve it awake (it sees the stop at once).
        Err(parked) => Box::pin(resume(gw.clone(), parked, Wake::Readable)).await,
    }
}

/// Serves a connection that slept, from where it stopped.
pub async fn resume(gw: Arc<Gateway>, parked: Parked, wake: Wake) {
    let Parked { tcp, client, seat } = parked;
    let tcp = match TcpStream::from_std(tcp) {
        Ok(tcp) => tcp,
        Err(error) => {
            tracing::warn!(peer = %client.peer, %error, "cannot wake a sleeping connection");
            return give_up(&gw, seat);
        }
    };
    let mut conn = Conn::new(tcp, Bytes::new());
    let (kind, member, wake) = match seat {
        None => (BackendKind::Echo, None, wake),
        Some((room, id)) => match room.claim(id) {
            Some(Claim::Member(member, owed)) => {
                conn.owe(&owed);
                (BackendKind::Broadcast, Some(member), wake)
            }
            Some(Claim::TooSlow(owed)) => {
                conn.owe(&owed);
                gw.rooms.leave(&room);
                (BackendKind::Broadcast, None, Wake::Dropped)
            }
            // Its place is gone: nothing to serve it with.
            None => {
                gw.rooms.leave(&room);
                return;
            }
        },
    };
    let start = Start {
        conn,
        client,
        kind,
        room: String::new(),
        proxy: None,
        wake: Some(wake),
        member,
    };
    serve(gw, Box::new(start)).await;
}

/// Gives up a broadcast member's place, and its room if it was the last.
fn leave(gw: &Gateway, member: Option<Membership>) {
    if let Some(member) = member {
        let room = member.room.clone();
        drop(member);
        gw.rooms.leave(&room);
    }
}

/// Gives up a sleeping broadcast member's seat (its connection is lost).
fn give_up(gw: &Gateway, seat: Option<Seat>) {
    if let Some((room, id)) = seat {
        // Dropping the claimed place leaves the room.
        drop(room.claim(id));
        gw.rooms.leave(&room);
    }
}
