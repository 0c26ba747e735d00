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

#[tokio::test]
async fn a_silent_streaming_member_sleeps_and_gets_every_message_in_order_across_responses() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let toml = "hibernate_after = \"100ms\"\n[[route]]\npath = \"/chat\"\nbackend = \"broadcast\"\n\
                [route.sockjs]\nresponse_limit = 400\n";
    std::io::Write::write_all(&mut file, toml.as_bytes()).unwrap();
    let path = file.path().display().to_string();
    let gw = TestGateway::start(&["--config", &path]).await;
    let s = format!("/chat/1/{}", common::http_stream::rand_u16() + 9000);
    let mut stream = Stream::open(gw.main, "POST", &format!("{s}/xhr_streaming"), b"").await;
    stream.chunk().await;
    assert_eq!(stream.chunk().await.unwrap(), "o\n");
    let mut ws = gw.ws("/chat").await;
    // Silent past --hibernate-after (and a sweep): the member sleeps, and the room writes
    // into its response itself.
    let pad = "p".repeat(20);
    for half in [0..30, 30..60] {
        tokio::time::sleep(Duration::from_millis(600)).await;
        for i in half {
            send_text(&mut ws, &format!("w{i:02}{pad}")).await;
        }
    }
    // 60 messages are past the response limit several times over: a response ends once
    // past it, and the next one carries on where it stopped.
    let mut seen = Vec::new();
    let mut responses = 1;
    while seen.len() < 60 {
        match stream.chunk().await {
            Some(frame) => {
                let Some(items) = frame.trim_end().strip_prefix('a') else {
                    panic!(
                        "not a message frame: {frame:?} after {} messages",
                        seen.len()
                    );
                };
                seen.extend(serde_json::from_str::<Vec<String>>(items).unwrap());
            }
            None => {
                stream = stream
                    .next("POST", &format!("{s}/xhr_streaming"), b"")
                    .await;
                stream.chunk().await; // the prelude
                responses += 1;
            }
        }
    }
    let sent: Vec<String> = (0..60).map(|i| format!("w{i:02}{pad}")).collect();
    assert_eq!(seen, sent);
    assert!(responses > 1, "the limit ended a response");
    // The member's own message wakes it, and reaches the room.
    assert_eq!(
        post(gw.main, &format!("{s}/xhr_send"), "[\"mine\"]")
            .await
            .0,
        204
    );
    loop {
        let text = next_message(&mut ws).await.into_text().unwrap().to_string();
        if text == "mine" {
            break;
        }
    }
}
