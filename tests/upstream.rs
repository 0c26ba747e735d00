//! Upstream routes: clients relayed to a TCP server (`tcp://`) or a Flash XMLSocket server
//! (`tcp+xmlsocket://`) started by each test, with the PROXY protocol header when asked.

mod common;

use common::http_stream::{Stream, post, rand_u16};
use common::upstream::{read_proxy_header, server, tcp_echo, xmlsocket_chat};

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::SinkExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;

use common::*;

/// The client's own address on its connection to the gateway.
fn client_addr(ws: &Ws) -> SocketAddr {
    match ws.get_ref() {
        MaybeTlsStream::Plain(tcp) => tcp.local_addr().unwrap(),
        _ => unreachable!("the tests speak plain WebSocket"),
    }
}

/// Binary messages from `ws` until `want` bytes have come.
async fn binary_bytes(ws: &mut Ws, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < want {
        match next_message(ws).await {
            Message::Binary(bytes) => got.extend_from_slice(&bytes),
            other => panic!("expected binary, got {other:?}"),
        }
    }
    got
}

#[tokio::test]
async fn a_tcp_upstream_gets_each_message_as_bytes_and_its_bytes_come_back_as_binary() {
    let (echo, _) = tcp_echo().await;
    let gw = TestGateway::start(&["--route", &format!("/tcp=tcp://{echo}")]).await;
    let mut ws = gw.ws("/tcp").await;
    ws.send(Message::text("héllo ")).await.unwrap();
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    let mut want = "héllo ".as_bytes().to_vec();
    want.extend_from_slice(&[0, 1, 2, 255]);
    assert_eq!(binary_bytes(&mut ws, want.len()).await, want);

    // A text-only client (web-socket-js) gets the bytes by the documented text rule.
    let mut flash = gw.flash_ws("/tcp").await;
    send_text(&mut flash, "hi").await;
    assert_eq!(
        next_message(&mut flash).await,
        Message::text("data:application/octet-stream;base64,aGk=")
    );
}

#[tokio::test]
async fn a_sockjs_client_reaches_a_tcp_upstream_and_gets_its_bytes_by_the_text_rule() {
    let (echo, _) = tcp_echo().await;
    let gw = TestGateway::start(&["--route", &format!("/tcp=tcp://{echo}")]).await;
    let s = format!("/tcp/000/{}", rand_u16());
    let mut stream = Stream::open(gw.main, "POST", &format!("{s}/xhr_streaming"), b"").await;
    stream.chunk().await.unwrap(); // the prelude
    assert_eq!(stream.chunk().await.unwrap(), "o\n");
    assert_eq!(
        post(gw.main, &format!("{s}/xhr_send"), "[\"hi\"]").await.0,
        204
    );
    assert_eq!(
        stream.chunk().await.unwrap(),
        "a[\"data:application/octet-stream;base64,aGk=\"]\n"
    );
}

#[tokio::test]
async fn a_relayed_session_stays_awake_and_keeps_its_one_upstream_connection() {
    // A server that speaks on its own, long after the client last did.
    let (addr, accepted) = server(|mut tcp| async move {
        let mut first = [0u8; 5];
        tcp.read_exact(&mut first).await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        tcp.write_all(b"later").await.unwrap();
        let _ = tcp.read(&mut first).await;
    })
    .await;
    let route = format!("/tcp=tcp://{addr}");
    let gw = TestGateway::start(&["--route", &route, "--hibernate-after", "100ms"]).await;
    let mut ws = gw.ws("/tcp").await;
    send_text(&mut ws, "first").await;
    assert_eq!(binary_bytes(&mut ws, 5).await, b"later");
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one upstream connection"
    );
}

/// A TCP server that reads a PROXY header, then echoes; the headers it read are sent on
/// the channel.
async fn proxied_echo() -> (SocketAddr, tokio::sync::mpsc::Receiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let header = read_proxy_header(&mut tcp).await;
                tx.send(header).await.unwrap();
                let (mut read, mut write) = tcp.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn the_upstream_learns_the_clients_address_from_a_proxy_header_v1_and_v2() {
    let (v1, mut headers_v1) = proxied_echo().await;
    let (v2, mut headers_v2) = proxied_echo().await;
    let routes = format!("/one=tcp://{v1}?proxy-protocol=v1,/two=tcp://{v2}?proxy-protocol=v2");
    let gw = TestGateway::start(&["--route", &routes]).await;

    let mut ws = gw.ws("/one").await;
    let client = client_addr(&ws);
    let header = within("a v1 header", headers_v1.recv()).await.unwrap();
    let want = format!(
        "PROXY TCP4 {} {} {} {}\r\n",
        client.ip(),
        gw.main.ip(),
        client.port(),
        gw.main.port()
    );
    assert_eq!(String::from_utf8(header).unwrap(), want);
    send_text(&mut ws, "after the header").await;
    assert_eq!(binary_bytes(&mut ws, 16).await, b"after the header");

    let mut ws = gw.ws("/two").await;
    let client = client_addr(&ws);
    let header = within("a v2 header", headers_v2.recv()).await.unwrap();
    assert_eq!(
        &header[12..16],
        &[0x21, 0x11, 0, 12],
        "PROXY, TCP over IPv4, 12 bytes"
    );
    let ip = |b: &[u8]| std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]);
    let port = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
    assert_eq!(
        (ip(&header[16..20]), ip(&header[20..24])),
        (std::net::Ipv4Addr::LOCALHOST, std::net::Ipv4Addr::LOCALHOST)
    );
    assert_eq!(
        (port(&header[24..26]), port(&header[26..28])),
        (client.port(), gw.main.port())
    );
    send_text(&mut ws, "v2").await;
    assert_eq!(binary_bytes(&mut ws, 2).await, b"v2");
}

#[tokio::test]
async fn xmlsocket_clients_chat_in_nul_ended_messages_and_a_nul_is_refused() {
    let chat = xmlsocket_chat().await;
    let gw = TestGateway::start(&["--route", &format!("/xml=tcp+xmlsocket://{chat}")]).await;
    let mut alice = gw.ws("/xml").await;
    let mut bob = gw.flash_ws("/xml").await;
    // Both are connected upstream once each has spoken.
    send_text(&mut alice, "<hello from=\"alice\"/>").await;
    assert_eq!(
        next_message(&mut alice).await,
        Message::text("<hello from=\"alice\"/>")
    );
    send_text(&mut bob, "<msg>ça va ?</msg>").await;
    for ws in [&mut alice, &mut bob] {
        let mut got = next_message(ws).await;
        if got == Message::text("<hello from=\"alice\"/>") {
            got = next_message(ws).await;
        }
        assert_eq!(got, Message::text("<msg>ça va ?</msg>"));
    }
    send_text(&mut alice, "two\0messages").await;
    let (frame, _) = close_frame(&mut alice).await;
    let frame = frame.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1003);
    assert!(frame.reason.contains("NUL"), "{}", frame.reason);
}

#[tokio::test]
async fn an_unreachable_upstream_closes_the_client_with_1011_and_why() {
    // A port nothing listens on: bound, then closed.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let gw = TestGateway::start(&["--route", &format!("/tcp=tcp://{addr}")]).await;
    let mut ws = gw.ws("/tcp").await;
    let (frame, _) = close_frame(&mut ws).await;
    let frame = frame.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1011);
    assert!(
        frame.reason.starts_with("upstream unreachable"),
        "{}",
        frame.reason
    );
}
