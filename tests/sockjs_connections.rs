//! The connections that carry SockJS sessions, against the real gateway: a response that
//! waits is handed off by the HTTP server and written by its session, its connection is
//! served again once it ends, and a session counts against `--max-connections` as one,
//! with the connections that carry it.

mod common;

use std::time::Duration;

use common::http_stream::{Stream, post, quick_gateway, session};
use common::*;

#[tokio::test]
async fn a_poll_that_waited_leaves_its_connection_open_for_the_next_request() {
    let gw = TestGateway::start(&[]).await;
    let s = session();
    let open = Stream::open(gw.main, "POST", &format!("{s}/xhr"), b"").await;
    let (body, conn) = open.read_body().await;
    assert_eq!(body, "o\n");
    // Nothing waits: this poll's response waits for the echo, out of the HTTP server.
    let waiting = conn.next("POST", &format!("{s}/xhr"), b"").await;
    assert_eq!(waiting.head.status, 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        post(gw.main, &format!("{s}/xhr_send"), "[\"x\"]").await.0,
        204
    );
    let (body, conn) = waiting.read_body().await;
    assert_eq!(body, "a[\"x\"]\n");
    // The same connection serves the next requests.
    let (body, conn) = conn
        .next("POST", &format!("{s}/xhr_send"), b"[\"y\"]")
        .await
        .read_body()
        .await;
    assert_eq!(body, "");
    let (body, conn) = conn
        .next("POST", &format!("{s}/xhr"), b"")
        .await
        .read_body()
        .await;
    assert_eq!(body, "a[\"y\"]\n");
    let info = conn.next("GET", "/echo/info", b"").await;
    assert_eq!(info.head.status, 200);
    assert!(info.body().await.contains("\"websocket\":true"));
}

#[tokio::test]
async fn a_stream_at_its_limit_leaves_its_connection_open_and_a_connection_close_closes_it() {
    let (gw, _file) = quick_gateway("25s", "5s", 50, &[]).await;
    let s = session();
    let mut stream = Stream::open(gw.main, "POST", &format!("{s}/xhr_streaming"), b"").await;
    stream.chunk().await;
    assert_eq!(stream.chunk().await.unwrap(), "o\n");
    let long = "z".repeat(60);
    post(gw.main, &format!("{s}/xhr_send"), &format!("[\"{long}\"]")).await;
    assert_eq!(stream.chunk().await.unwrap(), format!("a[\"{long}\"]\n"));
    assert_eq!(
        stream.chunk().await,
        None,
        "past the limit the response ends"
    );
    let mut next = stream
        .next("POST", &format!("{s}/xhr_streaming"), b"")
        .await;
    assert_eq!(next.head.status, 200);
    next.chunk().await;
    post(gw.main, &format!("{s}/xhr_send"), "[\"on\"]").await;
    assert_eq!(next.chunk().await.unwrap(), "a[\"on\"]\n");

    // A client that asked to close the connection after the response gets that.
    let s = session();
    let mut closing = Stream::open_from(
        "127.0.0.1",
        gw.main,
        "POST",
        &format!("{s}/xhr_streaming"),
        &[("Connection", "close")],
        b"",
    )
    .await;
    closing.chunk().await;
    closing.chunk().await;
    post(gw.main, &format!("{s}/xhr_send"), &format!("[\"{long}\"]")).await;
    closing.chunk().await;
    assert_eq!(closing.chunk().await, None);
    assert!(closed_within(&mut closing.tcp, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn sessions_count_against_max_connections_as_one_each_with_their_connections() {
    let (gw, _file) = quick_gateway("25s", "300ms", 128 * 1024, &["--max-connections", "3"]).await;
    let mut streams = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let s = session();
        let mut stream = Stream::open(gw.main, "POST", &format!("{s}/xhr_streaming"), b"").await;
        assert_eq!(stream.head.status, 200);
        stream.chunk().await;
        assert_eq!(stream.chunk().await.unwrap(), "o\n");
        streams.push(stream);
        ids.push(s);
    }
    // Three sessions, three slots: a fourth connection waits.
    let mut fourth = tokio::net::TcpStream::connect(gw.main).await.unwrap();
    use tokio::io::AsyncWriteExt;
    let request = request("GET", "/echo/info", &[]);
    fourth.write_all(request.as_bytes()).await.unwrap();
    let early = tokio::time::timeout(Duration::from_millis(500), read_response(&mut fourth)).await;
    assert!(early.is_err(), "served past --max-connections");
    // One session ends (its client goes away, and it expires): its slot serves the fourth.
    drop(streams.pop());
    let info = within("the fourth connection served", read_response(&mut fourth)).await;
    assert_eq!(info.status, 200);
    drop(fourth);
    // The sessions that live on still stream, each carried by its own connection.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for (stream, s) in streams.iter_mut().zip(&ids) {
        assert_eq!(
            post(gw.main, &format!("{s}/xhr_send"), "[\"m\"]").await.0,
            204
        );
        assert_eq!(stream.chunk().await.unwrap(), "a[\"m\"]\n");
    }
}
