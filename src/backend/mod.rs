//! The built-in backends. They see only the session traits ([`Session`],
//! [`ByteSession`](crate::session::ByteSession)), never a transport.
//!
//! A route's [`Backend`] is built once at start-up and carries what it needs (its rooms, its
//! allowed targets). For each client, [`Backend::admit`] makes the handler that serves it:
//! a [`Handler`] for message clients, a [`ByteHandler`] for a byte stream (the socket
//! proxy's, and a TCP relay's for a client whose frames can pass as one).
//! A `close` route's handler ends each session at once, with the route's code and reason.

pub mod broadcast;
pub mod echo;
pub mod proxy;
pub mod proxy_header;
mod pump;
pub mod relay;
pub mod xmlsocket;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::session::{
    ByteService, ByteSession, CloseReason, Delivery, Intake, Service, Session, Transport, Woken,
};

/// A route's backend.
pub enum Backend {
    /// Each message goes back to its sender.
    Echo,
    /// Each message goes to every client in the same room, the sender included.
    Broadcast(broadcast::Rooms),
    /// Bytes are relayed to a TCP target and back (the socket proxy).
    Proxy {
        /// Where it may connect.
        targets: proxy::Targets,
        /// How long a connection to a target may take.
        connect_timeout: Duration,
        /// How long a write to a target may wait.
        write_timeout: Duration,
    },
    /// Every session is closed at once with this code and reason, passed on as they are
    /// ([`CloseReason::Peer`]): a route under maintenance, say.
    Close(Arc<CloseReason>),
    /// Each client is relayed to the user's own WebSocket, TCP or XMLSocket server.
    Relay(Arc<relay::Upstream>),
}

/// What a client asks of its route's backend.
pub struct Ask<'a> {
    /// The broadcast room, computed by the router from the route and the request.
    pub room: &'a str,
    /// The socket proxy target the client named, if any.
    pub target: Option<&'a str>,
    /// The client's address, and the gateway's address it reached.
    pub addrs: (SocketAddr, SocketAddr),
    /// What the client said, for a route that relays to a WebSocket server
    /// ([`Backend::wants_hello`]).
    pub hello: Option<relay::Hello>,
    /// Set when the client's frames can pass as a byte stream: an RFC 6455 connection
    /// without SockJS framing, of this transport (`rfc6455`, or web-socket-js's `flash`).
    pub stream: Option<Transport>,
}

/// How a backend serves a client it admitted.
pub enum Admitted {
    /// Message by message.
    Messages(Handler),
    /// As a byte stream.
    Bytes(ByteHandler),
}

/// One byte-stream client's handler.
pub enum ByteHandler {
    /// The socket proxy's.
    Proxy(proxy::Relay),
    /// A relay to a TCP or XMLSocket server.
    Relay(relay::Streamed),
    /// A relay to a WebSocket server, frames passed as they are (boxed: it holds the
    /// client's [`relay::Hello`] until it connects).
    Frames(Box<relay::Frames>),
}

impl ByteHandler {
    /// The server it relays to, for logs.
    pub fn server(&self) -> &proxy::ProxyTarget {
        match self {
            ByteHandler::Proxy(relay) => &relay.target,
            ByteHandler::Relay(relay) => relay.server(),
            ByteHandler::Frames(relay) => relay.server(),
        }
    }

    /// Connects a relay to a WebSocket server now, before the client's handshake is
    /// answered, and returns the subprotocol the server chose for it. Other handlers
    /// connect when they serve.
    pub async fn connect(&mut self) -> Option<http::HeaderValue> {
        match self {
            ByteHandler::Frames(relay) => relay.connect().await,
            _ => None,
        }
    }
}

impl ByteService for ByteHandler {
    fn intake(&self) -> Intake {
        match self {
            ByteHandler::Proxy(relay) => relay.intake(),
            ByteHandler::Relay(relay) => relay.intake(),
            ByteHandler::Frames(relay) => relay.intake(),
        }
    }

    async fn serve<S: ByteSession>(self, session: &mut S) {
        match self {
            ByteHandler::Proxy(relay) => relay.serve(session).await,
            ByteHandler::Relay(relay) => relay.serve(session).await,
            ByteHandler::Frames(relay) => relay.serve(session).await,
        }
    }
}

/// One message client's handler.
pub enum Handler {
    /// The backend serves the client on its own, not in a room.
    Solo(Solo),
    /// It is a member of a room.
    Broadcast(broadcast::Membership),
}

/// A relayed client: where to, and what the server is to be told of it.
pub struct RelayTo {
    /// The upstream.
    upstream: Arc<relay::Upstream>,
    /// The client's address, and the gateway's address it reached.
    addrs: (SocketAddr, SocketAddr),
    /// What the client said, until the connection is made.
    hello: Option<relay::Hello>,
    /// The connection, once made ([`Handler::connect`]).
    connected: Option<Result<relay::Connected, String>>,
}

impl RelayTo {
    /// Connects to the server, once.
    async fn connect(&mut self) -> Result<relay::Connected, String> {
        let transport = crate::session::Transport::Rfc6455;
        let hello = self
            .hello
            .take()
            .unwrap_or_else(|| relay::Hello::new(transport));
        relay::connect(&self.upstream, &hello, self.addrs).await
    }
}

/// A handler of a client served on its own. Its own enum, inside [`Handler`], so that a
/// handler stays as small as a room membership (every sleeping connection holds one): a
/// membership has one spare value to tell another variant by, not two.
pub enum Solo {
    /// Its messages come back to it.
    Echo,
    /// It is closed at once, for this reason (its route's, shared).
    Close(Arc<CloseReason>),
    /// It is relayed to an upstream server (boxed: rare, and larger than a membership).
    Relay(Box<RelayTo>),
}

impl Backend {
    /// The name used in logs.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Echo => "echo",
            Backend::Broadcast(_) => "broadcast",
            Backend::Proxy { .. } => "proxy",
            Backend::Close(_) => "close",
            Backend::Relay(upstream) => match (upstream.wire, upstream.tls.is_some()) {
                (relay::Wire::Raw, _) => "tcp",
                (relay::Wire::XmlSocket, _) => "tcp+xmlsocket",
                (relay::Wire::WebSocket, false) => "ws",
                (relay::Wire::WebSocket, true) => "wss",
            },
        }
    }

    /// True when a client's [`Ask`] should carry what it said ([`relay::Hello`]): its
    /// server is a WebSocket server, which is told.
    pub fn wants_hello(&self) -> bool {
        matches!(self, Backend::Relay(upstream) if upstream.wire == relay::Wire::WebSocket)
    }

    /// The handler for a new client, or why it is refused.
    pub fn admit(&self, ask: Ask<'_>) -> Result<Admitted, String> {
        Ok(match self {
            Backend::Echo => Admitted::Messages(Handler::Solo(Solo::Echo)),
            Backend::Broadcast(rooms) => {
                Admitted::Messages(Handler::Broadcast(rooms.enter(ask.room)))
            }
            Backend::Proxy {
                targets,
                connect_timeout,
                write_timeout,
            } => Admitted::Bytes(ByteHandler::Proxy(proxy::Relay {
                target: targets.pick(ask.target)?.clone(),
                connect_timeout: *connect_timeout,
                write_timeout: *write_timeout,
            })),
            Backend::Close(reason) => {
                Admitted::Messages(Handler::Solo(Solo::Close(reason.clone())))
            }
            Backend::Relay(upstream) if upstream.streams(ask.stream) => Admitted::Bytes(
                ByteHandler::Relay(relay::Streamed::new(upstream.clone(), ask.addrs)),
            ),
            Backend::Relay(upstream) if upstream.passes_frames(ask.stream) => {
                let hello = ask
                    .hello
                    .unwrap_or_else(|| relay::Hello::new(Transport::Rfc6455));
                let relay = relay::Frames::new(upstream.clone(), ask.addrs, hello);
                Admitted::Bytes(ByteHandler::Frames(Box::new(relay)))
            }
            Backend::Relay(upstream) => {
                Admitted::Messages(Handler::Solo(Solo::Relay(Box::new(RelayTo {
                    upstream: upstream.clone(),
                    addrs: ask.addrs,
                    hello: ask.hello,
                    connected: None,
                }))))
            }
        })
    }
}

impl Handler {
    /// Connects a relayed client to its server now, before its handshake is answered, and
    /// returns the subprotocol the server chose for it. Other handlers have nothing to do.
    pub async fn connect(&mut self) -> Option<http::HeaderValue> {
        let Handler::Solo(Solo::Relay(to)) = self else {
            return None;
        };
        let connected = to.connect().await;
        let protocol = connected.as_ref().ok().and_then(|c| c.protocol().cloned());
        to.connected = Some(connected);
        protocol
    }
}

impl Service for Handler {
    async fn serve<S: Session>(&mut self, session: &mut S) {
        match self {
            Handler::Solo(Solo::Echo) => echo::run(session).await,
            Handler::Solo(Solo::Close(reason)) => session.close(CloseReason::clone(reason)).await,
            // Boxed: a member's loop is the largest, and every echo client's task would
            // otherwise be as large.
            Handler::Broadcast(member) => Box::pin(broadcast::run(session, member)).await,
            Handler::Solo(Solo::Relay(to)) => {
                Box::pin(async {
                    // Boxed on its own: most relayed clients connected before their handshake
                    // was answered, and this future's room is kept for the session's life.
                    let connected = match to.connected.take() {
                        Some(connected) => connected,
                        None => Box::pin(to.connect()).await,
                    };
                    relay::run(session, &to.upstream, connected).await
                })
                .await
            }
        }
    }

    fn sleeps(&self) -> bool {
        // The upstream may speak at any time, and the relay's loop holds its connection.
        !matches!(self, Handler::Solo(Solo::Relay(_)))
    }

    fn sleep(&mut self, delivery: Delivery) -> Result<(), Delivery> {
        match self {
            // A closed client never sleeps: its session ends as soon as it is served.
            Handler::Solo(Solo::Echo | Solo::Close(_)) => Ok(()),
            Handler::Broadcast(member) => member.sleep(delivery),
            Handler::Solo(Solo::Relay(_)) => Err(delivery),
        }
    }

    fn wake(&mut self) -> Woken {
        match self {
            Handler::Solo(Solo::Echo) => Woken::Resumed,
            Handler::Solo(Solo::Close(_)) => Woken::Gone,
            Handler::Broadcast(member) => member.wake(),
            Handler::Solo(Solo::Relay(_)) => Woken::Resumed,
        }
    }
}
