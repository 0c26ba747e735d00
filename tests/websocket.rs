//! The RFC 6455 endpoint with real tokio-tungstenite clients: echo, broadcast rooms, the
//! Flash binary rule, limits (1009, slow readers), the origin check and idle clients.

mod common;

use std::time::Duration;

use base64::Engine;
use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error, Message};

const DATA_URL: &str = "data:application/octet-stream;base64,";

/// The HTTP status of a refused handshake.
async fn refused_status(
    request: tokio_tungstenite::tungstenite::handshake::client::Request,
) -> u16 {
    match tokio_tungstenite::connect_async(request).await {
        Err(Error::Http(response)) => response.status().as_u16(),
        other => panic!("expected a refused handshake, got {other:?}"),
    }
}

fn decode_data_url(message: &Message) -> Vec<u8> {
    let Message::Text(text) = message else {
        panic!("a Flash client got a non-text message: {message:?}");
    };
    let b64 = text
        .as_str()
        .strip_prefix(DATA_URL)
        .unwrap_or_else(|| panic!("not a data URL: {text}"));
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

#[tokio::test]
async fn echo_returns_text_and_binary_to_the_sender() {
    let gw = TestGateway::start(&[]).await;
    let mut ws = gw.browser_ws("/echo").await;
    for message in [
        Message::text("hello"),
        Message::text("ünïcödé ✓ 𝄞"),
        Message::text(""),
        Message::text("x".repeat(70_000)),
        Message::binary(vec![0u8, 1, 2, 255]),
        Message::binary(vec![7u8; 100_000]),
    ] {
        ws.send(message.clone()).await.unwrap();
        assert_eq!(next_message(&mut ws).await, message);
    }
}

#[tokio::test]
async fn ping_gets_pong_with_same_payload() {
    let gw = TestGateway::start(&[]).await;
    let mut ws = gw.ws("/echo").await;
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    let pong = within("pong", async {
        loop {
            if let Some(Ok(Message::Pong(data))) = ws.next().await {
                return data;
            }
        }
    })
    .await;
    assert_eq!(&pong[..], b"are you there");
}

#[tokio::test]
async fn client_close_is_answered_with_the_same_code() {
    let gw = TestGateway::start(&[]).await;
    let mut ws = gw.ws("/echo").await;
    ws.close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .await
    .unwrap();
    let (frame, _) = close_frame(&mut ws).await;
    assert_eq!(frame.unwrap().code, CloseCode::Normal);
}

#[tokio::test]
async fn message_over_the_limit_closes_with_1009() {
    let gw = TestGateway::start(&["--max-message-size", "1024"]).await;
    let mut ws = gw.ws("/echo").await;
    send_text(&mut ws, &"a".repeat(1024)).await;
    assert_eq!(next_message(&mut ws).await, Message::text("a".repeat(1024)));
    // Over the limit in fragments, too: the limit is on the whole message.
    let _ = ws.send(Message::text("b".repeat(1025))).await;
    let (frame, _) = close_frame(&mut ws).await;
    let frame = frame.expect("a close frame");
    assert_eq!(frame.code, CloseCode::Size);
    assert!(frame.reason.contains("1024"), "{}", frame.reason);
}

#[tokio::test]
async fn invalid_utf8_text_closes_with_1007() {
    let gw = TestGateway::start(&[]).await;
    let mut stream = tokio::net::TcpStream::connect(gw.main).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(gw.ws_url("/echo"), &mut stream)
        .await
        .unwrap();
    // tungstenite refuses to send invalid text, so write the frame by hand.
    ws.send(Message::Frame(
        tokio_tungstenite::tungstenite::protocol::frame::Frame::message(
            vec![0xff, 0xfe],
            tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode::Data(
                tokio_tungstenite::tungstenite::protocol::frame::coding::Data::Text,
            ),
            true,
        ),
    ))
    .await
    .unwrap();
    let frame = within("close", async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => {}
                other => panic!("{other:?}"),
            }
        }
    })
    .await;
    assert_eq!(frame.unwrap().code, CloseCode::Invalid);
}

#[tokio::test]
async fn disallowed_origin_gets_403_before_upgrade() {
    let gw = TestGateway::start(&[]).await;
    let request = gw.ws_request("/echo", &[("Origin", "http://evil.example")]);
    assert_eq!(refused_status(request).await, 403);
    // The gateway's own page and listed origins are let in.
    gw.browser_ws("/echo").await;
    let gw = TestGateway::start(&["--allow-origin", "http://games.example"]).await;
    gw.ws_with(
        "/echo",
        &[("Origin", "http://games.example"), ("User-Agent", "x")],
    )
    .await;
}

#[tokio::test]
async fn plain_get_on_a_websocket_route_gets_426_and_unknown_route_404() {
    let gw = TestGateway::start(&[]).await;
    // A route without SockJS (the socket proxy's) is only a WebSocket endpoint.
    let res = get(gw.main, "/socket").await;
    assert_eq!(res.status, 426);
    assert!(res.text().contains("WebSocket"), "{}", res.text());
    // With SockJS, a plain GET of the base URL is SockJS's greeting.
    let res = get(gw.main, "/echo").await;
    assert_eq!(
        (res.status, res.text().as_str()),
        (200, "Welcome to SockJS!\n")
    );
    let request = gw.ws_request("/nowhere", &[]);
    assert_eq!(refused_status(request).await, 404);
}

#[tokio::test]
async fn broadcast_reaches_everyone_in_the_room_in_order() {
    let gw = TestGateway::start(&[]).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(gw.browser_ws("/chat").await);
    }
    // Each client sends in turn; every client, the sender included, sees every message in
    // the one order they were published.
    for round in 0..20 {
        for i in 0..clients.len() {
            let text = format!("{round}:{i}");
            send_text(&mut clients[i], &text).await;
            for (j, client) in clients.iter_mut().enumerate() {
                assert_eq!(
                    next_message(client).await,
                    Message::text(&text),
                    "client {j}"
                );
            }
        }
    }
}

#[tokio::test]
async fn rooms_are_isolated() {
    let gw =
        TestGateway::start(&["--route", "/chat=broadcast", "--route", "/other=broadcast"]).await;
    let mut a1 = gw.ws("/chat?room=a").await;
    let mut a2 = gw.ws("/chat?room=a").await;
    let mut b = gw.ws("/chat?room=b").await;
    let mut other = gw.ws("/other?room=a").await;
    send_text(&mut b, "for b").await;
    send_text(&mut other, "for other").await;
    send_text(&mut a1, "for a").await;
    assert_eq!(next_message(&mut a2).await, Message::text("for a"));
    assert_eq!(next_message(&mut b).await, Message::text("for b"));
    assert_eq!(next_message(&mut other).await, Message::text("for other"));
    // Nothing else arrived at a2: the next thing it sees is its own message.
    send_text(&mut a2, "mine").await;
    assert_eq!(next_message(&mut a2).await, Message::text("mine"));
}

#[tokio::test]
async fn bad_room_name_is_refused_with_400() {
    let gw = TestGateway::start(&[]).await;
    let request = gw.ws_request("/chat?room=a%2Fb", &[]);
    assert_eq!(refused_status(request).await, 400);
}

#[tokio::test]
async fn flash_client_gets_binary_as_base64_text_never_a_binary_frame() {
    let gw = TestGateway::start(&[]).await;
    let payload: Vec<u8> = (0..=255u8).chain([0, 0, 255]).collect();
    // Recognised by the handshake's shape (Origin, no User-Agent) and by ?flash=1.
    let mut by_shape = gw.flash_ws("/chat?room=mixed").await;
    let mut by_query = gw.ws("/chat?room=mixed&flash=1").await;
    let mut native = gw.browser_ws("/chat?room=mixed").await;
    native.send(Message::binary(payload.clone())).await.unwrap();
    assert_eq!(
        next_message(&mut native).await,
        Message::binary(payload.clone())
    );
    assert_eq!(decode_data_url(&next_message(&mut by_shape).await), payload);
    assert_eq!(decode_data_url(&next_message(&mut by_query).await), payload);
    // Text passes unchanged, and a binary echo to a Flash client is text too.
    send_text(&mut native, "plain").await;
    assert_eq!(next_message(&mut by_shape).await, Message::text("plain"));
    let mut echo = gw.flash_ws("/echo").await;
    echo.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(decode_data_url(&next_message(&mut echo).await), [1, 2, 3]);
}

#[tokio::test]
async fn flash_0_overrides_the_handshake_shape() {
    let gw = TestGateway::start(&[]).await;
    let origin = format!("http://{}", gw.main);
    let mut ws = gw.ws_with("/echo?flash=0", &[("Origin", &origin)]).await;
    ws.send(Message::binary(vec![9u8])).await.unwrap();
    assert_eq!(next_message(&mut ws).await, Message::binary(vec![9u8]));
}

#[tokio::test]
async fn slow_reader_is_closed_with_1008_and_never_slows_the_others() {
    let gw = TestGateway::start(&["--send-backlog", "65536"]).await;
    let mut slow = gw.ws("/chat?room=flood").await;
    let mut fast = gw.ws("/chat?room=flood").await;
    let mut publisher = gw.ws("/chat?room=flood").await;
    const COUNT: usize = 400;
    let chunk = "z".repeat(64 * 1024);
    // The publisher and the fast reader run together; `slow` reads nothing meanwhile.
    publish_while_read(&mut publisher, &mut fast, COUNT, &chunk).await;
    // The slow client, reading again a while later (longer than a normal close handshake
    // may take), finds what fitted in the buffers, then the close that says why.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (frame, received) = close_frame(&mut slow).await;
    assert!(received < COUNT, "the slow client was not dropped");
    let frame = frame.expect("a close frame");
    assert_eq!(frame.code, CloseCode::Policy);
    assert!(frame.reason.contains("send queue full"), "{}", frame.reason);
}

#[tokio::test]
async fn idle_client_that_answers_pings_stays_connected() {
    let gw = TestGateway::start(&["--idle-timeout", "300ms"]).await;
    // tungstenite answers each ping while it reads, as every WebSocket client does.
    stays_through_three_pings(&mut gw.ws("/echo").await).await;
}

#[tokio::test]
async fn idle_client_that_does_not_answer_is_closed_with_1001() {
    let gw = TestGateway::start(&["--idle-timeout", "300ms"]).await;
    let mut silent = gw.ws("/echo").await;
    // Not reading is the behaviour under test: the ping goes unanswered for longer than
    // the two idle periods after which the gateway gives up (300 ms each).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let frame = within("the idle close", async {
        let mut pinged = false;
        loop {
            match silent.next().await {
                Some(Ok(Message::Ping(_))) => pinged = true,
                Some(Ok(Message::Close(frame))) => return (pinged, frame),
                other => panic!("expected a ping then a close, got {other:?}"),
            }
        }
    })
    .await;
    assert!(frame.0, "the client was pinged before being closed");
    let frame = frame.1.expect("a close frame");
    assert_eq!(frame.code, CloseCode::Away);
    assert!(frame.reason.contains("idle"), "{}", frame.reason);
}

/// Sends a hand-written handshake to `/echo` and reads the answer's head.
async fn raw_handshake(gw: &TestGateway, method: &str, headers: &[(&str, &str)]) -> Response {
    let mut stream = tokio::net::TcpStream::connect(gw.main).await.unwrap();
    use tokio::io::AsyncWriteExt;
    stream
        .write_all(request(method, "/echo", headers).as_bytes())
        .await
        .unwrap();
    read_response(&mut stream).await
}

const UPGRADE: [(&str, &str); 2] = [("Upgrade", "websocket"), ("Connection", "Upgrade")];

#[tokio::test]
async fn answers_426_name_the_protocol_and_version_to_upgrade_to() {
    let gw = TestGateway::start(&[]).await;
    // RFC 9110 (15.5.22): a 426 names the protocol to switch to in Upgrade.
    let plain = get(gw.main, "/socket").await;
    assert_eq!(plain.status, 426);
    assert_eq!(plain.header("upgrade"), Some("websocket"), "{plain:?}");
    // RFC 6455 (4.2.2): an unsupported version is answered with the versions spoken.
    let mut headers = UPGRADE.to_vec();
    headers.extend([
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "8"),
    ]);
    let old = raw_handshake(&gw, "GET", &headers).await;
    assert_eq!(old.status, 426);
    assert_eq!(old.header("sec-websocket-version"), Some("13"), "{old:?}");
}

#[tokio::test]
async fn missing_or_malformed_key_gets_400_and_a_good_key_101() {
    let gw = TestGateway::start(&[]).await;
    for key in [
        None,
        Some("short"),
        Some("!!!!!!!!!!!!!!!!!!!!!!!!"),
        Some("dGhlIHNhbXBsZSBub25jZQ"),
        Some("dGhlIHNhbXBsZSBub25jZQ=====" /* too long */),
    ] {
        let mut headers = UPGRADE.to_vec();
        headers.push(("Sec-WebSocket-Version", "13"));
        if let Some(key) = key {
            headers.push(("Sec-WebSocket-Key", key));
        }
        let res = raw_handshake(&gw, "GET", &headers).await;
        assert_eq!(res.status, 400, "key {key:?}");
    }
    let mut headers = UPGRADE.to_vec();
    headers.extend([
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ]);
    let ok = raw_handshake(&gw, "GET", &headers).await;
    assert_eq!(ok.status, 101);
    assert_eq!(
        ok.header("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "the accept value of RFC 6455's example"
    );
}

#[tokio::test]
async fn handshake_with_another_method_gets_405() {
    let gw = TestGateway::start(&[]).await;
    let mut headers = UPGRADE.to_vec();
    headers.extend([
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Content-Length", "0"),
    ]);
    assert_eq!(raw_handshake(&gw, "POST", &headers).await.status, 405);
}

#[tokio::test]
async fn first_frame_sent_with_the_handshake_in_one_write_is_not_lost() {
    let gw = TestGateway::start(&[]).await;
    let mut headers = UPGRADE.to_vec();
    headers.extend([
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ]);
    let mut bytes = request("GET", "/echo", &headers).into_bytes();
    // A masked text frame "hi" right behind the request, as an eager client may send it.
    let mask = [0x11, 0x22, 0x33, 0x44];
    bytes.extend([0x81, 0x80 | 2]);
    bytes.extend(mask);
    bytes.extend([b'h' ^ mask[0], b'i' ^ mask[1]]);
    let mut stream = tokio::net::TcpStream::connect(gw.main).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(&bytes).await.unwrap();
    // The answer's head, then the echo, possibly in one segment.
    let mut raw = Vec::new();
    let mut buf = [0u8; 1024];
    let frame = within("the handshake answer and the echo", async {
        loop {
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n")
                && raw.len() >= end + 4 + 4
            {
                return raw.split_off(end + 4);
            }
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&raw));
            raw.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert_eq!(parse_response(&raw).status, 101);
    assert_eq!(
        frame,
        [0x81, 2, b'h', b'i'],
        "an unmasked text frame \"hi\""
    );
}

#[tokio::test]
async fn client_publishing_as_fast_as_it_can_is_not_dropped_for_its_own_copies() {
    let gw = TestGateway::start(&["--send-backlog", "4096"]).await;
    let ws = gw.ws("/chat?room=firehose").await;
    let (mut sink, mut stream) = ws.split();
    const COUNT: usize = 2000;
    let body = "p".repeat(1024);
    let writer = async {
        for i in 0..COUNT {
            within("send", sink.feed(Message::text(format!("{i}:{body}"))))
                .await
                .unwrap();
        }
        within("flush", sink.flush()).await.unwrap();
    };
    let reader = async {
        for i in 0..COUNT {
            let message = within("own copy", stream.next()).await;
            match message {
                Some(Ok(Message::Text(text))) => {
                    assert!(text.starts_with(&format!("{i}:")), "copy {i} out of order")
                }
                other => panic!("copy {i}: {other:?}"),
            }
        }
    };
    tokio::join!(writer, reader);
}

/// A raw upgrade request with these first lines, answered with a status.
async fn raw_upgrade(gw: &TestGateway, head: &str) -> Response {
    let request = format!(
        "{head}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    let mut stream = tokio::net::TcpStream::connect(gw.main).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
        .await
        .unwrap();
    read_response(&mut stream).await
}

#[tokio::test]
async fn an_http_1_0_upgrade_or_one_without_host_gets_400_saying_why() {
    let gw = TestGateway::start(&[]).await;
    let old = raw_upgrade(&gw, "GET /echo HTTP/1.0\r\nHost: test").await;
    assert_eq!(old.status, 400);
    assert!(old.text().contains("HTTP/1.1"), "{}", old.text());
    let hostless = raw_upgrade(&gw, "GET /echo HTTP/1.1").await;
    assert_eq!(hostless.status, 400);
    assert!(hostless.text().contains("Host"), "{}", hostless.text());
    // The same request with both is upgraded.
    let fine = raw_upgrade(&gw, "GET /echo HTTP/1.1\r\nHost: test").await;
    assert_eq!(fine.status, 101);
}

#[tokio::test]
async fn a_route_owns_the_paths_under_it() {
    let gw = TestGateway::start(&[]).await;
    // Exactly the route: a WebSocket endpoint, as always.
    let mut ws = gw.ws("/chat").await;
    send_text(&mut ws, "still here").await;
    assert_eq!(next_message(&mut ws).await, Message::text("still here"));
    // Under it: the route's (SockJS's), not a file's.
    let under = http(gw.main, "POST", "/chat/123/abc/xhr", &[]).await;
    assert_eq!((under.status, under.text().as_str()), (200, "o\n"));
    let nothing = get(gw.main, "/chat/nothing").await;
    assert_eq!(nothing.status, 404);
    assert!(nothing.text().contains("under /chat"), "{}", nothing.text());
    // A path that only starts like it is not the route's.
    assert_eq!(get(gw.main, "/chatroom").await.status, 404);
    assert!(
        !get(gw.main, "/chatroom")
            .await
            .text()
            .contains("under /chat")
    );
}
