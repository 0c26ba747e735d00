//! The WebSocket transport (RFC 6455): the handshake ([`handshake`]), then a
//! [`MessageSession`] for message clients or a [`ByteStreamSession`] for the socket proxy's,
//! both over one [`Conn`]; and the hixie-76 and hixie-75 drafts ([`hixie76`]), whose
//! [`HixieSession`] frames by hand over the same connection. A message client that goes silent sleeps ([`hibernate`]): its
//! socket is shared with its room through a delivery handle ([`asleep`]), and a new session
//! serves it when it wakes, with the handler it had.

pub(crate) mod asleep;
pub(crate) mod boundary;
pub(crate) mod byte_session;
pub(crate) mod conn;
pub(crate) mod handshake;
pub(crate) mod hibernate;
pub(crate) mod hixie76;
pub(crate) mod inbound;
pub(crate) mod message_session;
pub(crate) mod outbound;
pub(crate) mod upgraded;
pub(crate) mod watch;

use std::future::Future;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::FutureExt;
use http::header::{CONNECTION, SEC_WEBSOCKET_ACCEPT, UPGRADE};
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_util::task::TaskTracker;
use tungstenite::protocol::{Role, WebSocketConfig};

use crate::body::Body;
use crate::config::Limits;
use crate::session::{
    ByteService, CloseReason, Delivery, Framing, Service, Session, Transport, Woken,
};
use crate::shutdown::Shutdown;
use byte_session::ByteStreamSession;
use conn::Conn;
use handshake::Accepted;
use hibernate::{Hibernation, Parked, Wake, Watch};
use hixie76::handshake::Opening;
use hixie76::session::HixieSession;
use message_session::MessageSession;

pub use hibernate::Client;

/// The tungstenite settings for the limits: a small read buffer and no write buffer, so an
/// idle connection is cheap ([`conn::Conn`] batches reads and writes instead).
fn ws_config(limits: &Limits) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_write_buffer_size(limits.max_message_size.saturating_mul(2).max(1 << 20))
        .max_message_size(Some(limits.max_message_size))
        .max_frame_size(Some(limits.max_message_size))
}

/// The WebSocket endpoint of every route whose clients are served by `M` handlers.
pub struct Endpoint<M> {
    /// Timeouts and sizes.
    limits: Limits,
    /// The stop switch.
    shutdown: Shutdown,
    /// Every connection task, so shutdown can wait for them.
    tracker: TaskTracker,
    /// Sleeping connections.
    hibernation: Arc<Hibernation<M>>,
}

/// What a connection's session starts from.
struct Start<M> {
    conn: Conn,
    client: Client,
    handler: M,
    /// What the new session does first.
    then: Then,
}

/// What a session does first.
enum Then {
    /// Serve the client.
    Serve,
    /// Ping a sleeper whose idle timeout came, and sleep again.
    Ping,
    /// Close a sleeper that did not answer its ping (1001).
    Expire,
    /// Close a sleeper its room dropped as too slow (1008), after what it is owed.
    Drop,
}

impl<M: Service> Endpoint<M> {
    /// A new endpoint, and the epoll set its sleepers wait in, for [`watch`](Self::watch).
    pub fn new(
        limits: Limits,
        shutdown: Shutdown,
        tracker: TaskTracker,
        asleep: prometheus_client::metrics::gauge::Gauge,
    ) -> io::Result<(Arc<Self>, mio::Poll)> {
        let (hibernation, poll) = Hibernation::new(asleep)?;
        let endpoint = Endpoint {
            limits,
            shutdown,
            tracker,
            hibernation: Arc::new(hibernation),
        };
        Ok((Arc::new(endpoint), poll))
    }

    /// The task that wakes sleepers, for the gateway's life.
    pub fn watch(self: &Arc<Self>, poll: mio::Poll) -> impl Future<Output = ()> + Send + use<M> {
        let endpoint = self.clone();
        let watch = Watch {
            stop: self.shutdown.signal(),
            idle_timeout: self.limits.idle_timeout,
            wake: move |parked, why| {
                let task = resume(endpoint.clone(), parked, why);
                endpoint.tracker.spawn(task);
            },
        };
        hibernate::watch(poll, self.hibernation.clone(), watch)
    }

    /// Answers an accepted upgrade request with 101, and serves the connection with
    /// `handler` once it is upgraded.
    pub fn upgrade(
        self: &Arc<Self>,
        req: &mut Request<Incoming>,
        accepted: &Accepted,
        handler: M,
        client: Client,
    ) -> Response<Body> {
        let endpoint = self.clone();
        // Boxed: what the task captures it keeps for its whole life.
        let plan = Box::new((client, handler));
        self.when_upgraded(req, move |conn| {
            let (client, handler) = *plan;
            let then = Then::Serve;
            serve(
                endpoint,
                Box::new(Start {
                    conn,
                    client,
                    handler,
                    then,
                }),
            )
        });
        switching(accepted)
    }

    /// Answers an accepted hixie handshake with its 101 head at once; once the connection
    /// is upgraded, reads the 8-byte body and sends the answer (hixie-76), then serves the
    /// client with `handler`.
    pub fn upgrade_hixie(
        self: &Arc<Self>,
        req: &mut Request<Incoming>,
        opening: &Opening,
        handler: M,
        client: Client,
    ) -> Response<Body> {
        let endpoint = self.clone();
        let keys = opening.keys;
        let scheme = match req.extensions().get::<crate::stream::Secure>() {
            Some(_) => "wss",
            None => "ws",
        };
        let plan = Box::new((client, handler));
        self.when_upgraded(req, move |conn| async move {
            let (client, handler) = *plan;
            let mut session = endpoint.hixie_session(conn, client.peer, handler.sleeps());
            let limit = endpoint.limits.handshake_timeout;
            if let Some(keys) = keys
                && let Err(why) = session.answer(keys, limit).await
            {
                tracing::info!(peer = %client.peer, transport = %client.transport, why, "hixie-76 handshake not finished");
                return;
            }
            serve_hixie(endpoint, session, handler, client).await;
        });
        hixie76::switching(opening, scheme)
    }

    /// A hixie session over `conn`, asleep after `--hibernate-after` if this endpoint's
    /// clients sleep.
    fn hixie_session(&self, conn: Conn, peer: std::net::SocketAddr, sleeps: bool) -> HixieSession {
        let limits = &self.limits;
        let sleepy = !limits.hibernate_after.is_zero() && sleeps && conn.can_sleep();
        HixieSession::new(
            conn,
            peer,
            self.shutdown.signal(),
            limits.idle_timeout,
            sleepy.then_some(limits.hibernate_after),
            limits.max_message_size,
        )
    }

    /// Answers an accepted upgrade request with 101, and relays the connection's byte
    /// stream with `relay` once it is upgraded.
    pub fn upgrade_bytes(
        self: &Arc<Self>,
        req: &mut Request<Incoming>,
        accepted: &Accepted,
        relay: impl ByteService,
        client: Client,
    ) -> Response<Body> {
        let (stop, idle_timeout) = (self.shutdown.clone(), self.limits.idle_timeout);
        self.when_upgraded(req, move |conn| async move {
            let peer = client.peer;
            let intake = relay.intake();
            let mut session =
                ByteStreamSession::new(conn, intake, peer, stop.signal(), idle_timeout);
            relay.serve(&mut session).await;
            drop(client);
        });
        switching(accepted)
    }

    /// Runs `serve` on the connection once `req` is upgraded.
    fn when_upgraded<F, Fut>(&self, req: &mut Request<Incoming>, serve: F)
    where
        F: FnOnce(Conn) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        upgraded::when_upgraded(&self.tracker, req, serve);
    }
}

/// The 101 answer to an accepted handshake.
fn switching(accepted: &Accepted) -> Response<Body> {
    let mut res = Response::new(crate::body::empty());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = res.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(
        SEC_WEBSOCKET_ACCEPT,
        accepted
            .accept_key
            .parse()
            .expect("base64 is a valid header value"),
    );
    if let Some(protocol) = &accepted.protocol {
        headers.insert(http::header::SEC_WEBSOCKET_PROTOCOL, protocol.clone());
    }
    res
}

/// Serves a message client until it closes, or falls asleep.
///
/// `start` comes boxed and is unpacked at once: an `async fn` keeps its arguments for its
/// whole life, and each open connection would carry them twice.
async fn serve<M: Service>(endpoint: Arc<Endpoint<M>>, start: Box<Start<M>>) {
    if start.client.transport == Transport::Hixie76 {
        // Boxed: a hixie session's state should not be part of every connection's.
        return Box::pin(resume_hixie(endpoint, start)).await;
    }
    let Start {
        conn,
        client,
        mut handler,
        then,
    } = *start;
    let limits = &endpoint.limits;
    let sleepy = !limits.hibernate_after.is_zero() && handler.sleeps() && conn.can_sleep();
    let owes = conn.has_unsent();
    // Ready at once (no handshake to wait for): not awaited, so not part of the state.
    let ws = WebSocketStream::from_raw_socket(conn, Role::Server, Some(ws_config(limits)))
        .now_or_never()
        .expect("wrapping a socket does not wait");
    let mut session = MessageSession::new(
        ws,
        client.transport,
        client.peer,
        endpoint.shutdown.signal(),
        limits.idle_timeout,
        sleepy.then_some(limits.hibernate_after),
        limits.max_message_size,
    );
    // What a publish could not fit into the socket while the client slept goes first, as
    // soon as the client reads.
    if owes {
        session.unsent();
    }
    // Rare paths first (boxed: their state should not be part of every connection's).
    let asleep = match then {
        // Pinged, it goes back to sleep at once: the answer (or its absence) wakes it.
        Then::Ping => Box::pin(session.ping()).await.is_ok(),
        Then::Expire => {
            Box::pin(session.close_idle()).await;
            return handler.closed(crate::session::close_code::AWAY);
        }
        Then::Drop => {
            let (code, _) = CloseReason::TooSlow.code();
            Box::pin(session.close(CloseReason::TooSlow)).await;
            return handler.closed(code);
        }
        Then::Serve => {
            handler.serve(&mut session).await;
            session.is_asleep()
        }
    };
    if !asleep {
        tracing::debug!(peer = %client.peer, transport = %client.transport, "websocket closed");
        return;
    }
    let pinged = session.pinged();
    let framing = match client.transport.text_only() {
        true => Framing::Rfc6455Text,
        false => Framing::Rfc6455,
    };
    let conn = session.into_conn();
    lie_down(endpoint, conn, handler, client, pinged, framing);
}

/// Puts a connection whose session fell asleep to bed: its socket in the sleepers' table,
/// its handler told how to reach it (`framing`), and itself in the epoll set; or, when that
/// cannot be, serves it awake again.
fn lie_down<M: Service>(
    endpoint: Arc<Endpoint<M>>,
    conn: Conn,
    mut handler: M,
    client: Client,
    pinged: bool,
    framing: Framing,
) {
    let plain = conn.into_inner().into_plain();
    let tcp = match plain
        .map_err(|_| std::io::Error::other("a TLS connection"))
        .and_then(|tcp| tcp.into_std())
    {
        Ok(tcp) => tcp,
        Err(error) => {
            tracing::warn!(peer = %client.peer, %error, "cannot put a connection to sleep");
            return;
        }
    };
    let beds = endpoint.hibernation.beds();
    let (bed, fd) = match beds.put(tcp) {
        Ok(bed) => bed,
        Err(_) => {
            tracing::warn!(peer = %client.peer, "cannot put a connection to sleep: too many asleep");
            return;
        }
    };
    let delivery = Delivery::new(beds.clone(), bed, framing);
    // Something came for it meanwhile: it goes on awake.
    let awake = handler.sleep(delivery).is_err();
    let parked = Parked {
        bed,
        fd,
        handler,
        client,
        pinged,
    };
    let parked = match awake {
        true => parked,
        // The gateway is stopping, or its room asked for it meanwhile: serve it awake.
        false => match endpoint.hibernation.sleep(parked) {
            Ok(()) => return,
            Err(parked) => parked,
        },
    };
    let task = resume(endpoint.clone(), parked, Wake::Readable);
    endpoint.tracker.spawn(task);
}

/// Serves a hixie client until it closes, or falls asleep.
async fn serve_hixie<M: Service>(
    endpoint: Arc<Endpoint<M>>,
    mut session: HixieSession,
    mut handler: M,
    client: Client,
) {
    handler.serve(&mut session).await;
    if !session.is_asleep() {
        tracing::debug!(peer = %client.peer, transport = %client.transport, "websocket closed");
        return;
    }
    lie_down(
        endpoint,
        session.into_conn(),
        handler,
        client,
        false,
        Framing::Hixie76,
    );
}

/// Serves a hixie client that slept. Its idle timeout, which would ping an RFC 6455 client,
/// closes it: the drafts have no pings.
async fn resume_hixie<M: Service>(endpoint: Arc<Endpoint<M>>, start: Box<Start<M>>) {
    let Start {
        conn,
        client,
        handler,
        then,
    } = *start;
    let mut session = endpoint.hixie_session(conn, client.peer, handler.sleeps());
    match then {
        Then::Serve => serve_hixie(endpoint, session, handler, client).await,
        Then::Ping | Then::Expire => session.close_idle().await,
        Then::Drop => session.close(CloseReason::TooSlow).await,
    }
}

/// Serves a connection that slept, from where it stopped.
fn resume<M: Service>(
    endpoint: Arc<Endpoint<M>>,
    parked: Parked<M>,
    why: Wake,
) -> impl Future<Output = ()> + Send {
    let Parked {
        bed,
        mut handler,
        client,
        ..
    } = parked;
    // The handler takes the client back: its room lets go of the delivery. Then the socket
    // leaves its bed (after a room's write to it in progress): a room that still holds the
    // key reaches no one, and queues for the member instead.
    let woken = handler.wake();
    let taken = endpoint.hibernation.beds().take(bed);
    async move {
        let Some((tcp, owed)) = taken else {
            tracing::error!(peer = %client.peer, "a woken connection's socket was not in its bed");
            return;
        };
        let tcp = match TcpStream::from_std(tcp) {
            Ok(tcp) => tcp,
            Err(error) => {
                tracing::warn!(peer = %client.peer, %error, "cannot wake a sleeping connection");
                return;
            }
        };
        let mut conn = Conn::new(crate::stream::Stream::plain(tcp), Bytes::new());
        conn.owe(&owed);
        let then = match (woken, why) {
            (Woken::Gone, _) => return,
            (Woken::TooSlow, _) => Then::Drop,
            (Woken::Resumed, Wake::Readable) => Then::Serve,
            (Woken::Resumed, Wake::Ping) => Then::Ping,
            (Woken::Resumed, Wake::Expired) => Then::Expire,
        };
        let start = Start {
            conn,
            client,
            handler,
            then,
        };
        serve(endpoint, Box::new(start)).await;
    }
}

#[cfg(test)]
mod sizes;
