//! Hibernation (`--hibernate-after`): silent echo clients and broadcast members sleep without
//! a task and are served as before when they speak, are pinged, time out or the gateway
//! stops; sleeping members get every message, in order, whole, written by the room.

mod common;

use std::time::Duration;

use base64::Engine;
use common::*;
use futures_util::SinkExt;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Long enough for a session set to sleep after 50 ms to be asleep (it sleeps at its first
/// or second silent tick).
const ASLEEP: Duration = Duration::from_millis(400);

#[tokio::test]
async fn a_client_that_slept_is_served_as_before() {
    let gw = TestGateway::start(&["--hibernate-after", "50ms"]).await;
    let mut ws = gw.ws("/echo").await;
    let big: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    for round in 0..3 {
        tokio::time::sleep(ASLEEP).await;
        send_text(&mut ws, &format!("round {round}")).await;
        ws.send(Message::binary(big.clone())).await.unwrap();
        assert_eq!(
            next_message(&mut ws).await,
            Message::text(format!("round {round}"))
        );
        assert_eq!(next_message(&mut ws).await, Message::binary(big.clone()));
    }
}

#[tokio::test]
async fn a_frame_or_message_cut_across_the_quiet_time_is_not_lost() {
    let gw = TestGateway::start(&["--hibernate-after", "50ms"]).await;
    let mut stream = raw_ws(&gw, "/echo").await;
    let text: String = "the quick brown fox ".repeat(20);

    // A frame cut inside its header, then inside its payload.
    let frame = client_frame(true, 1, text.as_bytes());
    for cut in [1, 3, 100] {
        stream.write_all(&frame[..cut]).await.unwrap();
        tokio::time::sleep(ASLEEP).await;
        stream.write_all(&frame[cut..]).await.unwrap();
        assert_eq!(
            server_frame(&mut stream).await,
            (1, text.clone().into_bytes())
        );
    }

    // A message in fragments, with a ping between them and a long pause after each.
    let pieces = [&text[..7], &text[7..150], &text[150..]];
    let frames = [
        client_frame(false, 1, pieces[0].as_bytes()),
        client_frame(true, 9, b"between"),
        client_frame(false, 0, pieces[1].as_bytes()),
        client_frame(true, 0, pieces[2].as_bytes()),
    ];
    for (i, frame) in frames.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(ASLEEP).await;
        }
        stream.write_all(frame).await.unwrap();
        if i == 1 {
            assert_eq!(server_frame(&mut stream).await, (10, b"between".to_vec()));
        }
    }
    assert_eq!(
        server_frame(&mut stream).await,
        (1, text.clone().into_bytes())
    );

    // Still in step afterwards.
    tokio::time::sleep(ASLEEP).await;
    stream
        .write_all(&client_frame(true, 2, &[1, 2, 3]))
        .await
        .unwrap();
    assert_eq!(server_frame(&mut stream).await, (2, vec![1, 2, 3]));
}

#[tokio::test]
async fn a_flash_client_still_gets_binary_as_text_after_sleeping() {
    let gw = TestGateway::start(&["--hibernate-after", "50ms"]).await;
    let mut flash = gw.flash_ws("/echo").await;
    tokio::time::sleep(ASLEEP).await;
    flash
        .send(Message::binary(vec![0u8, 1, 254, 255]))
        .await
        .unwrap();
    let Message::Text(text) = next_message(&mut flash).await else {
        panic!("a Flash client got a binary frame after sleeping");
    };
    let b64 = text
        .as_str()
        .strip_prefix("data:application/octet-stream;base64,")
        .unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
        [0, 1, 254, 255]
    );
}

#[tokio::test]
async fn sleeping_clients_are_pinged_and_those_that_answer_stay() {
    let gw = TestGateway::start(&["--hibernate-after", "50ms", "--idle-timeout", "300ms"]).await;
    for path in ["/echo", "/chat?room=pinged"] {
        stays_through_three_pings(&mut gw.ws(path).await).await;
    }
}

#[tokio::test]
async fn a_sleeping_client_that_does_not_answer_its_ping_is_closed_with_1001() {
    let gw = TestGateway::start(&["--hibernate-after", "50ms", "--idle-timeout", "300ms"]).await;
    let mut silent = raw_ws(&gw, "/echo").await;
    // Not reading: the ping waits in the socket, unanswered.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(server_frame(&mut silent).await, (9, vec![]));
    let (opcode, payload) = server_frame(&mut silent).await;
    assert_eq!(opcode, 8, "a close frame");
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1001);
    assert_eq!(&payload[2..], b"idle timeout");
}

#[tokio::test]
async fn sleeping_clients_get_1001_when_the_gateway_stops() {
    let mut gw = TestGateway::start(&["--hibernate-after", "50ms"]).await;
    let mut clients = Vec::new();
    for i in 0..20 {
        clients.push(gw.ws(if i % 2 == 0 { "/echo" } else { "/chat" }).await);
    }
    tokio::time::sleep(ASLEEP).await;
    let took = gw.shutdown().await;
    assert!(took < Duration::from_secs(3), "run() took {took:?}");
    for ws in &mut clients {
        let (frame, _) = close_frame(ws).await;
        let frame = frame.expect("a close frame");
        assert_eq!(frame.code, CloseCode::Away);
        assert_eq!(frame.reason.as_str(), "server shutting down");
    }
}

fn numbered(i: usize, filler: &str) -> String {
    format!("{i}:{filler}")
}

#[tokio::test]
async fn sleeping_members_get_every_message_in_order_flash_ones_as_text() {
    let gw = TestGateway::start(&["--hibernate-after", "50ms"]).await;
    let mut native = gw.ws("/chat?room=night").await;
    let mut flash = gw.flash_ws("/chat?room=night").await;
    let mut publisher = gw.ws("/chat?room=night").await;
    tokio::time::sleep(ASLEEP).await;
    // Sent in one go: the room publishes them together.
    let mut all = Vec::new();
    for i in 0..200 {
        all.push(Ok(Message::text(numbered(i, "x"))));
    }
    all.push(Ok(Message::binary(vec![0u8, 1, 2, 255])));
    publisher
        .send_all(&mut futures_util::stream::iter(all))
        .await
        .unwrap();
    for ws in [&mut native, &mut flash, &mut publisher] {
        for i in 0..200 {
            assert_eq!(next_message(ws).await, Message::text(numbered(i, "x")));
        }
    }
    assert_eq!(
        next_message(&mut native).await,
        Message::binary(vec![0u8, 1, 2, 255])
    );
    assert_eq!(
        next_message(&mut flash).await,
        Message::text("data:application/octet-stream;base64,AAEC/w==")
    );
}

#[tokio::test]
async fn a_sleeping_member_that_falls_behind_and_catches_up_gets_everything_whole() {
    let gw = TestGateway::start(&["--hibernate-after", "50ms"]).await;
    let mut behind = gw.ws("/chat?room=backlog").await;
    let mut publisher = gw.ws("/chat?room=backlog").await;
    tokio::time::sleep(ASLEEP).await;
    // Far more than the socket buffers take: the room fills the sleeper's socket, wakes it
    // with the rest of a frame owed, and queues the others.
    const COUNT: usize = 300;
    let filler = "y".repeat(32 * 1024);
    let pad = |i: usize| format!("{i:03}:{filler}");
    let writer = async {
        for i in 0..COUNT {
            publisher.send(Message::text(pad(i))).await.unwrap();
            assert_eq!(next_message(&mut publisher).await, Message::text(pad(i)));
        }
    };
    writer.await;
    // Reading only now.
    for i in 0..COUNT {
        assert_eq!(
            next_message(&mut behind).await,
            Message::text(pad(i)),
            "message {i}"
        );
    }
}

#[tokio::test]
async fn a_sleeping_member_that_never_reads_is_closed_with_1008_after_whole_messages() {
    let gw = TestGateway::start(&["--hibernate-after", "50ms", "--send-backlog", "65536"]).await;
    let mut slow = gw.ws("/chat?room=flood").await;
    let mut fast = gw.ws("/chat?room=flood").await;
    let mut publisher = gw.ws("/chat?room=flood").await;
    tokio::time::sleep(ASLEEP).await;
    const COUNT: usize = 400;
    let chunk = "z".repeat(64 * 1024);
    let len = numbered(0, &chunk).len();
    publish_while_read(&mut publisher, &mut fast, COUNT, &chunk).await;
    // What reached the slow member is whole and in order, then the close says why.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (received, frame) = numbered_until_close(&mut slow, |text| {
        assert!(
            text.len() >= len && text.len() <= len + 3,
            "cut: {}",
            text.len()
        );
    })
    .await;
    assert!(received < COUNT, "the slow client was not dropped");
    assert_eq!(frame.code, CloseCode::Policy);
    assert!(frame.reason.contains("send queue full"), "{}", frame.reason);
}

#[tokio::test]
async fn a_quiet_member_gets_a_message_while_asleep() {
    let gw = TestGateway::start(&["--hibernate-after", "50ms"]).await;
    let mut quiet = gw.ws("/chat?room=sleepless").await;
    let mut speaker = gw.ws("/chat?room=sleepless").await;
    tokio::time::sleep(ASLEEP).await;
    send_text(&mut speaker, "wake up").await;
    assert_eq!(next_message(&mut quiet).await, Message::text("wake up"));
    assert_eq!(next_message(&mut speaker).await, Message::text("wake up"));
}
