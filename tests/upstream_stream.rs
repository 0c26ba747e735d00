//! What a relay holds a client and a server to when the client's frames pass as a byte
//! stream (a native client on `tcp://`, any RFC 6455 client on `tcp+xmlsocket://`, and the
//! socket proxy's), against real servers started here: a server that reads nothing ends
//! the session after the write timeout; text is checked as it streams; a message past the
//! size limit, or holding a NUL for an XMLSocket server, is refused before it reaches the
//! server whole; and what a server sends in pieces of any size comes back whole.

mod common;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use common::upstream::{recording_echo, server};
use common::*;

/// A server that takes each connection and never reads from it.
async fn deaf_server() -> std::net::SocketAddr {
    let (addr, _) = server(|tcp| async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(tcp);
    })
    .await;
    addr
}

/// The close code and reason `ws` gets while it sends 256 KiB messages as fast as the
/// gateway takes them.
async fn close_while_flooding(ws: Ws, binary: bool) -> (u16, String) {
    let (mut sink, mut stream) = ws.split();
    let flood = tokio::spawn(async move {
        loop {
            let message = match binary {
                true => Message::binary(vec![b'x'; 256 << 10]),
                false => Message::text("x".repeat(256 << 10)),
            };
            if sink.send(message).await.is_err() {
                return;
            }
        }
    });
    let close = within("the close frame", async {
        loop {
            match stream.next().await {
                Some(Ok(Message::Close(Some(frame)))) => {
                    return (u16::from(frame.code), frame.reason.to_string());
                }
                Some(Ok(Message::Close(None))) | None | Some(Err(_)) => {
                    panic!("closed without a code")
                }
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    flood.abort();
    close
}

#[tokio::test]
async fn a_server_that_reads_nothing_ends_every_relay_after_the_write_timeout() {
    let deaf = deaf_server().await;
    let gw = TestGateway::start(&[
        "--idle-timeout",
        "1s",
        "--proxy-target",
        &deaf.to_string(),
        "--route",
        &format!("/tcp=tcp://{deaf}"),
        "--route",
        &format!("/xml=tcp+xmlsocket://{deaf}"),
        "--route",
        "/socket=proxy",
    ])
    .await;
    // Byte streams (native on tcp://, native and web-socket-js on XMLSocket, the socket
    // proxy) and a message client (web-socket-js on tcp://, whose binary comes as text).
    // Each opened when its turn comes: one left unread would be closed as idle.
    let cases = [
        ("/tcp", false, false),
        ("/tcp", true, false),
        ("/xml", false, false),
        ("/xml", false, true),
        ("/socket", true, false),
        ("/tcp", false, true),
    ];
    for (path, binary, flash) in cases {
        let ws = match flash {
            false => gw.ws(path).await,
            true => gw.flash_ws(path).await,
        };
        let (code, reason) = close_while_flooding(ws, binary).await;
        assert_eq!(code, 1011, "{path}: {reason}");
        assert!(reason.contains("read nothing for 1s"), "{path}: {reason}");
    }
}

#[tokio::test]
async fn text_that_is_not_utf8_is_refused_with_1007_wherever_it_is_cut() {
    let echo = recording_echo(false, false).await;
    let gw = TestGateway::start(&["--route", &format!("/tcp=tcp://{}", echo.addr)]).await;
    let mut ws = raw_ws(&gw, "/tcp").await;
    // A character cut between two frames passes; one that is not finished does not.
    let euro = "\u{20ac}".as_bytes();
    let mut wire = client_frame(false, 1, &[b"ok ", &euro[..1]].concat());
    wire.extend(client_frame(true, 0, &euro[1..]));
    wire.extend(client_frame(true, 1, b"bad \xe2\x82"));
    ws.write_all(&wire).await.unwrap();
    // The client is closed (whatever of the echo came first is binary), and what streamed
    // before the bad end reached the server, the character cut between frames whole.
    let code = loop {
        match server_frame(&mut ws).await {
            (2, _) => {}
            (8, payload) => break u16::from_be_bytes([payload[0], payload[1]]),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(code, 1007);
    let read = echo.record.wait_for(6).await;
    assert!(read.starts_with("ok \u{20ac}".as_bytes()), "{read:?}");
}

#[tokio::test]
async fn a_message_past_the_limit_is_refused_with_1009_before_the_server_gets_it_whole() {
    let echo = recording_echo(true, false).await;
    let gw = TestGateway::start(&[
        "--max-message-size",
        "1000",
        "--route",
        &format!("/xml=tcp+xmlsocket://{}", echo.addr),
    ])
    .await;
    let mut ws = gw.ws("/xml").await;
    ws.send(Message::text("a".repeat(1000))).await.unwrap();
    let back = next_message(&mut ws).await;
    assert_eq!(
        back,
        Message::text("a".repeat(1000)),
        "the largest taken passes"
    );
    ws.send(Message::text("b".repeat(1001))).await.unwrap();
    let (frame, _) = close_frame(&mut ws).await;
    let frame = frame.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1009, "{}", frame.reason);
    // The header told the size: not one byte of the message reached the server.
    let read = echo.record.bytes();
    assert_eq!(read, [&b"a".repeat(1000)[..], b"\0"].concat());
}

#[tokio::test]
async fn an_xmlsocket_message_holding_a_nul_is_refused_and_the_server_never_reads_it_ended() {
    let echo = recording_echo(true, false).await;
    let route = format!("/xml=tcp+xmlsocket://{}", echo.addr);
    let gw = TestGateway::start(&["--route", &route]).await;
    for flash in [false, true] {
        let mut ws = match flash {
            false => gw.ws("/xml").await,
            true => gw.flash_ws("/xml").await,
        };
        ws.send(Message::text("<hello/>")).await.unwrap();
        assert_eq!(next_message(&mut ws).await, Message::text("<hello/>"));
        ws.send(Message::text("<a/>\0<b/>")).await.unwrap();
        let (frame, _) = close_frame(&mut ws).await;
        let frame = frame.expect("a close frame");
        assert_eq!(u16::from(frame.code), 1003, "{}", frame.reason);
        assert!(frame.reason.contains("NUL"), "{}", frame.reason);
    }
    // Two hellos ended by their NULs, and at most the start of the refused message, never
    // ended.
    let read = echo.record.bytes();
    let mut messages: Vec<&[u8]> = read.split(|&b| b == 0).collect();
    let rest = messages.pop().unwrap();
    assert_eq!(messages, [b"<hello/>", b"<hello/>"], "{read:?}");
    assert!(b"<a/><a/>".starts_with(rest), "{read:?}");
}

#[tokio::test]
async fn xmlsocket_pieces_cut_anywhere_come_back_whole_and_bad_ones_close_1011() {
    // A server that sends three messages a byte at a time, then one that is not UTF-8.
    let (addr, _) = server(|mut tcp| async move {
        let mut hello = [0u8; 1];
        if tcp.read_exact(&mut hello).await.is_err() {
            return;
        }
        for byte in "<a/>\0<\u{e9}t\u{e9}/>\0\0".bytes() {
            let _ = tcp.write_all(&[byte]).await;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let _ = tcp.write_all(b"\xff\xfe\0").await;
        tokio::time::sleep(Duration::from_secs(10)).await;
    })
    .await;
    let gw = TestGateway::start(&["--route", &format!("/xml=tcp+xmlsocket://{addr}")]).await;
    let mut ws = gw.ws("/xml").await;
    ws.send(Message::text("go")).await.unwrap();
    for expected in ["<a/>", "<\u{e9}t\u{e9}/>", ""] {
        assert_eq!(next_message(&mut ws).await, Message::text(expected));
    }
    let (frame, _) = close_frame(&mut ws).await;
    let frame = frame.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1011);
    assert!(frame.reason.contains("not UTF-8"), "{}", frame.reason);
}
