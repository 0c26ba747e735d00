//! A relay to a `ws://` server for a native RFC 6455 client: the client's frames pass to
//! the server as they are, masks included (the gateway is the server's client, and a
//! client's frames are masked), and the server's frames to the client as they are, both
//! checked on the way by the transport ([`Intake::frames`]). Nothing is unframed, framed
//! again or allocated per message, and the close handshake is the client's and the
//! server's own, codes and reasons as they gave them.
//!
//! The server is connected to before the client's handshake is answered
//! ([`Frames::connect`]), so that the server's choice of subprotocol is the client's. Other
//! clients (web-socket-js, which needs binary as text; hixie-76; SockJS), and `wss://`
//! servers, are relayed message by message ([`super::websocket`]).

use std::net::SocketAddr;
use std::sync::Arc;

use http::HeaderValue;
use tokio::net::TcpStream;

use super::link::Io;
use super::{Connected, Hello, Upstream, Wire, connect, unreachable};
use crate::backend::pump::{self, Outward, Pump};
use crate::session::{ByteService, ByteSession, Intake};

/// One native client's relay to a `ws://` server.
pub struct Frames {
    /// The server.
    upstream: Arc<Upstream>,
    /// The client's address, and the gateway's address it reached.
    addrs: (SocketAddr, SocketAddr),
    /// What the client said, until the connection is made.
    hello: Option<Hello>,
    /// The connection and what the server sent behind its handshake's answer, once made.
    connected: Option<Result<(TcpStream, Vec<u8>), String>>,
}

impl Frames {
    /// The relay of a client at `addrs`, which said `hello`, to `upstream`, a `ws://`
    /// server.
    pub fn new(upstream: Arc<Upstream>, addrs: (SocketAddr, SocketAddr), hello: Hello) -> Frames {
        debug_assert!(upstream.wire == Wire::WebSocket && upstream.tls.is_none());
        Frames {
            upstream,
            addrs,
            hello: Some(hello),
            connected: None,
        }
    }

    /// The server, for logs.
    pub fn server(&self) -> &crate::backend::proxy::ProxyTarget {
        &self.upstream.target
    }

    /// Connects to the server (its handshake included), once, and returns the subprotocol
    /// it chose, to answer the client with.
    pub async fn connect(&mut self) -> Option<HeaderValue> {
        let hello = self.hello.take()?;
        let (connected, protocol) = match connect(&self.upstream, &hello, self.addrs).await {
            Ok(Connected::WebSocket {
                io: Io::Plain(tcp),
                early,
                protocol,
            }) => (Ok((tcp, early)), protocol),
            Ok(_) => (Err("not a plain WebSocket connection".into()), None),
            Err(why) => (Err(why), None),
        };
        self.connected = Some(connected);
        protocol
    }
}

impl ByteService for Frames {
    fn intake(&self) -> Intake {
        Intake {
            text: true,
            nul_ended: false,
            max_message: self.upstream.max_message_size as u64,
            frames: true,
        }
    }

    async fn serve<S: ByteSession>(mut self, session: &mut S) {
        if self.connected.is_none() {
            Box::pin(self.connect()).await;
        }
        let upstream = &*self.upstream;
        let (tcp, early) = match self.connected.take() {
            Some(Ok(connected)) => connected,
            Some(Err(why)) => return session.close(unreachable(upstream, &why)).await,
            None => return,
        };
        if !early.is_empty() {
            let passed = session.write_frames(&early);
            if let Err(why) = passed.map_err(|why| format!("the upstream server sent {why}")) {
                tracing::warn!(upstream = %upstream.target, why, "closing");
                let reason = crate::session::CloseReason::UpstreamFailed(why);
                return session.close(reason).await;
            }
            if session.flush().await.is_err() {
                return;
            }
        }
        let pump = Pump {
            server: &upstream.target,
            write_timeout: upstream.write_timeout,
            outward: Outward::Frames,
        };
        pump::run(session, tcp, pump).await;
    }
}
