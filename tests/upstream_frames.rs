//! A native RFC 6455 client on a `ws://` route has its frames passed to the server as they
//! are, and the server's to it: against a tokio-tungstenite server that reports what it
//! reads (pings included), and raw servers written here that break the protocol, send
//! frames behind their handshake's answer, or stop reading. Each side is held to RFC 6455
//! on the way, with the close code that says why, and the other side is told.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

use common::*;

/// What the server read from its client, in order.
#[derive(Debug, PartialEq)]
enum Read {
    Text(String),
    Binary(usize),
    Ping(Vec<u8>),
    /// The close frame's code and reason, if it had one.
    Close(Option<(u16, String)>),
}

/// A tokio-tungstenite server: echoes data messages, answers pings (tungstenite does), and
/// reports everything it reads.
async fn reporting_server() -> (SocketAddr, mpsc::UnboundedReceiver<Read>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                    .max_message_size(Some(1 << 20));
                let Ok(mut ws) =
                    tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await
                else {
                    return;
                };
                while let Some(Ok(message)) = ws.next().await {
                    let read = match &message {
                        Message::Text(text) => Read::Text(text.to_string()),
                        Message::Binary(bytes) => Read::Binary(bytes.len()),
                        Message::Ping(body) => Read::Ping(body.to_vec()),
                        Message::Close(frame) => Read::Close(
                            frame
                                .as_ref()
                                .map(|f| (u16::from(f.code), f.reason.to_string())),
                        ),
                        _ => continue,
                    };
                    let echo = matches!(read, Read::Text(_) | Read::Binary(_));
                    let _ = tx.send(read);
                    if echo && ws.send(message).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, rx)
}

/// A server that answers the handshake by hand and then writes `then` in the same write as
/// its answer; it reads nothing more (and keeps the connection) when `deaf`.
async fn raw_server(then: Vec<u8>, deaf: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let then = then.clone();
            tokio::spawn(async move {
                let key = read_key(&mut tcp).await;
                let mut answer = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                     Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                    derive_accept_key(key.as_bytes())
                )
                .into_bytes();
                answer.extend(then);
                tcp.write_all(&answer).await.unwrap();
                if deaf {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
                let mut sink = [0; 4096];
                while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

/// Reads a handshake request from `tcp` and returns its `Sec-WebSocket-Key`.
async fn read_key(tcp: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        tcp.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let line = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("sec-websocket-key:"));
    line.unwrap().split(':').nth(1).unwrap().trim().to_string()
}

/// A server's (unmasked) frame.
fn server_frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = bytes::BytesMut::new();
    flashgate::wire::encode_raw(&mut out, first & 0x0f, body);
    out[0] = first;
    out.to_vec()
}

/// A client frame sent as it is.
fn frame(fin: bool, opcode: OpCode, body: &[u8]) -> Message {
    let mut header = FrameHeader::default();
    (header.is_final, header.opcode) = (fin, opcode);
    Message::Frame(Frame::from_payload(header, body.to_vec().into()))
}

async fn read(seen: &mut mpsc::UnboundedReceiver<Read>) -> Read {
    within("what the server read", seen.recv())
        .await
        .expect("the server is there")
}

/// The close code and reason the client got.
async fn close_of(ws: &mut Ws) -> (u16, String) {
    let (frame, _) = close_frame(ws).await;
    let frame = frame.expect("a close frame with a code");
    (u16::from(frame.code), frame.reason.to_string())
}

#[tokio::test]
async fn fragments_and_pings_reach_the_server_as_the_client_sent_them_and_its_pongs_come_back() {
    let _watchdog = Watchdog::start();
    let (addr, mut seen) = reporting_server().await;
    let gw = TestGateway::start(&["--route", &format!("/app=ws://{addr}/")]).await;
    let mut ws = gw.ws("/app").await;

    // A message in three fragments, a character cut between two, a ping among them.
    let text = OpCode::Data(Data::Text);
    let more = OpCode::Data(Data::Continue);
    ws.send(frame(false, text, b"frag")).await.unwrap();
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    ws.send(frame(false, more, b"mented \xe2\x82"))
        .await
        .unwrap();
    ws.send(frame(true, more, b"\xac!")).await.unwrap();
    // The ping is the server's to answer: it reads it, then the message whole.
    assert_eq!(read(&mut seen).await, Read::Ping(b"are you there".to_vec()));
    assert_eq!(
        read(&mut seen).await,
        Read::Text("fragmented \u{20ac}!".into())
    );
    let mut pong = None;
    let echo = within("the pong and the echo", async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Pong(body))) => pong = Some(body.to_vec()),
                Some(Ok(Message::Text(echo))) => return echo.to_string(),
                other => panic!("expected the pong and the echo, got {other:?}"),
            }
        }
    })
    .await;
    assert_eq!(
        pong.as_deref(),
        Some(&b"are you there"[..]),
        "the server's pong"
    );
    assert_eq!(echo, "fragmented \u{20ac}!");

    // A binary message of every length form, both ways.
    for len in [0, 125, 126, 65_535, 65_536, 300_000] {
        ws.send(Message::binary(vec![7; len])).await.unwrap();
        assert_eq!(read(&mut seen).await, Read::Binary(len));
        assert_eq!(next_message(&mut ws).await, Message::binary(vec![7; len]));
    }
}

#[tokio::test]
async fn a_client_that_breaks_the_protocol_gets_the_code_that_says_why_and_its_server_is_told() {
    let _watchdog = Watchdog::start();
    let (addr, mut seen) = reporting_server().await;
    let route = format!("/app=ws://{addr}/");
    let gw = TestGateway::start(&["--route", &route, "--max-message-size", "1000"]).await;

    let mut ws = gw.ws("/app").await;
    send_text(&mut ws, "first").await;
    assert_eq!(read(&mut seen).await, Read::Text("first".into()));
    ws.send(frame(true, OpCode::Data(Data::Text), b"not \xff UTF-8"))
        .await
        .unwrap();
    assert_eq!(
        close_of(&mut ws).await,
        (1007, "text that is not UTF-8".into())
    );
    assert_eq!(
        read(&mut seen).await,
        Read::Close(Some((1007, "text that is not UTF-8".into())))
    );

    // Over the size limit: refused by its header; the server reads none of it.
    let mut ws = gw.ws("/app").await;
    ws.send(Message::binary(vec![1; 1000])).await.unwrap();
    assert_eq!(
        read(&mut seen).await,
        Read::Binary(1000),
        "exactly the limit passes"
    );
    ws.send(Message::binary(vec![1; 1001])).await.unwrap();
    assert_eq!(close_of(&mut ws).await, (1009, "message too large".into()));
    assert_eq!(
        read(&mut seen).await,
        Read::Close(Some((1009, "message too large".into())))
    );

    // The gateway stopping tells both.
    let mut ws = gw.ws("/app").await;
    send_text(&mut ws, "still here").await;
    assert_eq!(read(&mut seen).await, Read::Text("still here".into()));
    let mut gw = gw;
    let (stopped, closed) = tokio::join!(gw.shutdown(), close_of(&mut ws));
    assert!(stopped < WAIT);
    assert_eq!(closed, (1001, "server shutting down".into()));
    assert_eq!(
        read(&mut seen).await,
        Read::Close(Some((1001, "server shutting down".into())))
    );
}

#[tokio::test]
async fn a_server_that_breaks_the_protocol_closes_its_client_with_1011_and_why() {
    let _watchdog = Watchdog::start();
    let hello = server_frame(0x81, b"hello");
    let cases: [(Vec<u8>, &str); 4] = [
        (
            flashgate::wire::client_frame(true, 1, b"hi", [1, 2, 3, 4]),
            "a masked frame",
        ),
        (server_frame(0xc1, b"x"), "reserved bits set"),
        (
            server_frame(0x82, &[0; 1001]),
            "a message over the largest size",
        ),
        (
            server_frame(0x88, &1005u16.to_be_bytes()),
            "a close code no endpoint may send",
        ),
    ];
    for (bad, why) in cases {
        // What the server sent behind its handshake's answer reaches the client first.
        let addr = raw_server([hello.clone(), bad].concat(), false).await;
        let route = format!("/app=ws://{addr}/");
        let gw = TestGateway::start(&["--route", &route, "--max-message-size", "1000"]).await;
        let mut ws = gw.ws("/app").await;
        assert_eq!(next_message(&mut ws).await, Message::text("hello"), "{why}");
        let (code, reason) = close_of(&mut ws).await;
        assert_eq!(code, 1011, "{why}");
        let said = format!("the upstream server sent {why}");
        assert!(reason.starts_with(&said), "{reason:?}");
    }
}

#[tokio::test]
async fn a_server_that_stops_reading_ends_the_session_after_the_write_timeout() {
    let _watchdog = Watchdog::start();
    let addr = raw_server(Vec::new(), true).await;
    let route = format!("/app=ws://{addr}/");
    let gw = TestGateway::start(&["--route", &route, "--idle-timeout", "1s"]).await;
    let ws = gw.ws("/app").await;
    let (mut sink, mut stream) = ws.split();
    let flood = tokio::spawn(async move {
        while sink
            .send(Message::binary(vec![b'x'; 256 << 10]))
            .await
            .is_ok()
        {}
    });
    let closed = within("the close", async {
        loop {
            match stream.next().await {
                Some(Ok(Message::Close(Some(frame)))) => {
                    return (u16::from(frame.code), frame.reason.to_string());
                }
                Some(Ok(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    })
    .await;
    flood.abort();
    assert_eq!(
        closed,
        (1011, "the upstream server read nothing for 1s".into())
    );
}
