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
