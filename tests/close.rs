//! The `close` backend: every client of its route is closed at once, with the route's code
//! and reason, on the RFC 6455 WebSocket and in SockJS's framing.

mod common;

use std::time::{Duration, Instant};

use tokio_tungstenite::tungstenite::Message;

use common::*;

#[tokio::test]
async fn a_close_route_closes_each_client_at_once_with_its_code_and_reason() {
    let gw =
        TestGateway::start(&["--route", "/maint=close:3001:Under maintenance,/gone=close"]).await;
    for (path, code, reason) in [
        ("/maint", 3001, "Under maintenance"),
        ("/gone", 3000, "Go away!"),
    ] {
        let start = Instant::now();
        let mut ws = gw.ws(path).await;
        let (frame, messages) = close_frame(&mut ws).await;
        let frame = frame.expect("a close frame");
        assert_eq!(
            (u16::from(frame.code), frame.reason.as_str()),
            (code, reason)
        );
        assert_eq!(messages, 0, "{path}: nothing before the close");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{path}: not at once"
        );
    }
    // A SockJS client is told in SockJS's own close frame, then the WebSocket closes the same way.
    let mut ws = gw.ws("/maint/000/abcdefgh/websocket").await;
    assert_eq!(next_message(&mut ws).await, Message::text("o"));
    assert_eq!(
        next_message(&mut ws).await,
        Message::text("c[3001,\"Under maintenance\"]")
    );
    let (frame, _) = close_frame(&mut ws).await;
    assert_eq!(u16::from(frame.expect("a close frame").code), 3001);
}

#[tokio::test]
async fn a_sockjs_polling_client_is_opened_then_told_to_go() {
    let gw = TestGateway::start(&["--route", "/maint=close:3001:Under maintenance"]).await;
    let poll = || {
        http(
            gw.main,
            "POST",
            "/maint/000/polling/xhr",
            &[("Content-Length", "0")],
        )
    };
    assert_eq!(poll().await.text(), "o\n");
    // The session is closed: every later poll hears why (SockJS keeps a closed session's
    // frame for its disconnect delay).
    for _ in 0..2 {
        assert_eq!(poll().await.text(), "c[3001,\"Under maintenance\"]\n");
    }
}
