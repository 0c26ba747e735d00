//! `relay`: a message client in front of the user's own server: a WebSocket server
//! (`ws://`, `wss://`), a TCP server (`tcp://`) or a Flash XMLSocket server
//! (`tcp+xmlsocket://`). Every client family reaches it the same way, and the server never
//! learns which era its client is from.
//!
//! - WebSocket ([`websocket`]): message for message; text stays text and binary binary
//!   (text-only clients get binary by the documented text rule). The server learns the
//!   client's address, origin, family, query, subprotocols and (when the route says)
//!   cookies from the handshake ([`handshake`]); close codes pass both ways. A native
//!   client of a plain `ws://` server has its frames passed as they are instead
//!   ([`frames`]), both sides checked by the transport on the way.
//! - TCP ([`tcp`]): a client message's bytes are written as they are (XMLSocket: ended by a
//!   NUL); what the server sends comes back as binary messages (XMLSocket: each NUL-ended
//!   piece one text message).
//!
//! The connection is made when the client arrives, bounded by the connect timeout, and may
//! start with a PROXY protocol header ([`super::proxy_header`]). The RFC 6455 and hixie
//! routes connect before they answer the client ([`connect`]), so that the server's choice of
//! subprotocol is the client's; SockJS sessions connect when they start.
//!
//! Back-pressure is end to end and each direction goes on while the other waits: a client is
//! read only while what it sent before is being written (at most a batch), and the server is
//! read only once the client has taken the previous batch. A write the server does not take
//! within the write timeout ends the session. A relayed session never sleeps
//! ([`Service::sleeps`]): its server may speak at any time.

mod frames;
pub mod handshake;
mod link;
mod stream;
mod tcp;
mod websocket;

use std::time::Instant;

use crate::metrics::Connects;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::proxy::ProxyTarget;
use super::proxy_header;
use super::pump::{BATCH, Stall};
#[cfg(doc)]
use crate::session::Service;
use crate::session::{CloseReason, Session, Transport};
pub use frames::Frames;
use link::Io;
pub use stream::Streamed;

/// How the server frames its messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// A byte stream: reads become binary messages as they come.
    Raw,
    /// Flash XMLSocket: NUL-ended text messages.
    XmlSocket,
    /// RFC 6455 WebSocket messages.
    WebSocket,
}

/// Where a relay goes, and how.
#[derive(Debug)]
pub struct Upstream {
    /// The server.
    pub target: ProxyTarget,
    /// Its framing.
    pub wire: Wire,
    /// `wss://`: the TLS client settings.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// A WebSocket server's path and query.
    pub resource: String,
    /// How long connecting may take, handshakes included.
    pub connect_timeout: Duration,
    /// How long a write to the server may wait before the session ends.
    pub write_timeout: Duration,
    /// The PROXY protocol header to send first, if any.
    pub proxy_header: Option<proxy_header::Version>,
    /// What a WebSocket server is told of the client.
    pub tell: handshake::Tell,
    /// The largest message, either way.
    pub max_message_size: usize,
    /// Where its connection attempts are counted.
    pub counted: Connects,
}

impl Upstream {
    /// True when a client whose frames can be a byte stream (`stream`: of this transport,
    /// [`Ask::stream`](crate::backend::Ask)) is relayed as one: its server is a TCP server
    /// and the client takes binary, or an XMLSocket server, whose text every client takes.
    pub fn streams(&self, stream: Option<Transport>) -> bool {
        match (self.wire, stream) {
            (Wire::Raw, Some(transport)) => !transport.text_only(),
            (Wire::XmlSocket, stream) => stream.is_some(),
            _ => false,
        }
    }

    /// True when such a client's frames pass to the server as they are
    /// ([`Frames`]): a plain `ws://` server, and a client that takes what it may send
    /// (binary included).
    pub fn passes_frames(&self, stream: Option<Transport>) -> bool {
        self.wire == Wire::WebSocket
            && self.tls.is_none()
            && stream.is_some_and(|transport| !transport.text_only())
    }
}

/// What a client said when it arrived that a WebSocket server may be told. Made only for
/// routes that relay to one: everything here is owned, and copied once per client.
#[derive(Debug)]
pub struct Hello {
    /// How the client is connected (`X-Flashgate-Transport`).
    pub transport: Transport,
    /// Its `Origin`.
    pub origin: Option<HeaderValue>,
    /// The subprotocols it offered.
    pub protocols: Option<HeaderValue>,
    /// Its `Cookie`.
    pub cookie: Option<HeaderValue>,
    /// Its `Host`.
    pub host: Option<HeaderValue>,
    /// Its query, if any.
    pub query: Option<String>,
    /// It came over TLS.
    pub tls: bool,
}

impl Hello {
    /// A client of `transport` that said nothing more.
    pub fn new(transport: Transport) -> Hello {
        Hello {
            transport,
            origin: None,
            protocols: None,
            cookie: None,
            host: None,
            query: None,
            tls: false,
        }
    }

    /// What the request's `headers` say, for a client of `transport`.
    pub fn from_headers(transport: Transport, headers: &http::HeaderMap) -> Hello {
        use http::header::{COOKIE, HOST, ORIGIN, SEC_WEBSOCKET_PROTOCOL};
        let get = |name| headers.get(name).cloned();
        Hello {
            origin: get(ORIGIN),
            protocols: get(SEC_WEBSOCKET_PROTOCOL),
            cookie: get(COOKIE),
            host: get(HOST),
            ..Hello::new(transport)
        }
    }
}

/// A connection to the server, open and ready to relay.
pub enum Connected {
    /// A TCP (or XMLSocket) server's.
    Tcp(TcpStream),
    /// A WebSocket server's, after its handshake.
    WebSocket {
        /// The connection.
        io: Io,
        /// What the server sent behind its answer to the handshake.
        early: Vec<u8>,
        /// The subprotocol the server chose.
        protocol: Option<HeaderValue>,
    },
}

impl Connected {
    /// The subprotocol the server chose, to answer the client with.
    pub fn protocol(&self) -> Option<&HeaderValue> {
        match self {
            Connected::WebSocket { protocol, .. } => protocol.as_ref(),
            Connected::Tcp(_) => None,
        }
    }
}

/// Connects to `upstream` for `hello`'s client at `addrs` (its address, and the gateway's it
/// reached), within the connect timeout; or says why not.
pub async fn connect(
    upstream: &Upstream,
    hello: &Hello,
    addrs: (SocketAddr, SocketAddr),
) -> Result<Connected, String> {
    let open = async {
        let tcp = open_tcp(upstream, addrs).await?;
        match upstream.wire {
            Wire::Raw | Wire::XmlSocket => Ok(Connected::Tcp(tcp)),
            Wire::WebSocket => websocket::open(tcp, upstream, hello, addrs).await,
        }
    };
    let started = Instant::now();
    let attempt = tokio::time::timeout(upstream.connect_timeout, open).await;
    in_time(attempt, upstream, started)
}

/// Connects to a TCP (or XMLSocket) `upstream` for a client at `addrs`, within the connect
/// timeout; or says why not.
async fn connect_tcp(
    upstream: &Upstream,
    addrs: (SocketAddr, SocketAddr),
) -> Result<TcpStream, String> {
    let started = Instant::now();
    let attempt = tokio::time::timeout(upstream.connect_timeout, open_tcp(upstream, addrs)).await;
    in_time(attempt, upstream, started)
}

/// What a connection attempt bounded by the connect timeout, begun at `started`, came to
/// (counted for `upstream`). Not an `async fn` taking the attempt: its future would hold
/// the attempt twice (as its argument, and inside the timeout), and a relayed session keeps
/// that future's room for life.
fn in_time<T>(
    attempt: Result<Result<T, String>, tokio::time::error::Elapsed>,
    upstream: &Upstream,
    started: Instant,
) -> Result<T, String> {
    let came = attempt.unwrap_or_else(|_| Err("connect timed out".into()));
    upstream.counted.record(came.is_ok(), started.elapsed());
    came
}

/// The TCP connection to `upstream`, its PROXY header (if any) sent.
async fn open_tcp(
    upstream: &Upstream,
    addrs: (SocketAddr, SocketAddr),
) -> Result<TcpStream, String> {
    let addr = (upstream.target.host.as_str(), upstream.target.port);
    let mut tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    if let Some(version) = upstream.proxy_header {
        let mut header = Vec::new();
        proxy_header::write(version, addrs.0, addrs.1, &mut header);
        tcp.write_all(&header).await.map_err(|e| e.to_string())?;
    }
    Ok(tcp)
}

/// Why a client's session ends when its server could not be reached, said in the log.
fn unreachable(upstream: &Upstream, why: &str) -> CloseReason {
    tracing::warn!(upstream = %upstream.target, why, "upstream unreachable");
    CloseReason::UpstreamFailed(format!("upstream unreachable: {why}"))
}

/// Relays `session` to `upstream` over `connected` (or a connection made now) until either
/// side ends.
pub async fn run<S: Session>(
    session: &mut S,
    upstream: &Upstream,
    connected: Result<Connected, String>,
) {
    match connected {
        Ok(Connected::Tcp(tcp)) => tcp::run(session, tcp, upstream).await,
        Ok(Connected::WebSocket { io, early, .. }) => {
            websocket::run(session, io, early, upstream).await
        }
        Err(why) => session.close(unreachable(upstream, &why)).await,
    }
}
