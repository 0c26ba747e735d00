//! Bounds on what a connection may hold: `--max-connections`, and `--handshake-timeout` on
//! HTTP headers and idle keep-alive connections.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Long enough for a served request to be answered on a loaded machine; only used to show
/// that a request is *not* answered while the gateway is full.
const NOT_SERVED_FOR: Duration = Duration::from_millis(700);

#[tokio::test]
async fn connections_past_the_limit_wait_and_are_served_when_a_slot_frees() {
    let gw = TestGateway::start(&["--max-connections", "1"]).await;
    // A request before the limit is reached, on a connection that then closes.
    assert_eq!(get(gw.main, "/index.html").await.status, 200);

    let mut holder = gw.ws("/echo").await;
    send_text(&mut holder, "holding the only slot").await;
    next_message(&mut holder).await;

    let mut waiting = TcpStream::connect(gw.main).await.unwrap();
    waiting
        .write_all(request("GET", "/index.html", &[("Connection", "close")]).as_bytes())
        .await
        .unwrap();
    assert!(
        !closed_within(&mut waiting, NOT_SERVED_FOR).await,
        "a connection past --max-connections was served or dropped"
    );

    within("close", holder.close(None)).await.unwrap();
    let answer = read_to_close(&mut waiting).await;
    let res = parse_response(&answer);
    assert_eq!(res.status, 200, "served once the slot is free");
    assert_eq!(res.text(), INDEX_HTML);
}

#[tokio::test]
async fn freed_slots_serve_connection_after_connection() {
    // Each request takes the only slot and gives it back; none may be left waiting.
    let gw = TestGateway::start(&["--max-connections", "1"]).await;
    for i in 0..3 {
        for j in 0..2 {
            let status = get(gw.main, "/index.html").await.status;
            assert_eq!(status, 200, "request {i}.{j}");
        }
        let reply = exchange(gw.policy, &[POLICY_REQUEST], false).await;
        assert!(reply.ends_with(b"\0"), "policy request {i}");
    }
}

#[tokio::test]
async fn answered_policy_sockets_give_their_slot_back_at_once() {
    // The policy port keeps answered sockets until their client has gone; with one slot,
    // the next request must not wait for them (nor forever).
    let gw = TestGateway::start(&["--max-connections", "1"]).await;
    for i in 0..10 {
        let reply = exchange(gw.policy, &[POLICY_REQUEST], false).await;
        assert!(reply.ends_with(b"\0"), "policy request {i}");
    }
}

#[tokio::test]
async fn incomplete_request_headers_are_closed_after_the_handshake_timeout() {
    let gw = TestGateway::start(&["--handshake-timeout", "300ms"]).await;
    let mut stream = TcpStream::connect(gw.main).await.unwrap();
    stream
        .write_all(b"GET /index.html HTTP/1.1\r\nHost: test\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut stream).await;
    assert!(
        !String::from_utf8_lossy(&answer).contains(INDEX_HTML),
        "an incomplete request was served"
    );
}

#[tokio::test]
async fn idle_keep_alive_connection_is_closed_after_the_handshake_timeout() {
    let gw = TestGateway::start(&["--handshake-timeout", "300ms"]).await;
    let mut stream = TcpStream::connect(gw.main).await.unwrap();
    for _ in 0..2 {
        stream
            .write_all(request("GET", "/index.html", &[]).as_bytes())
            .await
            .unwrap();
        let res = read_response(&mut stream).await;
        assert_eq!(res.status, 200, "keep-alive serves several requests");
        assert_eq!(res.text(), INDEX_HTML);
    }
    assert!(
        read_to_close(&mut stream).await.is_empty(),
        "nothing more is sent to an idle connection"
    );
}
