//! The relay to a WebSocket server: its handshake ([`open`]), then message for message both
//! ways ([`run`]), close codes and reasons passed on as they are. (A native client of a
//! `ws://` server has its frames passed as they are instead: [`super::frames`].)

use std::future::poll_fn;
use std::net::SocketAddr;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tungstenite::Message;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};

use super::handshake::{self, Target};
use super::link::{Io, Link};
use super::{BATCH, Connected, Hello, Stall, Upstream};
use crate::session::{CloseReason, Payload, Session, close_code};

/// Most messages from the server handed to the client before they are flushed.
const BURST: usize = 64;

/// tungstenite's read buffer: what each quiet connection holds, zeroed.
const READ_BUFFER: usize = 256;

/// How long the close handshake with the server may take once the client has gone.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Opens the WebSocket over `tcp` (TLS first for `wss://`): the handshake for `hello`'s
/// client, and the server's answer checked.
pub(super) async fn open(
    tcp: TcpStream,
    upstream: &Upstream,
    hello: &Hello,
    addrs: (SocketAddr, SocketAddr),
) -> Result<Connected, String> {
    let host = &upstream.target.host;
    let mut io = match &upstream.tls {
        None => Io::Plain(tcp),
        Some(config) => {
            let name = ServerName::try_from(host.clone())
                .map_err(|e| format!("{host:?} is not a TLS server name ({e})"))?;
            let connector = tokio_rustls::TlsConnector::from(config.clone());
            let tls = connector.connect(name, tcp).await;
            Io::Tls(Box::new(tls.map_err(|e| format!("TLS: {e}"))?))
        }
    };
    let default_port = if upstream.tls.is_some() { 443 } else { 80 };
    let host = match upstream.target.port == default_port {
        true if host.contains(':') => format!("[{host}]"),
        true => host.clone(),
        false => upstream.target.to_string(),
    };
    let target = Target {
        host: &host,
        resource: &upstream.resource,
    };
    let key = handshake::new_key();
    let mut request = Vec::new();
    handshake::request(&target, hello, addrs, upstream.tell, &key, &mut request);
    let failed = |e: std::io::Error| e.to_string();
    io.write_all(&request).await.map_err(failed)?;
    io.flush().await.map_err(failed)?;
    let mut head = BytesMut::with_capacity(1024);
    let answer = loop {
        if io.read_buf(&mut head).await.map_err(failed)? == 0 {
            return Err("it closed the connection during the handshake".into());
        }
        if let Some(answer) = handshake::answer(&head, &key, hello.protocols.as_ref())? {
            break answer;
        }
    };
    Ok(Connected::WebSocket {
        io,
        early: head.split_off(answer.head_len).to_vec(),
        protocol: answer.protocol,
    })
}

/// tungstenite's settings: a small read buffer (the link reads ahead for it) and no write
/// buffer (the link queues what tungstenite writes, behind the relay's own frames).
fn config(upstream: &Upstream) -> WebSocketConfig {
    let max = upstream.max_message_size;
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(BATCH + max.saturating_mul(2).max(1 << 20))
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

/// Where the writes to the server stand.
#[derive(Default)]
struct Writes {
    /// Bytes queued on the link since the last flush.
    queued: usize,
    /// Something queued (a message, or a pong or close reply) waits to be flushed.
    pending: bool,
    /// The server has not taken the last flush yet.
    blocked: bool,
}

/// What the server side did.
enum Up {
    /// A message came.
    Message(Message),
    /// A flush finished, or stopped on a server that does not read: look again.
    Moved,
    /// The connection failed.
    Failed(String),
    /// It ended without a close frame.
    Ended,
}

/// Waits for the server side: flushes what is pending, and reads.
async fn server(ws: &mut WebSocketStream<Link>, writes: &mut Writes) -> Up {
    poll_fn(|cx| {
        let mut moved = false;
        if writes.pending {
            match ws.poll_flush_unpin(cx) {
                Poll::Ready(Ok(())) => {
                    *writes = Writes::default();
                    moved = true;
                }
                Poll::Ready(Err(error)) => return Poll::Ready(Up::Failed(error.to_string())),
                Poll::Pending if !writes.blocked => {
                    writes.blocked = true;
                    moved = true;
                }
                Poll::Pending => {}
            }
        }
        match ws.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(message))) => Poll::Ready(Up::Message(message)),
            Poll::Ready(Some(Err(error))) => Poll::Ready(Up::Failed(error.to_string())),
            Poll::Ready(None) => Poll::Ready(Up::Ended),
            Poll::Pending if moved => Poll::Ready(Up::Moved),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Relays `session` to the server over `io` (`early`: what the server sent behind its
/// handshake's answer) until either side ends.
pub(super) async fn run<S: Session>(session: &mut S, io: Io, early: Vec<u8>, upstream: &Upstream) {
    let link = Link::new(io);
    let ws =
        WebSocketStream::from_partially_read(link, early, Role::Client, Some(config(upstream)));
    let mut ws = ws.await;
    let mut writes = Writes::default();
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);
    let mut stall = Stall::new(timer, upstream.write_timeout);
    loop {
        let up = tokio::select! {
            biased;
            message = session.recv(), if !writes.blocked && writes.queued < BATCH => {
                let Some(payload) = message else {
                    return goodbye(session, ws).await;
                };
                // Framed straight into the link's queue: tungstenite writes only control
                // frames.
                writes.queued = ws.get_mut().queue(&payload);
                writes.pending = true;
                continue;
            }
            up = server(&mut ws, &mut writes) => up,
            () = stall.timer.as_mut(), if stall.armed => {
                return session.close(stall.reason(&upstream.target)).await;
            }
        };
        match up {
            Up::Moved => stall.moved(writes.blocked),
            Up::Message(message) => {
                if !deliver(session, &mut ws, &mut writes, message).await {
                    return;
                }
            }
            Up::Failed(why) => {
                let why = format!("upstream connection lost: {why}");
                return session.close(CloseReason::UpstreamFailed(why)).await;
            }
            Up::Ended => {
                let why = "upstream connection lost: it closed without a close frame".into();
                return session.close(CloseReason::UpstreamFailed(why)).await;
            }
        }
    }
}

/// Hands `message`, and what else the server has sent already (up to [`BURST`]), to the
/// client, then flushes: false when the session is over.
async fn deliver<S: Session>(
    session: &mut S,
    ws: &mut WebSocketStream<Link>,
    writes: &mut Writes,
    mut message: Message,
) -> bool {
    for taken in 1.. {
        let sent = match message {
            Message::Text(text) => session.send(Payload::Text(text)).await,
            Message::Binary(bytes) => session.send(Payload::Binary(bytes)).await,
            Message::Close(frame) => {
                let reason = match frame {
                    Some(frame) => CloseReason::Peer(frame.code.into(), frame.reason.to_string()),
                    None => CloseReason::Peer(close_code::NORMAL, String::new()),
                };
                session.close(reason).await;
                // tungstenite has queued the reply: flushed now, before the link goes.
                let _ = tokio::time::timeout(CLOSE_WAIT, SinkExt::close(ws)).await;
                return false;
            }
            // tungstenite has queued the pong: the next flush sends it.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {
                writes.pending = true;
                Ok(())
            }
        };
        if sent.is_err() {
            let _ = tokio::time::timeout(CLOSE_WAIT, ws.close(Some(went_away()))).await;
            return false;
        }
        if taken == BURST {
            break;
        }
        // What has come already, without waiting.
        match poll_fn(|cx| Poll::Ready(ws.poll_next_unpin(cx))).await {
            Poll::Ready(Some(Ok(next))) => message = next,
            Poll::Ready(Some(Err(_)) | None) | Poll::Pending => break,
        }
    }
    session.flush().await.is_ok()
}

/// The client's session is over: the server is told with the client's own close code and
/// reason, or 1001, and the close handshake is finished within [`CLOSE_WAIT`].
async fn goodbye<S: Session>(session: &mut S, mut ws: WebSocketStream<Link>) {
    let frame = match session.farewell() {
        Some((code, reason)) if close_code::may_receive(code) => CloseFrame {
            code: CloseCode::from(code),
            reason,
        },
        _ => went_away(),
    };
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        let _ = ws.close(Some(frame)).await;
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

/// The close frame for a client that left without saying why.
fn went_away() -> CloseFrame {
    CloseFrame {
        code: CloseCode::Away,
        reason: "the client went away".into(),
    }
}
