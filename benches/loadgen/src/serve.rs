//! Reference servers the suite compares against: a raw TCP echo (the limit for any framing),
//! a raw TCP accept+reply+close loop (the limit for a policy server), a raw TCP relay (the
//! limit for a socket proxy), a minimal WebSocket fan-out (the limit for a broadcast room,
//! in [`crate::fanout`]), a minimal WebSocket echo (the limit for a WebSocket echo), an
//! XMLSocket echo (the far end of an XMLSocket relay), and tokio-tungstenite echoes: as the crate's own example writes one (what a plain Rust server
//! gets), and a naive loop that awaits `send()` per message.

use std::future::ready;

use futures_util::{SinkExt, StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// tcp-echo, tcp-reply, tcp-relay, ws-fanout, ws-echo, xmlsocket-echo, tungstenite-echo
    /// or tungstenite-echo-naive.
    pub kind: String,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Where tcp-relay connects each client to.
    #[arg(long)]
    pub target: Option<String>,
}

/// A policy reply of the usual size.
const REPLY: &[u8] = b"<?xml version=\"1.0\"?>\n<cross-domain-policy>\n  \
<allow-access-from domain=\"*\" to-ports=\"8080\"/>\n</cross-domain-policy>\n\0";

thread_local! {
    /// One read buffer for every connection of this (single-threaded) server.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 64 * 1024]);
    /// One write buffer for the minimal WebSocket echo's replies.
    static OUT: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Writes `bytes` without waiting: `Ok(None)` when the socket took them all, otherwise
/// what is left for a waiting write; `Err` when the socket failed.
fn write_now(stream: &tokio::net::TcpStream, bytes: &[u8]) -> Result<Option<Vec<u8>>, ()> {
    match stream.try_write(bytes) {
        Ok(w) if w == bytes.len() => Ok(None),
        Ok(w) => Ok(Some(bytes[w..].to_vec())),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(Some(bytes.to_vec())),
        Err(_) => Err(()),
    }
}

/// Ends a read-and-reply round: false when the connection is over.
async fn finish_round(
    stream: &mut tokio::net::TcpStream,
    rest: Result<Option<Vec<u8>>, ()>,
) -> bool {
    match rest {
        Err(()) => false,
        Ok(None) => true,
        Ok(Some(rest)) => stream.write_all(&rest).await.is_ok(),
    }
}

/// The raw TCP echo: no buffer per connection (reads go through one shared buffer and are
/// written back at once; only bytes the socket cannot take yet are kept), so it is the lower
/// bound for memory per connection as well as the upper bound for speed.
async fn tcp_echo(mut stream: tokio::net::TcpStream) {
    loop {
        if stream.readable().await.is_err() {
            return;
        }
        let rest = SCRATCH.with(|scratch| {
            let mut buf = scratch.borrow_mut();
            let n = match stream.try_read(&mut buf) {
                Ok(0) => return Err(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(None),
                Err(_) => return Err(()),
            };
            write_now(&stream, &buf[..n])
        });
        if !finish_round(&mut stream, rest).await {
            return;
        }
    }
}

/// The minimal WebSocket echo, built as the raw TCP echo is (the thread's read buffer, and
/// nothing kept but a cut frame or bytes the socket cannot take yet): the upgrade, then
/// every complete frame read is unmasked in place and its reply framed into one write per
/// read. Nothing is checked (no UTF-8, no limits, no control frames but close): what no
/// WebSocket echo server can beat here.
async fn ws_echo(mut stream: tokio::net::TcpStream) {
    if crate::fanout::handshake(&mut stream).await.is_none() {
        return;
    }
    let mut cut = Vec::new();
    loop {
        if stream.readable().await.is_err() {
            return;
        }
        let rest = SCRATCH.with(|scratch| {
            OUT.with(|out| {
                let (mut buf, mut out) = (scratch.borrow_mut(), out.borrow_mut());
                if cut.len() * 2 > buf.len() {
                    let len = cut.len() * 2;
                    buf.resize(len, 0);
                }
                buf[..cut.len()].copy_from_slice(&cut);
                let filled = match stream.try_read(&mut buf[cut.len()..]) {
                    Ok(0) => return Err(()),
                    Ok(n) => cut.len() + n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(None),
                    Err(_) => return Err(()),
                };
                out.clear();
                let mut at = 0;
                while let Some((opcode, start, len)) = crate::fanout::parse(&mut buf[at..filled]) {
                    if opcode == 8 {
                        return Err(());
                    }
                    crate::fanout::header(&mut out, opcode, len);
                    out.extend_from_slice(&buf[at + start..at + start + len]);
                    at += start + len;
                }
                cut.clear();
                cut.extend_from_slice(&buf[at..filled]);
                write_now(&stream, &out)
            })
        });
        if !finish_round(&mut stream, rest).await {
            return;
        }
    }
}

/// The XMLSocket echo: every NUL-ended piece is written back as it came, NUL and all, built
/// as the raw TCP echo is (the thread's read buffer; everything up to the last NUL of a read
/// written back at once): only a piece the read cut in two, and bytes the socket cannot take
/// yet, are kept.
async fn xmlsocket_echo(mut stream: tokio::net::TcpStream) {
    let mut cut = Vec::new();
    loop {
        if stream.readable().await.is_err() {
            return;
        }
        let rest = SCRATCH.with(|scratch| {
            let mut buf = scratch.borrow_mut();
            if cut.len() * 2 > buf.len() {
                let len = cut.len() * 2;
                buf.resize(len, 0);
            }
            buf[..cut.len()].copy_from_slice(&cut);
            let filled = match stream.try_read(&mut buf[cut.len()..]) {
                Ok(0) => return Err(()),
                Ok(n) => cut.len() + n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(None),
                Err(_) => return Err(()),
            };
            // Only the new bytes can hold a NUL: what was kept had none.
            let end = memchr::memrchr(0, &buf[cut.len()..filled]).map_or(0, |i| cut.len() + i + 1);
            cut.clear();
            cut.extend_from_slice(&buf[end..filled]);
            if end == 0 {
                return Ok(None);
            }
            write_now(&stream, &buf[..end])
        });
        if !finish_round(&mut stream, rest).await {
            return;
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&args.listen).await?;
    println!("listening {}", listener.local_addr()?);
    if args.kind == "ws-fanout" {
        return crate::fanout::run(listener).await;
    }
    let target = match (args.kind.as_str(), args.target) {
        ("tcp-relay", Some(target)) => target,
        ("tcp-relay", None) => anyhow::bail!("tcp-relay needs --target HOST:PORT"),
        (_, target) => target.unwrap_or_default(),
    };
    loop {
        let (mut stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        match args.kind.as_str() {
            "tcp-echo" => tokio::spawn(tcp_echo(stream)),
            "ws-echo" => tokio::spawn(ws_echo(stream)),
            "xmlsocket-echo" => tokio::spawn(xmlsocket_echo(stream)),
            "tcp-reply" => tokio::spawn(async move {
                // Read the request up to its NUL, answer a fixed policy, close.
                let mut buf = [0u8; 64];
                let mut filled = 0;
                while filled < buf.len() {
                    match stream.read(&mut buf[filled..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => filled += n,
                    }
                    if buf[..filled].contains(&0) {
                        let _ = stream.write_all(REPLY).await;
                        let _ = stream.shutdown().await;
                        return;
                    }
                }
            }),
            "tcp-relay" => {
                let target = target.clone();
                // The least a socket proxy can do: bytes both ways, nothing else.
                tokio::spawn(async move {
                    let Ok(mut upstream) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    let _ = upstream.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut stream, &mut upstream).await;
                })
            }
            // tokio-tungstenite as its own echo example uses it: the read half forwarded into
            // the write half, which feeds each message to the sink and flushes only when no
            // more are ready, so a burst goes out in one write.
            "tungstenite-echo" => tokio::spawn(async move {
                let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                let (outgoing, incoming) = ws.split();
                let _ = incoming
                    .try_filter(|message| ready(message.is_text() || message.is_binary()))
                    .forward(outgoing)
                    .await;
            }),
            // The naive loop: each message awaits its own `send()`, one flush (one write) each.
            "tungstenite-echo-naive" => tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err()
                    {
                        return;
                    }
                }
            }),
            other => anyhow::bail!("unknown server {other}"),
        };
    }
}
