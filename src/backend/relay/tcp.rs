//! The relay to a TCP server, raw (`tcp://`) or speaking Flash's XMLSocket
//! (`tcp+xmlsocket://`): a client message is written as it is (XMLSocket: ended by a NUL),
//! and what the server sends comes back as binary messages (XMLSocket: each NUL-ended piece
//! one text message).

use std::future::poll_fn;
use std::io::ErrorKind;
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tungstenite::Utf8Bytes;

use super::{BATCH, Stall, Upstream, Wire};
use crate::backend::xmlsocket::{self, Splitter};
use crate::session::{CloseReason, Payload, Session};

/// Most bytes read from the server at once.
const CHUNK: usize = 16 * 1024;

/// The largest write buffer kept once it is empty: a busy session's, not a bulk transfer's.
const KEEP: usize = 4 * 1024;

/// Client bytes on their way to the server.
#[derive(Default)]
struct Outbox {
    /// What is to be written, from `written` on.
    buf: Vec<u8>,
    /// How much of `buf` the server has taken.
    written: usize,
    /// The server has not taken all of it when last asked.
    blocked: bool,
}

impl Outbox {
    /// Everything was written: the buffer is emptied (and let go of when large).
    fn done(&mut self) {
        match self.buf.capacity() > KEEP {
            true => self.buf = Vec::new(),
            false => self.buf.clear(),
        }
        self.written = 0;
        self.blocked = false;
    }
}

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

/// Waits for the server side: writes what is pending, and reads.
async fn server(tcp: &TcpStream, out: &mut Outbox) -> Up {
    poll_fn(|cx| {
        let mut moved = false;
        while out.written < out.buf.len() {
            match tcp.poll_write_ready(cx) {
                Poll::Ready(Ok(())) => match tcp.try_write(&out.buf[out.written..]) {
                    Ok(n) => {
                        out.written += n;
                        // Progress: a stalled server's clock starts again.
                        moved |= out.blocked;
                        if out.written == out.buf.len() {
                            out.done();
                            moved = true;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => return Poll::Ready(Up::Failed(e.to_string())),
                },
                Poll::Ready(Err(e)) => return Poll::Ready(Up::Failed(e.to_string())),
                Poll::Pending => {
                    moved |= !out.blocked;
                    out.blocked = true;
                    break;
                }
            }
        }
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
    let mut out = Outbox::default();
    // Bytes of an XMLSocket message not ended yet: nothing while the server is quiet.
    let mut inbound = BytesMut::new();
    let mut splitter = Splitter::new(upstream.max_message_size);
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);
    let mut stall = Stall::new(timer, upstream.write_timeout);
    loop {
        let up = tokio::select! {
            biased;
            message = session.recv(), if !out.blocked && out.buf.len() < BATCH => {
                let Some(message) = message else {
                    return goodbye(&mut tcp, &out, upstream).await;
                };
                let bytes: &[u8] = match &message {
                    Payload::Text(text) => text.as_bytes(),
                    Payload::Binary(bytes) => bytes,
                };
                match upstream.wire {
                    Wire::XmlSocket => {
                        if xmlsocket::encode(bytes, &mut out.buf).is_err() {
                            let why = "a message with a NUL byte: XMLSocket would read it as two";
                            return session.close(CloseReason::Peer(1003, why.into())).await;
                        }
                    }
                    _ => out.buf.extend_from_slice(bytes),
                }
                continue;
            }
            up = server(&tcp, &mut out) => up,
            () = stall.timer.as_mut(), if stall.armed => {
                return session.close(stall.reason(&upstream.target)).await;
            }
        };
        let chunk = match up {
            Up::Data(chunk) => chunk,
            Up::Moved => {
                stall.moved(out.blocked);
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

/// The client's session is over: what it sent before is written, within the write
/// timeout, and the server sees the end of the stream.
async fn goodbye(tcp: &mut TcpStream, out: &Outbox, upstream: &Upstream) {
    let _ = tokio::time::timeout(upstream.write_timeout, async {
        tcp.write_all(&out.buf[out.written..]).await?;
        tcp.shutdown().await
    })
    .await;
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
