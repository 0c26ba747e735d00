//! A relay to a TCP or XMLSocket server for a client whose frames can pass as a byte
//! stream ([`ByteSession`]): a native RFC 6455 client on `tcp://`, and web-socket-js too on
//! `tcp+xmlsocket://` (what comes back is text). Its bytes go through [`pump`] with no
//! message made on the way; the other clients go through [`super::tcp`], message by
//! message, to the same effect.

use std::net::SocketAddr;
use std::sync::Arc;

use super::{Upstream, Wire, connect_tcp, unreachable};
use crate::backend::pump::{self, Outward, Pump};
use crate::session::{ByteService, ByteSession, Intake};

/// One client's relay to a TCP or XMLSocket server.
pub struct Streamed {
    /// The server.
    upstream: Arc<Upstream>,
    /// The client's address, and the gateway's address it reached.
    addrs: (SocketAddr, SocketAddr),
}

impl Streamed {
    /// The relay of a client at `addrs` to `upstream`, a TCP or XMLSocket server.
    pub fn new(upstream: Arc<Upstream>, addrs: (SocketAddr, SocketAddr)) -> Streamed {
        debug_assert!(upstream.wire != Wire::WebSocket);
        Streamed { upstream, addrs }
    }

    /// The server, for logs.
    pub fn server(&self) -> &crate::backend::proxy::ProxyTarget {
        &self.upstream.target
    }
}

impl ByteService for Streamed {
    fn intake(&self) -> Intake {
        Intake {
            text: true,
            nul_ended: self.upstream.wire == Wire::XmlSocket,
            max_message: self.upstream.max_message_size as u64,
            frames: false,
        }
    }

    async fn serve<S: ByteSession>(self, session: &mut S) {
        let upstream = &*self.upstream;
        let tcp = match connect_tcp(upstream, self.addrs).await {
            Ok(tcp) => tcp,
            Err(why) => return session.close(unreachable(upstream, &why)).await,
        };
        let outward = match upstream.wire {
            Wire::XmlSocket => Outward::XmlSocket(upstream.max_message_size),
            _ => Outward::Binary,
        };
        let pump = Pump {
            server: &upstream.target,
            write_timeout: upstream.write_timeout,
            outward,
        };
        pump::run(session, tcp, pump).await;
    }
}
