//! The relay to a TCP server, raw (`tcp://`) or speaking Flash's XMLSocket
//! (`tcp+xmlsocket://`): a client message is written as it is (XMLSocket: ended by a NUL),
//! and what the server sends comes back as binary messages (XMLSocket: each NUL-ended piece
//! one text message).

use std::future::poll_fn;
use std::io::ErrorKind;
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::net::TcpStream;
use tungstenite::Utf8Bytes;

use super::{BATCH, Stall, Upstream, Wire};
use crate::backend::pump;
use crate::backend::xmlsocket::{self, Splitter};
use crate::session::{CloseReason, Payload, Session};

/// Most bytes read from the server at once.
const CHUNK: usize = 16 * 1024;

/// What the server side did.
enum Up {
    /// Bytes came.
    Data(BytesMut),
    /// A write finished, or stopped on a server that does not read: look again.
    Moved,
    /// The server ended its side.
    Closed,
    /// The connection failed.
    Failed(String),
}

/// Waits for the server side: writes what is pending (`out`, `blocked` while the rest
/// waits), and reads.
async fn server(tcp: &TcpStream, out: &mut BytesMut, blocked: &mut bool) -> Up {
    poll_fn(|cx| {
        let moved = match pump::write_out(tcp, cx, out, blocked) {
            Ok(moved) => moved,
            Err(e) => return Poll::Ready(Up::Failed(e.to_string())),
        };
        loop {
            match tcp.poll_read_ready(cx) {
                Poll::Ready(Ok(())) => {
                    // Memory for a read only once there is something to read.
                    let mut chunk = BytesMut::with_capacity(CHUNK);
                    return Poll::Ready(match tcp.try_read_buf(&mut chunk) {
                        Ok(0) => Up::Closed,
                        Ok(_) => Up::Data(chunk),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                        Err(e) => Up::Failed(e.to_string()),
                    });
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Up::Failed(e.to_string())),
                Poll::Pending if moved => return Poll::Ready(Up::Moved),
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await
}

/// Relays `session` to the server over `tcp` until either side ends.
pub(super) async fn run<S: Session>(session: &mut S, mut tcp: TcpStream, upstream: &Upstream) {
    // Client bytes on their way to the server, and whether the server stopped taking them.
    let (mut out, mut blocked) = (BytesMut::new(), false);
    // Bytes of an XMLSocket message not ended yet: nothing while the server is quiet.
    let mut inbound = BytesMut::new();
    let mut splitter = Splitter::new(upstream.max_message_size);
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);
    let mut stall = Stall::new(timer, upstream.write_timeout);
    loop {
        let up = tokio::select! {
            biased;
            message = session.recv(), if !blocked && out.len() < BATCH => {
                let Some(message) = message else {
                    return pump::goodbye(&mut tcp, &out, upstream.write_timeout).await;
                };
                let bytes: &[u8] = match &message {
                    Payload::Text(text) => text.as_bytes(),
                    Payload::Binary(bytes) => bytes,
                };
                match upstream.wire {
                    Wire::XmlSocket => {
                        if xmlsocket::encode(bytes, &mut out).is_err() {
                            let why = "a message with a NUL byte: XMLSocket would read it as two";
                            return session.close(CloseReason::Peer(1003, why.into())).await;
                        }
                    }
                    _ => out.extend_from_slice(bytes),
                }
                continue;
            }
            up = server(&tcp, &mut out, &mut blocked) => up,
            () = stall.timer.as_mut(), if stall.armed => {
                return session.close(stall.reason(&upstream.target)).await;
            }
        };
        let chunk = match up {
            Up::Data(chunk) => chunk,
            Up::Moved => {
                stall.moved(blocked);
                continue;
            }
            Up::Closed => return session.close(CloseReason::UpstreamClosed).await,
            Up::Failed(why) => {
                let why = format!("upstream connection lost: {why}");
                return session.close(CloseReason::UpstreamFailed(why)).await;
            }
        };
        let sent = match upstream.wire {
            Wire::XmlSocket => match pieces(append(&mut inbound, chunk), &mut splitter) {
                Ok(pieces) => send_all(session, pieces).await,
                Err(why) => return session.close(CloseReason::UpstreamFailed(why.into())).await,
            },
            _ => session.send(Payload::Binary(chunk.freeze())).await.is_ok(),
        };
        if !sent || session.flush().await.is_err() {
            return;
        }
        if inbound.is_empty() {
            inbound = BytesMut::new();
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
            Err(error) => return Err(error.reason()),
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
