//! A third-party WebSocket server as the upstream: Node's `ws` (pinned by
//! `tests/upstream/peer/package-lock.json`, installed by `scripts/test`), started by the
//! test. RFC 6455, web-socket-js and SockJS clients reach it through one `ws://` route.

mod common;

use std::path::Path;
use std::process::Stdio;

use futures_util::SinkExt;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use common::http_stream::{Stream, post, rand_u16};
use common::*;

/// The Node server, killed when dropped, and what it says on stdout.
struct NodeWs {
    _child: Child,
    events: Lines<BufReader<ChildStdout>>,
    port: u16,
}

impl NodeWs {
    async fn start() -> NodeWs {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/upstream/peer");
        assert!(
            dir.join("node_modules/ws").is_dir(),
            "Node ws is not installed: run `npm ci` in {} (scripts/test does)",
            dir.display()
        );
        let mut child = Command::new("node")
            .arg(dir.join("server.js"))
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node, for the ws server");
        let stdout = child.stdout.take().unwrap();
        let mut server = NodeWs {
            _child: child,
            events: BufReader::new(stdout).lines(),
            port: 0,
        };
        let port = server.event().await["listening"].as_u64().expect("a port");
        server.port = u16::try_from(port).unwrap();
        server
    }

    /// The next thing the server tells.
    async fn event(&mut self) -> Value {
        let line = within("the ws server to speak", self.events.next_line()).await;
        serde_json::from_str(&line.unwrap().expect("the ws server is running")).unwrap()
    }
}

#[tokio::test]
async fn every_family_reaches_a_node_ws_server_which_learns_who_each_client_is() {
    let mut node = NodeWs::start().await;
    let route = format!("/app=ws://127.0.0.1:{}/live", node.port);
    let gw = TestGateway::start(&["--route", &route]).await;

    // A native client, offering subprotocols: the server's choice is its answer.
    let request = gw.ws_request(
        "/app?room=1",
        &[("Sec-WebSocket-Protocol", "chat.v2, chat.v1")],
    );
    let (mut ws, response) = within("handshake", tokio_tungstenite::connect_async(request))
        .await
        .unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat.v1");
    let hello = node.event().await;
    assert_eq!(hello["url"], "/live?room=1");
    assert_eq!(hello["headers"]["x-flashgate-transport"], "rfc6455");
    assert_eq!(hello["headers"]["x-forwarded-for"], "127.0.0.1");
    send_text(&mut ws, "zwölf").await;
    assert_eq!(next_message(&mut ws).await, Message::text("zwölf"));
    let bytes: Vec<u8> = (0..=255).collect();
    ws.send(Message::binary(bytes.clone())).await.unwrap();
    assert_eq!(next_message(&mut ws).await, Message::binary(bytes));
    let bye = CloseFrame {
        code: CloseCode::from(4100),
        reason: "done here".into(),
    };
    ws.close(Some(bye)).await.unwrap();
    let closed = node.event().await;
    assert_eq!(
        (closed["closed"].as_u64(), closed["reason"].as_str()),
        (Some(4100), Some("done here"))
    );

    // web-socket-js: the same server, the same messages, as text.
    let mut flash = gw.flash_ws("/app").await;
    let hello = node.event().await;
    assert_eq!(hello["headers"]["x-flashgate-transport"], "flash");
    assert_eq!(hello["headers"]["origin"], format!("http://{}", gw.main));
    send_text(&mut flash, "from flash").await;
    assert_eq!(next_message(&mut flash).await, Message::text("from flash"));
    send_text(&mut flash, "close:4200:server says so").await;
    let (frame, _) = close_frame(&mut flash).await;
    let frame = frame.unwrap();
    assert_eq!(
        (u16::from(frame.code), frame.reason.as_str()),
        (4200, "server says so")
    );

    // SockJS xhr-streaming.
    let s = format!("/app/000/{}", rand_u16());
    let mut stream = Stream::open(gw.main, "POST", &format!("{s}/xhr_streaming"), b"").await;
    stream.chunk().await.unwrap(); // the prelude
    assert_eq!(stream.chunk().await.unwrap(), "o\n");
    let hello = loop {
        let event = node.event().await;
        if event.get("url").is_some() {
            break event;
        }
    };
    assert_eq!(
        hello["headers"]["x-flashgate-transport"],
        "sockjs-xhr-streaming"
    );
    assert_eq!(
        post(gw.main, &format!("{s}/xhr_send"), "[\"ünïcode\"]")
            .await
            .0,
        204
    );
    assert_eq!(stream.chunk().await.unwrap(), "a[\"ünïcode\"]\n");
}
