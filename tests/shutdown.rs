//! Graceful shutdown: stop accepting, close every WebSocket with 1001, return within the
//! drain timeout.

mod common;

use std::time::Duration;

use common::*;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn shutdown_closes_websockets_with_1001_and_returns() {
    let mut gw = TestGateway::start(&["--drain-timeout", "3s"]).await;
    let mut echo = gw.ws("/echo").await;
    let mut chat = gw.browser_ws("/chat").await;
    send_text(&mut echo, "before").await;
    assert_eq!(next_message(&mut echo).await, Message::text("before"));

    // The clients read concurrently, as they would, while the gateway stops.
    let readers = async {
        let (echo_close, _) = close_frame(&mut echo).await;
        let (chat_close, _) = close_frame(&mut chat).await;
        (echo_close, chat_close)
    };
    let (took, (echo_close, chat_close)) = tokio::join!(gw.shutdown(), readers);
    for frame in [echo_close, chat_close] {
        let frame = frame.expect("a close frame");
        assert_eq!(frame.code, CloseCode::Away);
        assert!(frame.reason.contains("shutting down"), "{}", frame.reason);
    }
    assert!(took < Duration::from_secs(3), "run() took {took:?}");
}

#[tokio::test]
async fn no_connection_is_served_after_shutdown() {
    let mut gw = TestGateway::start(&[]).await;
    let (main, policy) = (gw.main, gw.policy);
    gw.shutdown().await;
    for addr in [main, policy] {
        match TcpStream::connect(addr).await {
            Err(_) => {}
            Ok(mut stream) => {
                use tokio::io::AsyncWriteExt;
                let _ = stream.write_all(POLICY_REQUEST).await;
                assert!(
                    read_to_close(&mut stream).await.is_empty(),
                    "{addr} still answers"
                );
            }
        }
    }
}

#[tokio::test]
async fn drain_timeout_bounds_a_client_that_never_answers_the_close() {
    let mut gw = TestGateway::start(&["--drain-timeout", "500ms"]).await;
    // Connected but never reading: its close handshake cannot finish.
    let _stuck = gw.ws("/echo").await;
    let took = gw.shutdown().await;
    assert!(took < Duration::from_millis(1500), "run() took {took:?}");
}

#[tokio::test]
async fn silent_new_connections_do_not_hold_up_shutdown() {
    // Browsers open connections ahead of need and may leave them silent. With timeouts this
    // long, waiting for them would make shutdown() time out in the test.
    let mut gw = TestGateway::start(&["--read-timeout", "60s", "--drain-timeout", "60s"]).await;
    let mut main = TcpStream::connect(gw.main).await.unwrap();
    // The policy port's kernel queue holds a silent connection until its first bytes come
    // (TCP_DEFER_ACCEPT): the gateway never sees it.
    let mut policy = TcpStream::connect(gw.policy).await.unwrap();
    // Served once: proof that the connections above are past the listen queue.
    assert!(
        exchange(gw.policy, &[POLICY_REQUEST], false)
            .await
            .ends_with(b"\0")
    );
    assert_eq!(get(gw.main, "/index.html").await.status, 200);
    gw.shutdown().await;
    assert!(read_to_close(&mut main).await.is_empty());
    // Speaking now gets no policy: the connection is reset or closed.
    use tokio::io::AsyncWriteExt;
    let _ = policy.write_all(POLICY_REQUEST).await;
    assert!(read_to_close(&mut policy).await.is_empty());
}

#[tokio::test]
async fn idle_keep_alive_connections_do_not_hold_up_shutdown() {
    let mut gw =
        TestGateway::start(&["--handshake-timeout", "60s", "--drain-timeout", "60s"]).await;
    let mut stream = TcpStream::connect(gw.main).await.unwrap();
    use tokio::io::AsyncWriteExt;
    stream
        .write_all(request("GET", "/index.html", &[]).as_bytes())
        .await
        .unwrap();
    assert_eq!(read_response(&mut stream).await.status, 200);
    gw.shutdown().await;
    assert!(read_to_close(&mut stream).await.is_empty());
}

#[tokio::test]
async fn broadcast_members_get_1001_on_shutdown_even_with_messages_queued() {
    let mut gw = TestGateway::start(&[]).await;
    let mut reader = gw.ws("/chat?room=stop").await;
    let mut writer = gw.ws("/chat?room=stop").await;
    for i in 0..50 {
        send_text(&mut writer, &format!("{i}")).await;
    }
    // The writer sees its own 50 messages: they were all published before the stop.
    for i in 0..50 {
        assert_eq!(
            next_message(&mut writer).await,
            Message::text(format!("{i}"))
        );
    }
    let readers = async {
        let (reader_close, received) = close_frame(&mut reader).await;
        let (writer_close, _) = close_frame(&mut writer).await;
        (reader_close, received, writer_close)
    };
    let (_, (reader_close, received, writer_close)) = tokio::join!(gw.shutdown(), readers);
    assert_eq!(reader_close.expect("a close frame").code, CloseCode::Away);
    assert_eq!(writer_close.expect("a close frame").code, CloseCode::Away);
    assert!(received <= 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_stuck_writing_to_a_client_that_reads_nothing_does_not_hold_up_shutdown() {
    let mut gw = TestGateway::start(&["--drain-timeout", "30s"]).await;
    let _stalled = gw.ws("/chat?room=stuck").await;
    let mut publisher = gw.ws("/chat?room=stuck").await;
    // More than the stalled client's socket buffers take: its task waits on a write.
    flood_reading_own_copies(&mut publisher, 200, &"s".repeat(64 * 1024)).await;
    let took = gw.shutdown().await;
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
}
