//! `relay`: a message client in front of the user's own TCP server, raw (`tcp://`) or
//! speaking Flash's XMLSocket (`tcp+xmlsocket://`). Every client family reaches it the same
//! way: a client message is written to the server as it is (XMLSocket: ended by a NUL), and
//! what the server sends comes back as binary messages (XMLSocket: each NUL-ended piece one
//! text message); text-only clients get binary by the documented text rule.
//!
//! The connection is made when the client arrives, bounded by the connect timeout, and may
//! start with a PROXY protocol header ([`super::proxy_header`]) so that the server sees the
//! client's address. Back-pressure is end to end: the client is read only once what it sent
//! before is written to the server, and the server is read only once the client has taken
//! the previous batch. A relayed session never sleeps ([`Service::sleeps`]): its server may
//! speak at any time.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tungstenite::Utf8Bytes;

use super::proxy_header;
use super::xmlsocket::{self, Splitter};
#[cfg(doc)]
use crate::session::Service;
use crate::session::{CloseReason, Payload, Session};

/// Most bytes read from the server at once.
const CHUNK: usize = 16 * 1024;

/// How the server frames its messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// A byte stream: reads become binary messages as they come.
    Raw,
    /// Flash XMLSocket: NUL-ended text messages.
    XmlSocket,
}

/// Where a relay goes, and how.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// The server.
    pub target: super::proxy::ProxyTarget,
    /// Its framing.
    pub wire: Wire,
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// The PROXY protocol header to send first, if any.
    pub proxy_header: Option<proxy_header::Version>,
    /// The largest message, either way.
    pub max_message_size: usize,
}

/// Relays `session` (of the client at `client`, who reached the gateway at `server`) to
/// `upstream` until either side ends.
pub async fn run<S: Session>(
    session: &mut S,
    upstream: &Upstream,
    client: SocketAddr,
    server: SocketAddr,
) {
    let addr = (upstream.target.host.as_str(), upstream.target.port);
    let connect = tokio::time::timeout(upstream.connect_timeout, TcpStream::connect(addr));
    let mut tcp = match connect.await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(error)) => return refuse(session, upstream, &error.to_string()).await,
        Err(_) => return refuse(session, upstream, "connect timed out").await,
    };
    let _ = tcp.set_nodelay(true);
    if let Some(version) = upstream.proxy_header {
        let mut header = Vec::new();
        proxy_header::write(version, client, server, &mut header);
        if let Err(error) = tcp.write_all(&header).await {
            return refuse(session, upstream, &error.to_string()).await;
        }
    }
    let (from_server, mut to_server) = tcp.into_split();
    // Bytes of an XMLSocket message not ended yet: nothing while the server is quiet.
    let mut inbound = BytesMut::new();
    let mut splitter = Splitter::new(upstream.max_message_size);
    let mut out = Vec::new();
    loop {
        tokio::select! {
            message = session.recv() => {
                let Some(message) = message else { return };
                let bytes: &[u8] = match &message {
                    Payload::Text(text) => text.as_bytes(),
                    Payload::Binary(bytes) => bytes,
                };
                let written = match upstream.wire {
                    // As it is: no copy.
                    Wire::Raw => to_server.write_all(bytes).await,
                    Wire::XmlSocket => {
                        if xmlsocket::encode(bytes, &mut out).is_err() {
                            let why = "a message with a NUL byte: XMLSocket would read it as two";
                            return session.close(CloseReason::Peer(1003, why.into())).await;
                        }
                        let written = to_server.write_all(&out).await;
                        out = Vec::new();
                        written
                    }
                };
                if let Err(error) = written {
                    return session.close(CloseReason::UpstreamFailed(error.to_string())).await;
                }
            }
            ready = from_server.readable() => {
                if let Err(error) = ready {
                    return session.close(CloseReason::UpstreamFailed(error.to_string())).await;
                }
                // Memory for a read only once there is something to read.
                let mut chunk = BytesMut::with_capacity(CHUNK);
                match from_server.try_read_buf(&mut chunk) {
                    Ok(0) => return session.close(CloseReason::UpstreamClosed).await,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(error) => return session.close(CloseReason::UpstreamFailed(error.to_string())).await,
                    Ok(_) => {}
                }
                let sent = match upstream.wire {
                    Wire::Raw => session.send(Payload::Binary(chunk.freeze())).await.is_ok(),
                    Wire::XmlSocket => match pieces(append(&mut inbound, chunk), &mut splitter) {
                        Ok(pieces) => send_all(session, pieces).await,
                        Err(why) => {
                            return session.close(CloseReason::UpstreamFailed(why.into())).await;
                        }
                    },
                };
                if !sent || session.flush().await.is_err() {
                    return;
                }
                if inbound.is_empty() {
                    inbound = BytesMut::new();
                }
            }
        }
    }
}

/// `inbound` with `chunk` after it (`chunk` itself when nothing was pending).
fn append(inbound: &mut BytesMut, chunk: BytesMut) -> &mut BytesMut {
    match inbound.is_empty() {
        true => *inbound = chunk,
        false => inbound.extend_from_slice(&chunk),
    }
    inbound
}

/// The whole XMLSocket messages at the start of `inbound`, taken out of it.
fn pieces(inbound: &mut BytesMut, splitter: &mut Splitter) -> Result<Vec<Bytes>, &'static str> {
    let mut pieces = Vec::new();
    loop {
        match splitter.next(inbound) {
            Ok(Some((range, taken))) => {
                let mut piece = inbound.split_to(taken);
                piece.truncate(range.end);
                piece.advance(range.start);
                pieces.push(piece.freeze());
            }
            Ok(None) => return Ok(pieces),
            Err(xmlsocket::PieceError::TooLarge) => {
                return Err("the server sent a message larger than --max-message-size");
            }
            Err(xmlsocket::PieceError::NotUtf8) => {
                return Err("the server sent a message that is not UTF-8");
            }
        }
    }
}

/// Sends each of `pieces` as a text message; false when the client is gone.
async fn send_all<S: Session>(session: &mut S, pieces: Vec<Bytes>) -> bool {
    for piece in pieces {
        let text = Utf8Bytes::try_from(piece).expect("the splitter checked the UTF-8");
        if session.send(Payload::Text(text)).await.is_err() {
            return false;
        }
    }
    true
}

/// Tells the client its server could not be reached, and logs why.
async fn refuse<S: Session>(session: &mut S, upstream: &Upstream, why: &str) {
    tracing::warn!(upstream = %upstream.target, why, "upstream unreachable");
    let reason = format!("upstream unreachable: {why}");
    session.close(CloseReason::UpstreamFailed(reason)).await;
}
