//! What flows through each route, in `/metrics`: messages and their payload bytes both ways,
//! and sessions ended by close code; whatever the client's transport and the route's
//! backend (echo, a broadcast room writing into sleeping members, a relay to a TCP server,
//! a relay passing frames to a WebSocket server).

mod common;

use common::family::{FAMILIES, Got};
use common::scrape::{sample, scrape, until};
use common::upstream::{recording_echo, recording_ws_echo};
use common::*;
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};

/// The name of a route's sample in `family`, one way.
fn flow(family: &str, route: &str, direction: &str) -> String {
    format!("flashgate_{family}{{route=\"{route}\",direction=\"{direction}\"}}")
}

/// The name of a route's sample of sessions ended with `code`.
fn closes(route: &str, code: &str) -> String {
    format!("flashgate_closes_total{{route=\"{route}\",code=\"{code}\"}}")
}

/// Closes `ws` with `code` and waits for the gateway's answer.
async fn close_with(ws: &mut Ws, code: u16) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: "done".into(),
    };
    ws.close(Some(frame)).await.unwrap();
    let (answer, _) = close_frame(ws).await;
    assert_eq!(answer.map(|f| u16::from(f.code)), Some(code));
}

#[tokio::test]
async fn an_echo_routes_messages_and_bytes_count_both_ways_and_its_closes_by_code() {
    let gw = TestGateway::start(&["--max-message-size", "200"]).await;
    let mut native = gw.ws("/echo").await;
    native.send(Message::text("a")).await.unwrap();
    native.send(Message::text("bb")).await.unwrap();
    native.send(Message::binary(vec![7u8; 10])).await.unwrap();
    for _ in 0..3 {
        next_message(&mut native).await;
    }
    close_with(&mut native, 4001).await;
    // A web-socket-js client whose message is over the limit: the transport closes it.
    let mut flash = gw.flash_ws("/echo").await;
    send_text(&mut flash, "fits").await;
    assert_eq!(next_message(&mut flash).await.into_text().unwrap(), "fits");
    send_text(&mut flash, &"x".repeat(201)).await;
    let (frame, _) = close_frame(&mut flash).await;
    assert_eq!(frame.map(|f| u16::from(f.code)), Some(1009));

    let text = until(&gw, &closes("/echo", "1009"), 1.0).await;
    for (name, value) in [
        (flow("messages_total", "/echo", "in"), 4.0),
        (flow("messages_total", "/echo", "out"), 4.0),
        (flow("payload_bytes_total", "/echo", "in"), 17.0),
        (flow("payload_bytes_total", "/echo", "out"), 17.0),
        (closes("/echo", "4xxx"), 1.0),
    ] {
        assert_eq!(sample(&text, &name), Some(value), "{name} in\n{text}");
    }
    // Nothing flowed on the other routes.
    assert_eq!(
        sample(&text, &flow("messages_total", "/chat", "in")),
        Some(0.0)
    );
}

#[tokio::test]
async fn every_client_family_counts_alike_and_shows_before_its_session_ends() {
    let gw = TestGateway::start(&[]).await;
    let mut clients = Vec::new();
    for family in FAMILIES {
        let mut client = family.connect(gw.main, "/echo").await;
        client.send("ping").await;
        let got = client.recv().await;
        assert!(
            matches!(&got, Got::Text(t) if t == "ping") || got == Got::Binary(b"ping".to_vec()),
            "{family:?}: {got:?}"
        );
        clients.push(client);
    }
    // Each session, waiting for its client, has added its counts to the route's.
    let n = FAMILIES.len() as f64;
    let text = until(&gw, &flow("messages_total", "/echo", "out"), n).await;
    for (name, value) in [
        (flow("messages_total", "/echo", "in"), n),
        (flow("payload_bytes_total", "/echo", "in"), 4.0 * n),
        (flow("payload_bytes_total", "/echo", "out"), 4.0 * n),
    ] {
        assert_eq!(sample(&text, &name), Some(value), "{name} in\n{text}");
    }
}

#[tokio::test]
async fn a_room_counts_what_it_writes_into_sleeping_members() {
    let gw = TestGateway::start(&["--hibernate-after", "200ms"]).await;
    let (mut a, mut b) = (gw.ws("/chat").await, gw.ws("/chat").await);
    until(&gw, "flashgate_connections_asleep", 2.0).await;
    let mut speaker = gw.ws("/chat").await;
    send_text(&mut speaker, "to the sleepers").await;
    for ws in [&mut a, &mut b, &mut speaker] {
        let got = next_message(ws).await.into_text().unwrap();
        assert_eq!(got.as_str(), "to the sleepers");
    }
    // One message in; three out (two straight into sleeping sockets, one to its sender).
    let out = flow("messages_total", "/chat", "out");
    let text = until(&gw, &out, 3.0).await;
    assert_eq!(
        sample(&text, &flow("payload_bytes_total", "/chat", "out")),
        Some(45.0)
    );
    let text = until(&gw, &flow("messages_total", "/chat", "in"), 1.0).await;
    assert_eq!(
        sample(&text, &flow("payload_bytes_total", "/chat", "in")),
        Some(15.0)
    );
    // A member that goes away without a close frame ends without a code.
    drop(a);
    until(&gw, &closes("/chat", "none"), 1.0).await;
}

#[tokio::test]
async fn relays_count_a_byte_streams_bytes_and_a_websocket_servers_messages() {
    let tcp = recording_echo(false, false).await;
    let ws = recording_ws_echo(false).await;
    let tcp_route = format!("/tcp=tcp://{}", tcp.addr);
    let ws_route = format!("/up=ws://{}/", ws.addr);
    let gw = TestGateway::start(&["--route", &tcp_route, "--route", &ws_route]).await;

    // A TCP server: two messages of 5 and 7 bytes in; back, as many messages as its reads
    // came in, 12 bytes.
    let mut client = gw.ws("/tcp").await;
    client.send(Message::binary(vec![1u8; 5])).await.unwrap();
    client.send(Message::binary(vec![2u8; 7])).await.unwrap();
    let (mut got, mut pieces) = (0, 0.0);
    while got < 12 {
        got += next_message(&mut client).await.into_data().len();
        pieces += 1.0;
    }
    close_with(&mut client, 1000).await;
    let text = until(&gw, &closes("/tcp", "1000"), 1.0).await;
    for (name, value) in [
        (flow("messages_total", "/tcp", "in"), 2.0),
        (flow("payload_bytes_total", "/tcp", "in"), 12.0),
        (flow("messages_total", "/tcp", "out"), pieces),
        (flow("payload_bytes_total", "/tcp", "out"), 12.0),
    ] {
        assert_eq!(sample(&text, &name), Some(value), "{name} in\n{text}");
    }

    // A WebSocket server, its frames and the client's passed as they are: counted by their
    // headers, a fragmented message once.
    let mut client = gw.ws("/up").await;
    send_text(&mut client, "hello").await;
    client
        .send(Message::Frame(fragment(true, false, "frag")))
        .await
        .unwrap();
    client
        .send(Message::Frame(fragment(false, true, "ment")))
        .await
        .unwrap();
    let mut echoed = Vec::new();
    while echoed.len() < 2 {
        echoed.push(next_message(&mut client).await.into_text().unwrap());
    }
    assert_eq!(echoed, ["hello", "fragment"]);
    close_with(&mut client, 4002).await;
    let text = until(&gw, &closes("/up", "4xxx"), 1.0).await;
    for (name, value) in [
        (flow("messages_total", "/up", "in"), 2.0),
        (flow("payload_bytes_total", "/up", "in"), 13.0),
        (flow("messages_total", "/up", "out"), 2.0),
        (flow("payload_bytes_total", "/up", "out"), 13.0),
    ] {
        assert_eq!(sample(&text, &name), Some(value), "{name} in\n{text}");
    }
    assert!(
        scrape(&gw)
            .await
            .contains("# TYPE flashgate_payload_bytes_total counter")
    );
}

/// A frame of a fragmented text message: the first, or (`first` false) a continuation.
fn fragment(first: bool, fin: bool, text: &str) -> Frame {
    let opcode = match first {
        true => OpCode::Data(Data::Text),
        false => OpCode::Data(Data::Continue),
    };
    Frame::message(text.as_bytes().to_vec(), opcode, fin)
}
