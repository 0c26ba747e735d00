//! SockJS sessions over HTTP, against the real gateway: one receiver at a time, the end of
//! a session (aborted, expired, too slow, the gateway stopping), heartbeats and response
//! limits, and whose a session is.

mod common;

use std::time::Duration;

use common::http_stream::{Stream, post, quick_gateway, rand_u16, session};
use common::*;

#[tokio::test]
async fn a_second_receiver_is_told_another_connection_is_open_and_an_abort_ends_the_session() {
    let gw = TestGateway::start(&[]).await;
    let s = session();
    let mut first = Stream::open(gw.main, "POST", &format!("{s}/xhr_streaming"), b"").await;
    first.chunk().await;
    assert_eq!(first.chunk().await.unwrap(), "o\n");
    let (status, second) = post(gw.main, &format!("{s}/xhr"), "").await;
    assert_eq!(
        (status, second.as_str()),
        (200, "c[2010,\"Another connection still open\"]\n")
    );
    // The first goes away mid-stream: the session ends, and the id opens a new one.
    drop(first);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, again) = post(gw.main, &format!("{s}/xhr"), "").await;
    assert!(
        again == "o\n" || again == "c[1002,\"Connection interrupted\"]\n",
        "{again}"
    );
}

#[tokio::test]
async fn a_session_answers_only_the_address_that_opened_it() {
    let gw = TestGateway::start(&[]).await;
    let s = session();
    post(gw.main, &format!("{s}/xhr"), "").await;
    let other = Stream::open_from(
        "127.0.0.2",
        gw.main,
        "POST",
        &format!("{s}/xhr_send"),
        &[],
        b"[\"stolen\"]",
    )
    .await;
    assert_eq!(other.head.status, 404);
    let theirs =
        Stream::open_from("127.0.0.2", gw.main, "POST", &format!("{s}/xhr"), &[], b"").await;
    assert_eq!(theirs.head.status, 404);
    assert_eq!(
        post(gw.main, &format!("{s}/xhr_send"), "[\"mine\"]")
            .await
            .0,
        204
    );
    assert_eq!(
        post(gw.main, &format!("{s}/xhr"), "").await.1,
        "a[\"mine\"]\n"
    );
}

#[tokio::test]
async fn a_session_that_does_not_poll_is_closed_as_too_slow_alone() {
    let gw = TestGateway::start(&["--send-backlog", "4096"]).await;
    let mut ws = gw.ws("/chat").await;
    let slow = format!("/chat/1/{}", rand_u16() + 9000);
    assert_eq!(post(gw.main, &format!("{slow}/xhr"), "").await.1, "o\n");
    let filler = "x".repeat(500);
    for i in 0..20 {
        send_text(&mut ws, &format!("{i} {filler}")).await;
    }
    for i in 0..20 {
        let got = next_message(&mut ws).await.into_text().unwrap();
        assert!(
            got.starts_with(&format!("{i} ")),
            "the reader keeps everything"
        );
    }
    // What it was sent before the bound, then why it ends.
    let (_, closed) = post(gw.main, &format!("{slow}/xhr"), "").await;
    let last = closed.lines().last().unwrap();
    assert_eq!(
        last,
        "c[1008,\"send queue full: the client does not read\"]"
    );
    assert!(closed.len() < 4096 + 600, "{} bytes waited", closed.len());
}

#[tokio::test]
async fn on_shutdown_every_session_is_told_and_its_response_ends() {
    let mut gw = TestGateway::start(&[]).await;
    let s = session();
    let mut stream = Stream::open(gw.main, "POST", &format!("{s}/xhr_streaming"), b"").await;
    stream.chunk().await;
    stream.chunk().await;
    let told = tokio::spawn(async move {
        let mut frames = Vec::new();
        while let Some(chunk) = stream.chunk().await {
            frames.push(chunk);
        }
        frames
    });
    gw.shutdown().await;
    let frames = told.await.unwrap();
    assert_eq!(frames, ["c[1001,\"Server shutting down\"]\n"]);
}

#[tokio::test]
async fn idle_receivers_get_heartbeats_and_a_poll_ends_with_one() {
    let (gw, _file) = quick_gateway("300ms", "5s", 128 * 1024, &[]).await;
    let s = session();
    let mut stream = Stream::open(gw.main, "POST", &format!("{s}/xhr_streaming"), b"").await;
    stream.chunk().await;
    assert_eq!(stream.chunk().await.unwrap(), "o\n");
    let started = std::time::Instant::now();
    assert_eq!(stream.chunk().await.unwrap(), "h\n");
    assert_eq!(stream.chunk().await.unwrap(), "h\n");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "two heartbeats, 300 ms apart"
    );
    drop(stream);
    let s = session();
    assert_eq!(post(gw.main, &format!("{s}/xhr"), "").await.1, "o\n");
    assert_eq!(post(gw.main, &format!("{s}/xhr"), "").await.1, "h\n");
}

#[tokio::test]
async fn a_session_without_a_receiver_expires_after_the_disconnect_delay() {
    let (gw, _file) = quick_gateway("25s", "300ms", 128 * 1024, &[]).await;
    let s = session();
    assert_eq!(post(gw.main, &format!("{s}/xhr"), "").await.1, "o\n");
    assert_eq!(
        post(gw.main, &format!("{s}/xhr_send"), "[\"kept\"]")
            .await
            .0,
        204
    );
    // Within the delay it lives on.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        post(gw.main, &format!("{s}/xhr"), "").await.1,
        "a[\"kept\"]\n"
    );
    // Past it, it is gone: sending to it is 404, and the id opens a new session.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        post(gw.main, &format!("{s}/xhr_send"), "[\"late\"]")
            .await
            .0,
        404
    );
    assert_eq!(post(gw.main, &format!("{s}/xhr"), "").await.1, "o\n");
}

#[tokio::test]
async fn a_streaming_response_ends_at_its_limit_and_the_next_one_carries_on() {
    let (gw, _file) = quick_gateway("25s", "5s", 300, &[]).await;
    let s = session();
    let mut stream = Stream::open(gw.main, "POST", &format!("{s}/xhr_streaming"), b"").await;
    stream.chunk().await;
    assert_eq!(stream.chunk().await.unwrap(), "o\n");
    let message = "x".repeat(100);
    let mut frames = 0;
    loop {
        post(
            gw.main,
            &format!("{s}/xhr_send"),
            &format!("[\"{message}\"]"),
        )
        .await;
        match stream.chunk().await {
            Some(frame) => {
                assert_eq!(frame, format!("a[\"{message}\"]\n"));
                frames += 1;
            }
            None => break,
        }
    }
    assert_eq!(frames, 3, "300 bytes of frames, then the response ends");
    // The session goes on in the next response, without a second open frame: the message
    // sent after the limit, then what follows.
    post(gw.main, &format!("{s}/xhr_send"), "[\"after\"]").await;
    let mut next = Stream::open(gw.main, "POST", &format!("{s}/xhr_streaming"), b"").await;
    next.chunk().await;
    assert_eq!(
        next.chunk().await.unwrap(),
        format!("a[\"{message}\",\"after\"]\n")
    );
}
