//! The WebSocket-to-TCP socket proxy against real TCP servers started by the tests: byte-exact
//! relay both ways, back-pressure, the target allow-list, and close codes.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error, Message};

const TEN_MB: usize = 10 * 1024 * 1024;

/// Deterministic, non-repeating-looking bytes.
fn bytes(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// A TCP server on port 0 that runs `serve` for each connection.
async fn tcp_server<F, Fut>(serve: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = Arc::new(serve);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream));
        }
    });
    addr
}

async fn echo_server() -> SocketAddr {
    tcp_server(|mut stream| async move {
        let (mut r, mut w) = stream.split();
        let _ = tokio::io::copy(&mut r, &mut w).await;
    })
    .await
}

async fn proxy_gateway(targets: &[SocketAddr]) -> TestGateway {
    let list: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
    TestGateway::start(&["--proxy-target", &list.join(",")]).await
}

/// A gateway whose only proxy target is `target`, with a 300 ms idle timeout.
async fn proxy_gateway_idle_300ms(target: SocketAddr) -> TestGateway {
    TestGateway::start(&[
        "--proxy-target",
        &target.to_string(),
        "--idle-timeout",
        "300ms",
    ])
    .await
}

/// Reads binary messages until `len` bytes have arrived; text is a failure.
async fn read_binary(ws: &mut Ws, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    within("the relayed bytes", async {
        while out.len() < len {
            match ws.next().await {
                Some(Ok(Message::Binary(b))) => out.extend_from_slice(&b),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("after {} bytes: {other:?}", out.len()),
            }
        }
    })
    .await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_megabytes_round_trip_byte_exact_through_an_echo_target() {
    let echo = echo_server().await;
    let gw = proxy_gateway(&[echo]).await;
    let ws = gw.ws(&format!("/socket?target={echo}")).await;
    let (mut tx, mut rx) = ws.split();
    let data = bytes(TEN_MB, 1);
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        // Messages of many sizes, as Flash flush()es them.
        let mut at = 0;
        let mut size = 1;
        while at < sent.len() {
            let end = (at + size).min(sent.len());
            tx.send(Message::binary(sent[at..end].to_vec()))
                .await
                .unwrap();
            at = end;
            size = size * 7 % 65_521 + 1;
        }
        tx
    });
    let mut got = Vec::with_capacity(TEN_MB);
    within("10 MB back", async {
        while got.len() < TEN_MB {
            match rx.next().await {
                Some(Ok(Message::Binary(b))) => got.extend_from_slice(&b),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("after {} bytes: {other:?}", got.len()),
            }
        }
    })
    .await;
    let _sink = writer.await.unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "the relayed bytes differ");
}

#[tokio::test]
async fn ten_megabytes_from_the_target_arrive_then_close_1000() {
    let data = Arc::new(bytes(TEN_MB, 2));
    let source = {
        let data = data.clone();
        tcp_server(move |mut stream| {
            let data = data.clone();
            async move {
                stream.write_all(&data).await.unwrap();
                // Closing right after the last byte: nothing may be lost on the way.
            }
        })
        .await
    };
    let gw = proxy_gateway(&[source]).await;
    let mut ws = gw.ws(&format!("/socket?target={source}")).await;
    let got = read_binary(&mut ws, TEN_MB).await;
    assert!(got == *data, "the relayed bytes differ");
    let (frame, extra) = close_frame(&mut ws).await;
    assert_eq!(extra, 0);
    let frame = frame.expect("a close frame");
    assert_eq!(frame.code, CloseCode::Normal);
    assert_eq!(frame.reason.as_str(), "target closed");
}

#[tokio::test]
async fn ten_megabytes_to_the_target_arrive_and_the_target_sees_eof_on_close() {
    let (report, mut reported) = tokio::sync::mpsc::channel::<(usize, Vec<u8>)>(1);
    let sink = tcp_server(move |mut stream| {
        let report = report.clone();
        async move {
            let mut hash = Sha256::new();
            let mut total = 0;
            let mut buf = vec![0u8; 65536];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        hash.update(&buf[..n]);
                        total += n;
                    }
                }
            }
            let _ = report.send((total, hash.finalize().to_vec())).await;
        }
    })
    .await;
    let gw = proxy_gateway(&[sink]).await;
    let mut ws = gw.ws(&format!("/socket?target={sink}")).await;
    let data = bytes(TEN_MB, 3);
    for piece in data.chunks(100_000) {
        ws.send(Message::binary(piece.to_vec())).await.unwrap();
    }
    ws.close(None).await.unwrap();
    let (total, digest) = within("the target's report", reported.recv())
        .await
        .unwrap();
    assert_eq!(total, TEN_MB);
    assert_eq!(digest, Sha256::digest(&data).to_vec());
}

/// A target that writes 0x5a bytes as fast as it can (up to 512 MiB): its address, how
/// much it has written, and a channel that says when it stopped.
async fn firehose() -> (
    SocketAddr,
    Arc<AtomicUsize>,
    tokio::sync::mpsc::Receiver<()>,
) {
    let written = Arc::new(AtomicUsize::new(0));
    let (stopped_tx, stopped) = tokio::sync::mpsc::channel(1);
    let counter = written.clone();
    let addr = tcp_server(move |mut stream| {
        let (written, stopped_tx) = (counter.clone(), stopped_tx.clone());
        async move {
            let block = vec![0x5a_u8; 64 * 1024];
            while stream.write_all(&block).await.is_ok() {
                written.fetch_add(block.len(), Ordering::SeqCst);
                if written.load(Ordering::SeqCst) > 512 * 1024 * 1024 {
                    break;
                }
            }
            let _ = stopped_tx.send(()).await;
        }
    })
    .await;
    (addr, written, stopped)
}

#[tokio::test]
async fn a_client_that_does_not_read_holds_the_target_back() {
    let (firehose, written, _) = firehose().await;
    let gw = proxy_gateway(&[firehose]).await;
    let mut ws = gw.ws(&format!("/socket?target={firehose}")).await;
    // Not reading: the target fills the buffers on the way, then has to stop.
    let mut last = 0;
    let stalled = within("the target to stall", async {
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = written.load(Ordering::SeqCst);
            if now == last && now > 0 {
                return now;
            }
            last = now;
        }
    })
    .await;
    // Kernel buffers on both sockets plus one chunk and the WebSocket write buffer: a few
    // megabytes, not the hundreds the target would send if the proxy buffered.
    assert!(
        stalled < 48 * 1024 * 1024,
        "{stalled} bytes went out before the stall"
    );
    // And the relay still works once the client reads.
    let got = read_binary(&mut ws, stalled).await;
    assert!(got.iter().all(|&b| b == 0x5a));
}

#[tokio::test]
async fn a_target_not_on_the_list_is_refused_before_connecting() {
    let allowed = echo_server().await;
    let other = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other_addr = other.local_addr().unwrap();
    let gw = proxy_gateway(&[allowed]).await;
    for target in [
        other_addr.to_string(),
        format!("localhost:{}", allowed.port()),
        "127.0.0.1:22".to_string(),
        "not-an-address".to_string(),
    ] {
        let request = gw.ws_request(&format!("/socket?target={target}"), &[]);
        match tokio_tungstenite::connect_async(request).await {
            Err(Error::Http(response)) => assert_eq!(response.status(), 403, "{target}"),
            other => panic!("{target}: expected 403, got {other:?}"),
        }
    }
    // Nothing ever connected to the other server.
    let accepted = tokio::time::timeout(Duration::from_millis(300), other.accept()).await;
    assert!(accepted.is_err(), "the proxy connected to a refused target");
}

#[tokio::test]
async fn an_unreachable_target_closes_1011_with_the_reason() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let gw = proxy_gateway(&[addr]).await;
    let mut ws = gw.ws("/socket").await;
    let (frame, _) = close_frame(&mut ws).await;
    let frame = frame.expect("a close frame");
    assert_eq!(frame.code, CloseCode::Error);
    assert!(frame.reason.contains("cannot connect"), "{}", frame.reason);
    assert!(frame.reason.contains(&addr.to_string()), "{}", frame.reason);
}

#[tokio::test]
async fn text_messages_close_1003() {
    let echo = echo_server().await;
    let gw = proxy_gateway(&[echo]).await;
    let mut ws = gw.ws("/socket").await;
    send_text(&mut ws, "not bytes").await;
    let (frame, _) = close_frame(&mut ws).await;
    let frame = frame.expect("a close frame");
    assert_eq!(frame.code, CloseCode::Unsupported);
    assert!(frame.reason.contains("binary"), "{}", frame.reason);
}

#[tokio::test]
async fn by_default_the_proxy_reaches_the_gateway_itself() {
    let gw = TestGateway::start(&[]).await;
    // The bytes a Flash socket would send: a policy request, answered by the main port.
    let mut ws = gw.ws("/socket").await;
    ws.send(Message::binary(POLICY_REQUEST.to_vec()))
        .await
        .unwrap();
    let mut reply = Vec::new();
    let frame = within("the policy through the proxy", async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Binary(b))) => reply.extend_from_slice(&b),
                Some(Ok(Message::Close(frame))) => return frame,
                other => panic!("{other:?}"),
            }
        }
    })
    .await;
    assert!(String::from_utf8_lossy(&reply).contains("<cross-domain-policy>"));
    assert_eq!(reply.last(), Some(&0));
    assert_eq!(frame.unwrap().code, CloseCode::Normal);
    // Anything else is refused: the default list holds only the gateway's own listener.
    let request = gw.ws_request("/socket?target=127.0.0.1:1", &[]);
    assert!(matches!(
        tokio_tungstenite::connect_async(request).await,
        Err(Error::Http(r)) if r.status() == 403
    ));
}

#[tokio::test]
async fn flash_looking_clients_still_get_binary_from_the_proxy() {
    let echo = echo_server().await;
    let gw = proxy_gateway(&[echo]).await;
    let mut ws = gw.flash_ws("/socket").await;
    ws.send(Message::binary(vec![0u8, 159, 146, 150]))
        .await
        .unwrap();
    assert_eq!(read_binary(&mut ws, 4).await, [0u8, 159, 146, 150]);
}

#[tokio::test]
async fn ruffle_config_maps_each_target_to_the_proxy_url() {
    let echo = echo_server().await;
    let gw = TestGateway::start(&["--proxy-target", &format!("self,{echo}")]).await;
    let res = get(gw.main, "/ruffle-config.js").await;
    assert_eq!(res.status, 200);
    assert!(res.header("content-type").unwrap().contains("javascript"));
    assert_eq!(res.header("cache-control"), Some("no-cache"));
    let js = res.text();
    assert!(js.contains("location.host + \"/socket?target=\""), "{js}");
    let own = format!(
        "{{ host: location.hostname, port: {}, proxyUrl: base + \"{}\" }}",
        gw.main.port(),
        gw.main
    );
    assert!(js.contains(&own), "{js}");
    let other = format!(
        "{{ host: \"127.0.0.1\", port: {}, proxyUrl: base + \"{echo}\" }}",
        echo.port()
    );
    assert!(js.contains(&other), "{js}");
    // Both are usable through the proxy, and only they.
    let mut ws = gw.ws(&format!("/socket?target={echo}")).await;
    ws.send(Message::binary(b"to the echo".to_vec()))
        .await
        .unwrap();
    assert_eq!(read_binary(&mut ws, 11).await, b"to the echo");
    let mut own = gw.ws(&format!("/socket?target={}", gw.main)).await;
    own.send(Message::binary(POLICY_REQUEST.to_vec()))
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&read_binary(&mut own, 10).await).starts_with("<?xml"));
}

#[tokio::test]
async fn ruffle_files_get_cors_for_allowed_origins() {
    let dir = fixtures();
    std::fs::create_dir_all(dir.path().join("assets/vendor/ruffle")).unwrap();
    std::fs::write(dir.path().join("assets/vendor/ruffle/core.wasm"), b"\0asm").unwrap();
    let gw = TestGateway::start_in(dir, &["--allow-origin", "http://games.example"]).await;
    let allowed = http(
        gw.main,
        "GET",
        "/ruffle/core.wasm",
        &[("Origin", "http://games.example")],
    )
    .await;
    assert_eq!(allowed.status, 200);
    assert_eq!(allowed.header("content-type"), Some("application/wasm"));
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("http://games.example")
    );
    let other = http(
        gw.main,
        "GET",
        "/ruffle/core.wasm",
        &[("Origin", "http://elsewhere.example")],
    )
    .await;
    assert_eq!(other.header("access-control-allow-origin"), None);
    let missing = get(gw.main, "/ruffle/ruffle.js").await;
    assert_eq!(missing.status, 404);
    assert!(missing.text().contains("scripts/fetch-vendor"));
}

/// A target that records what it receives until its client ends its output.
async fn recording_target() -> (SocketAddr, tokio::sync::mpsc::Receiver<Vec<u8>>) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let addr = tcp_server(move |mut stream| {
        let tx = tx.clone();
        async move {
            let mut got = Vec::new();
            let _ = stream.read_to_end(&mut got).await;
            let _ = tx.send(got).await;
        }
    })
    .await;
    (addr, rx)
}

/// A close frame's code.
fn close_code(payload: &[u8]) -> u16 {
    u16::from_be_bytes([payload[0], payload[1]])
}

#[tokio::test]
async fn fragments_and_pings_between_them_relay_in_order_byte_by_byte() {
    let echo = echo_server().await;
    let gw = proxy_gateway(&[echo]).await;
    let mut stream = raw_ws(&gw, &format!("/socket?target={echo}")).await;
    let wire = [
        client_frame(false, 2, b"hello "),
        client_frame(true, 9, b"are you there"),
        client_frame(false, 0, b"wide "),
        client_frame(true, 0, b"world"),
        client_frame(true, 2, b"!"),
    ]
    .concat();
    // One byte per packet: every header and payload is cut at every byte.
    stream.set_nodelay(true).unwrap();
    for byte in &wire {
        stream.write_all(std::slice::from_ref(byte)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let (mut data, mut pongs) = (Vec::new(), Vec::new());
    while data.len() < b"hello wide world!".len() {
        match server_frame(&mut stream).await {
            (2, bytes) => data.extend_from_slice(&bytes),
            (10, body) => pongs.push(body),
            other => panic!("unexpected frame {other:?}"),
        }
    }
    assert_eq!(data, b"hello wide world!");
    if pongs.is_empty() {
        pongs.push(server_frame(&mut stream).await.1);
    }
    assert_eq!(pongs, [b"are you there".to_vec()]);
}

#[tokio::test]
async fn a_client_close_is_answered_with_its_code_after_its_bytes_reach_the_target() {
    let (target, mut received) = recording_target().await;
    let gw = proxy_gateway(&[target]).await;
    let mut stream = raw_ws(&gw, &format!("/socket?target={target}")).await;
    let close = [&4000u16.to_be_bytes()[..], b"done"].concat();
    let wire = [
        client_frame(true, 2, b"last words"),
        client_frame(true, 8, &close),
    ]
    .concat();
    stream.write_all(&wire).await.unwrap();
    let (opcode, body) = server_frame(&mut stream).await;
    assert_eq!((opcode, close_code(&body)), (8, 4000));
    let got = within("the target to see the end", received.recv()).await;
    assert_eq!(got.unwrap(), b"last words");
}

#[tokio::test]
async fn protocol_errors_close_with_the_code_that_says_why() {
    let echo = echo_server().await;
    let gw = proxy_gateway(&[echo]).await;
    let mut reserved = client_frame(true, 2, b"x");
    reserved[0] |= 0x40;
    let cases = [
        (
            vec![0x82, 3, b'a', b'b', b'c'],
            1002,
            "client frames must be masked",
        ),
        (reserved, 1002, "reserved bits set"),
        (
            client_frame(true, 0, b"x"),
            1002,
            "continuation without a message",
        ),
        (
            client_frame(false, 9, b""),
            1002,
            "fragmented control frame",
        ),
        (
            client_frame(true, 8, &[3, 0xe8, 0xc3]),
            1007,
            "a close reason that is not valid UTF-8",
        ),
    ];
    for (wire, code, reason) in cases {
        let mut stream = raw_ws(&gw, &format!("/socket?target={echo}")).await;
        stream.write_all(&wire).await.unwrap();
        let (opcode, body) = server_frame(&mut stream).await;
        assert_eq!(opcode, 8, "{reason}");
        assert_eq!(close_code(&body), code, "{reason}");
        assert_eq!(&body[2..], reason.as_bytes());
    }
}

#[tokio::test]
async fn a_silent_client_is_pinged_then_closed_1001_and_one_that_answers_stays() {
    let echo = echo_server().await;
    let gw = proxy_gateway_idle_300ms(echo).await;
    let mut silent = raw_ws(&gw, &format!("/socket?target={echo}")).await;
    assert_eq!(server_frame(&mut silent).await.0, 9);
    let (opcode, body) = server_frame(&mut silent).await;
    assert_eq!((opcode, close_code(&body)), (8, 1001));
    assert_eq!(&body[2..], b"idle timeout");

    let mut ws = gw.ws(&format!("/socket?target={echo}")).await;
    three_pings(&mut ws).await;
    ws.send(Message::binary(&b"still here"[..])).await.unwrap();
    assert_eq!(read_binary(&mut ws, 10).await, b"still here");
}

#[tokio::test]
async fn relays_get_1001_when_the_gateway_stops() {
    let echo = echo_server().await;
    let mut gw = proxy_gateway(&[echo]).await;
    let mut ws = gw.ws(&format!("/socket?target={echo}")).await;
    ws.send(Message::binary(&b"ping"[..])).await.unwrap();
    assert_eq!(read_binary(&mut ws, 4).await, b"ping");
    let stopping = async {
        let (frame, _) = close_frame(&mut ws).await;
        assert_eq!(frame.expect("a close frame").code, CloseCode::Away);
    };
    tokio::join!(gw.shutdown(), stopping);
}

#[tokio::test]
async fn a_client_that_takes_nothing_for_the_idle_timeout_is_dropped_and_the_target_let_go() {
    let (firehose, _, mut gone) = firehose().await;
    let gw = proxy_gateway_idle_300ms(firehose).await;
    // Never read: once the buffers on the way are full, the relay waits for this client
    // for one idle timeout, then drops it and its target.
    let _ws = gw.ws(&format!("/socket?target={firehose}")).await;
    within("the target to be let go", gone.recv()).await;
}

#[tokio::test]
async fn a_client_that_vanishes_without_a_close_still_delivers_what_it_sent() {
    let (target, mut received) = recording_target().await;
    let gw = proxy_gateway(&[target]).await;
    let mut stream = raw_ws(&gw, &format!("/socket?target={target}")).await;
    stream
        .write_all(&client_frame(true, 2, b"sent before the drop"))
        .await
        .unwrap();
    drop(stream);
    let got = within("the target to see the end", received.recv()).await;
    assert_eq!(got.unwrap(), b"sent before the drop");
}

#[tokio::test]
async fn a_relay_stuck_writing_to_a_client_that_reads_nothing_does_not_hold_up_shutdown() {
    let (firehose, _, _) = firehose().await;
    let list = firehose.to_string();
    let mut gw = TestGateway::start(&["--proxy-target", &list, "--drain-timeout", "30s"]).await;
    // Never read: once the buffers on the way are full, the relay waits on a write.
    let _ws = gw.ws(&format!("/socket?target={firehose}")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let took = gw.shutdown().await;
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
}
