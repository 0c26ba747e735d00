//! hixie-76 (and hixie-75) WebSocket clients through the real gateway: a raw TCP client
//! written here for the handshake's every shape (cut anywhere, the body late or never, bad
//! keys, a foreign origin) and the framing, and websocket-client 0.4 (CPython 2.7), a
//! third-party draft-76 client, echoing and chatting with an RFC 6455 client.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// The draft's own example keys, and the answer to its body.
const KEY1: &str = "4 @1  46546xW%0l 1 5";
const KEY2: &str = "12998 5 Y3 1  .P00";
const BODY: &[u8; 8] = b"^n:ds[4U";
const ANSWER: &[u8; 16] = b"8jKS'y:G*Co,Wxa-";

/// A hixie-76 request head for `path`, from a page of `origin`.
fn head(addr: SocketAddr, path: &str, origin: &str, key1: &str, key2: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\n\
         Origin: {origin}\r\nSec-WebSocket-Key1: {key1}\r\nSec-WebSocket-Key2: {key2}\r\n\r\n"
    )
}

/// The gateway's own page, as a browser names its origin.
fn own(gw: &TestGateway) -> String {
    format!("http://{}", gw.main)
}

async fn connect(gw: &TestGateway) -> TcpStream {
    let stream = TcpStream::connect(gw.main).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Reads a response head, up to its blank line, and nothing past it.
async fn read_head(stream: &mut TcpStream) -> Response {
    let mut raw = Vec::new();
    within("a response head", async {
        while !raw.ends_with(b"\r\n\r\n") {
            let byte = stream.read_u8().await.expect("the head, before the end");
            raw.push(byte);
        }
    })
    .await;
    parse_response(&raw)
}

async fn read_exactly(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut got = vec![0; n];
    within("bytes from the gateway", stream.read_exact(&mut got))
        .await
        .expect("bytes, before the end");
    got
}

/// A hixie-76 client of `path`, handshake done.
async fn hixie(gw: &TestGateway, path: &str) -> TcpStream {
    let mut stream = connect(gw).await;
    let request = head(gw.main, path, &own(gw), KEY1, KEY2);
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(BODY).await.unwrap();
    assert_eq!(read_head(&mut stream).await.status, 101);
    assert_eq!(read_exactly(&mut stream, 16).await, ANSWER);
    stream
}

async fn send(stream: &mut TcpStream, text: &str) {
    let frame = [&[0x00], text.as_bytes(), &[0xFF]].concat();
    stream.write_all(&frame).await.unwrap();
}

/// The next text frame from the gateway.
async fn recv(stream: &mut TcpStream) -> String {
    within("a text frame", async {
        assert_eq!(stream.read_u8().await.unwrap(), 0x00, "a text frame");
        let mut text = Vec::new();
        loop {
            match stream.read_u8().await.unwrap() {
                0xFF => return String::from_utf8(text).unwrap(),
                b => text.push(b),
            }
        }
    })
    .await
}

/// The gateway's closing handshake, then the end of the stream.
async fn closed(stream: &mut TcpStream) {
    let rest = read_to_close(stream).await;
    assert_eq!(rest, [0xFF, 0x00], "the closing handshake, then the end");
}

#[tokio::test]
async fn the_head_comes_at_once_and_the_answer_when_the_body_does() {
    let gw = TestGateway::start(&[]).await;
    let mut stream = connect(&gw).await;
    let request = head(gw.main, "/echo?x=1", &own(&gw), KEY1, KEY2);
    stream.write_all(request.as_bytes()).await.unwrap();
    let res = read_head(&mut stream).await;
    assert_eq!(res.status, 101);
    assert_eq!(res.header("upgrade"), Some("WebSocket"));
    assert_eq!(res.header("connection"), Some("Upgrade"));
    assert_eq!(res.header("sec-websocket-origin"), Some(own(&gw).as_str()));
    let location = format!("ws://{}/echo?x=1", gw.main);
    assert_eq!(
        res.header("sec-websocket-location"),
        Some(location.as_str())
    );
    assert_eq!(res.header("content-length"), None);
    // As behind HAProxy: the body comes only once the head has.
    let early = tokio::time::timeout(Duration::from_millis(200), stream.read_u8()).await;
    assert!(early.is_err(), "nothing before the body: {early:?}");
    stream.write_all(BODY).await.unwrap();
    assert_eq!(read_exactly(&mut stream, 16).await, ANSWER);
    send(&mut stream, "hello").await;
    assert_eq!(recv(&mut stream).await, "hello");
}

#[tokio::test]
async fn the_handshake_may_be_cut_anywhere() {
    let gw = TestGateway::start(&[]).await;
    let request = [
        head(gw.main, "/echo", &own(&gw), KEY1, KEY2).as_bytes(),
        BODY,
    ]
    .concat();
    let len = request.len();
    // In two pieces at every point of the body and around the head's end, and a byte at a
    // time.
    let mut cuts: Vec<Vec<usize>> = (len - 12..len).map(|at| vec![at]).collect();
    cuts.push((1..len).collect());
    for cut in cuts {
        let mut stream = connect(&gw).await;
        let mut at = 0;
        for &end in cut.iter().chain([&len]) {
            stream.write_all(&request[at..end]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
            at = end;
        }
        assert_eq!(read_head(&mut stream).await.status, 101, "cut at {cut:?}");
        assert_eq!(
            read_exactly(&mut stream, 16).await,
            ANSWER,
            "cut at {cut:?}"
        );
    }
}

#[tokio::test]
async fn a_body_never_sent_ends_at_the_handshake_timeout() {
    let gw = TestGateway::start(&["--handshake-timeout", "300ms"]).await;
    let mut stream = connect(&gw).await;
    let request = head(gw.main, "/echo", &own(&gw), KEY1, KEY2);
    stream.write_all(request.as_bytes()).await.unwrap();
    assert_eq!(read_head(&mut stream).await.status, 101);
    let started = std::time::Instant::now();
    assert_eq!(
        read_to_close(&mut stream).await,
        b"",
        "no answer, and closed"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn each_bad_key_gets_400_saying_why() {
    let gw = TestGateway::start(&[]).await;
    let cases = [
        ("1234", KEY2, "Sec-WebSocket-Key1 has no spaces"),
        (
            KEY1,
            "10  1",
            "Sec-WebSocket-Key2's number is not a multiple of its spaces",
        ),
        ("4294967296 z", KEY2, "does not fit in 32 bits"),
        ("   ", KEY2, "Sec-WebSocket-Key1 has no digits"),
    ];
    for (key1, key2, why) in cases {
        let request = [
            head(gw.main, "/echo", &own(&gw), key1, key2).as_bytes(),
            BODY,
        ]
        .concat();
        let res = parse_response(&exchange(gw.main, &[&request], false).await);
        assert_eq!(res.status, 400, "{key1:?} {key2:?}");
        // The connection closes after it: the body is not read as another request.
        assert!(
            res.text().trim_end().ends_with(why),
            "{:?} lacks {why:?}",
            res.text()
        );
    }
}

#[tokio::test]
async fn a_foreign_origin_gets_403() {
    let gw = TestGateway::start(&[]).await;
    let request = head(gw.main, "/echo", "http://evil.example", KEY1, KEY2);
    let res = parse_response(&exchange(gw.main, &[request.as_bytes(), BODY], false).await);
    assert_eq!(res.status, 403);
}

#[tokio::test]
async fn the_closing_handshake_is_answered_and_the_socket_closed() {
    let gw = TestGateway::start(&[]).await;
    let mut stream = hixie(&gw, "/echo").await;
    send(&mut stream, "caf\u{e9}").await;
    assert_eq!(recv(&mut stream).await, "caf\u{e9}");
    // A length-prefixed frame is skipped, as the draft says.
    stream.write_all(&[0x80, 0x03, 1, 2, 3]).await.unwrap();
    send(&mut stream, "after").await;
    assert_eq!(recv(&mut stream).await, "after");
    stream.write_all(&[0xFF, 0x00]).await.unwrap();
    closed(&mut stream).await;
}

#[tokio::test]
async fn a_message_past_the_limit_or_not_utf8_closes_the_connection() {
    let gw = TestGateway::start(&["--max-message-size", "200"]).await;
    let mut stream = hixie(&gw, "/echo").await;
    send(&mut stream, &"x".repeat(200)).await;
    assert_eq!(recv(&mut stream).await, "x".repeat(200));
    // Never ended: the gateway stops reading at the limit, not at the frame's end.
    stream
        .write_all(&[&[0x00][..], &[b'x'; 201]].concat())
        .await
        .unwrap();
    closed(&mut stream).await;
    let mut stream = hixie(&gw, "/echo").await;
    stream.write_all(b"\x00\xc3\x28\xff").await.unwrap();
    closed(&mut stream).await;
}

#[tokio::test]
async fn a_silent_client_is_closed_at_the_idle_timeout() {
    let gw = TestGateway::start(&["--idle-timeout", "300ms"]).await;
    let mut stream = hixie(&gw, "/echo").await;
    closed(&mut stream).await;
}

#[tokio::test]
async fn shutdown_sends_the_closing_handshake() {
    let mut gw = TestGateway::start(&[]).await;
    let mut stream = hixie(&gw, "/echo").await;
    send(&mut stream, "before").await;
    assert_eq!(recv(&mut stream).await, "before");
    let (took, ()) = tokio::join!(gw.shutdown(), closed(&mut stream));
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn a_room_is_shared_with_rfc_6455_clients_and_binary_arrives_as_text() {
    let gw = TestGateway::start(&[]).await;
    let mut native = gw.ws("/chat?room=mixed").await;
    let mut old = hixie(&gw, "/chat?room=mixed").await;
    send(&mut old, "from hixie").await;
    assert_eq!(next_message(&mut native).await, Message::text("from hixie"));
    assert_eq!(recv(&mut old).await, "from hixie");
    native.send(Message::text("from rfc6455")).await.unwrap();
    assert_eq!(recv(&mut old).await, "from rfc6455");
    native
        .send(Message::binary(vec![0u8, 1, 2, 0xFF]))
        .await
        .unwrap();
    assert_eq!(
        recv(&mut old).await,
        "data:application/octet-stream;base64,AAEC/w=="
    );
}

/// Long enough for a session set to sleep after 50 ms to be asleep.
const ASLEEP: Duration = Duration::from_millis(400);

#[tokio::test]
async fn a_sleeping_hixie_member_gets_every_message_in_order_and_wakes_to_speak() {
    let gw = TestGateway::start(&["--hibernate-after", "50ms"]).await;
    let mut old = hixie(&gw, "/chat?room=night").await;
    let mut publisher = gw.ws("/chat?room=night").await;
    tokio::time::sleep(ASLEEP).await;
    let mut all: Vec<_> = (0..200)
        .map(|i| Ok(Message::text(format!("{i}: {}", "z".repeat(i)))))
        .collect();
    all.push(Ok(Message::binary(vec![0u8, 1, 2, 0xFF])));
    publisher
        .send_all(&mut futures_util::stream::iter(all))
        .await
        .unwrap();
    for i in 0..200 {
        assert_eq!(recv(&mut old).await, format!("{i}: {}", "z".repeat(i)));
    }
    assert_eq!(
        recv(&mut old).await,
        "data:application/octet-stream;base64,AAEC/w=="
    );
    tokio::time::sleep(ASLEEP).await;
    send(&mut old, "awake").await;
    assert_eq!(recv(&mut old).await, "awake");
}

#[tokio::test]
async fn a_frame_cut_across_the_quiet_time_is_not_lost() {
    let gw = TestGateway::start(&["--hibernate-after", "50ms"]).await;
    let mut stream = hixie(&gw, "/echo").await;
    let frame = b"\x00split across a sleep\xff";
    for cut in [1, 5] {
        stream.write_all(&frame[..cut]).await.unwrap();
        tokio::time::sleep(ASLEEP).await;
        stream.write_all(&frame[cut..]).await.unwrap();
        assert_eq!(recv(&mut stream).await, "split across a sleep");
    }
}

#[tokio::test]
async fn a_sleeping_hixie_client_is_closed_at_its_idle_timeout_and_at_shutdown() {
    let mut gw = TestGateway::start(&["--hibernate-after", "50ms", "--idle-timeout", "1s"]).await;
    let mut idle = hixie(&gw, "/echo").await;
    let started = std::time::Instant::now();
    closed(&mut idle).await;
    assert!(started.elapsed() >= Duration::from_millis(900));
    let mut stopping = hixie(&gw, "/chat").await;
    tokio::time::sleep(ASLEEP).await;
    let (took, ()) = tokio::join!(gw.shutdown(), closed(&mut stopping));
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn hixie_75_has_no_keys_and_no_answer() {
    let gw = TestGateway::start(&[]).await;
    let mut stream = connect(&gw).await;
    let request = format!(
        "GET /echo HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\n\
         Origin: {}\r\nWebSocket-Protocol: chat\r\n\r\n",
        gw.main,
        own(&gw)
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let res = read_head(&mut stream).await;
    assert_eq!(res.status, 101);
    assert_eq!(res.header("websocket-origin"), Some(own(&gw).as_str()));
    assert_eq!(res.header("websocket-protocol"), Some("chat"));
    send(&mut stream, "seventy-five").await;
    assert_eq!(recv(&mut stream).await, "seventy-five");
}

#[tokio::test]
async fn sockjs_frames_its_websocket_endpoint_over_hixie_76() {
    let gw = TestGateway::start(&[]).await;
    // The published SockJS suite's test_haproxy: the body only after the head.
    let mut stream = connect(&gw).await;
    let request = head(gw.main, "/echo/000/abc/websocket", &own(&gw), KEY1, KEY2);
    stream.write_all(request.as_bytes()).await.unwrap();
    assert_eq!(read_head(&mut stream).await.status, 101);
    stream.write_all(b"aaaaaaaa").await.unwrap();
    let answer = b"\xca4\x00\xd8\xa5\x08G\x97,\xd5qZ\xba\xbfC{";
    assert_eq!(read_exactly(&mut stream, 16).await, answer);
    assert_eq!(recv(&mut stream).await, "o");
    send(&mut stream, r#"["a","b"]"#).await;
    assert_eq!(recv(&mut stream).await, r#"a["a"]"#);
    assert_eq!(recv(&mut stream).await, r#"a["b"]"#);
}

#[tokio::test]
async fn the_socket_proxy_refuses_hixie_76_it_needs_binary() {
    let gw = TestGateway::start(&[]).await;
    let request = head(gw.main, "/socket", &own(&gw), KEY1, KEY2);
    let res = parse_response(&exchange(gw.main, &[request.as_bytes(), BODY], false).await);
    assert_eq!(res.status, 426);
}

#[tokio::test]
async fn a_hixie_76_socket_through_the_socket_proxy_reaches_the_gateway_itself() {
    // A Flash Socket speaking hixie-76 (web-socket-js's hixie-76 build under Ruffle): its
    // bytes ride binary messages to /socket, which relays them to the gateway's own port.
    let gw = TestGateway::start(&[]).await;
    let mut proxy = gw.ws("/socket").await;
    let request = head(gw.main, "/echo", &own(&gw), KEY1, KEY2);
    proxy
        .send(Message::binary(request.into_bytes()))
        .await
        .unwrap();
    proxy.send(Message::binary(BODY.to_vec())).await.unwrap();
    let mut got = Vec::new();
    let want = [&ANSWER[..], b"\x00through\xff"].concat();
    let mut sent = false;
    while !got.ends_with(&want) {
        match next_message(&mut proxy).await {
            Message::Binary(bytes) => got.extend_from_slice(&bytes),
            other => panic!("{other:?}"),
        }
        if !sent && got.ends_with(ANSWER) {
            assert!(got.starts_with(b"HTTP/1.1 101 WebSocket Protocol Handshake\r\n"));
            let frame = b"\x00through\xff".to_vec();
            proxy.send(Message::binary(frame)).await.unwrap();
            sent = true;
        }
    }
}

/// CPython 2.7, as tests/hixie76/setup finds it.
fn python2() -> Option<PathBuf> {
    let home = std::env::var("HOME").unwrap_or_default();
    let root = std::env::var("PYENV_ROOT").unwrap_or(format!("{home}/.pyenv"));
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(Path::new(&root).join("versions"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("2.7"))
        .map(|e| e.path().join("bin/python2.7"))
        .collect();
    candidates.sort();
    let on_path = std::env::var("PATH").unwrap_or_default();
    candidates.extend(on_path.split(':').map(|d| Path::new(d).join("python2.7")));
    candidates.into_iter().find(|p| p.is_file())
}

/// CPython 2.7 with the client installed. `None` (the test is skipped, loudly) only
/// outside CI, when there is no CPython 2.7: CI fails instead.
fn client_python() -> Option<PathBuf> {
    let Some(python) = python2() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CPython 2.7 is needed for the hixie-76 client (pyenv install 2.7.18)"
        );
        eprintln!("SKIPPED: no CPython 2.7 for websocket-client 0.4 (pyenv install 2.7.18)");
        return None;
    };
    assert!(
        client_dir().join("lib/websocket.py").is_file(),
        "the hixie-76 client is not installed: run tests/hixie76/setup (scripts/test does)"
    );
    Some(python)
}

fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hixie76")
}

/// Runs tests/hixie76/client.py with `args`; its output lines.
async fn python_client(python: &Path, args: &[&str]) -> Vec<String> {
    let dir = client_dir();
    let mut command = tokio::process::Command::new(python);
    command
        .arg(dir.join("client.py"))
        .args(args)
        .env("PYTHONPATH", dir.join("lib"))
        .kill_on_drop(true);
    let out = within("the hixie-76 client", command.output())
        .await
        .expect("python2.7 runs");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "client.py {args:?}: {stderr}\n{stdout}"
    );
    stdout.lines().map(str::to_string).collect()
}

#[tokio::test]
async fn websocket_client_0_4_echoes_over_hixie_76() {
    // websocket-client 0.4 sends its Origin without a scheme (`host:port`), which no
    // allow-list can match: this gateway allows any origin.
    let gw = TestGateway::start(&["--allow-origin", "*"]).await;
    let Some(python) = client_python() else {
        return;
    };
    let url = gw.ws_url("/echo");
    let lines = python_client(&python, &["echo", &url]).await;
    assert_eq!(lines, ["hello hixie", "caf\u{e9} \u{2603}", ""]);
}

#[tokio::test]
async fn websocket_client_0_4_chats_with_an_rfc_6455_client() {
    let Some(python) = client_python() else {
        return;
    };
    let gw = TestGateway::start(&["--allow-origin", "*"]).await;
    // websocket-client 0.4 drops a URL's query: the room is the route's own.
    let mut native = gw.ws("/chat").await;
    let url = gw.ws_url("/chat");
    let args = ["chat", &url, "2", "from python"];
    let python = python_client(&python, &args);
    let rfc = async {
        assert_eq!(
            next_message(&mut native).await,
            Message::text("from python")
        );
        native.send(Message::text("from rfc6455")).await.unwrap();
    };
    let (lines, ()) = tokio::join!(python, rfc);
    assert_eq!(lines, ["from python", "from rfc6455"]);
}
