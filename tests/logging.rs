//! The log: `--log-format json` (one object per line, from the command line or the file),
//! one access line per HTTP request and per ended session, and a plain HTTP probe of a
//! WebSocket route logged at DEBUG, not as a warning.

mod common;

use common::running::Running;
use common::*;
use serde_json::Value;

fn started(dir: &std::path::Path, extra: &[&str], log: &str) -> Running {
    let mut command = binary(env!("CARGO_BIN_EXE_flashgate"));
    command
        .env("RUST_LOG", log)
        .current_dir(dir)
        .args(["--listen", "127.0.0.1:0", "--policy-listen", "off"])
        .args(["--web-dir", "web", "--assets-dir", "assets"])
        .args(extra);
    Running::spawn(command)
}

/// The main listener's address, from its JSON `listening` line.
fn main_addr(gateway: &mut Running) -> std::net::SocketAddr {
    let line = gateway.line_with("\"listener\":\"main\"");
    let object: Value = serde_json::from_str(&line).unwrap();
    object["addr"].as_str().unwrap().parse().unwrap()
}

/// Every line seen so far, each of which must be one JSON object.
fn objects(gateway: &Running) -> Vec<Value> {
    (gateway.seen.iter())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect()
}

#[tokio::test]
async fn json_lines_with_an_access_line_per_request() {
    let dir = fixtures();
    let mut gateway = started(dir.path(), &["--log-format", "json"], "info");
    let main = main_addr(&mut gateway);
    assert_eq!(get(main, "/crossdomain.xml").await.status, 200);
    assert_eq!(get(main, "/no-such-page").await.status, 404);
    gateway.line_with("/no-such-page");
    let lines = objects(&gateway);
    let listening = lines
        .iter()
        .find(|l| l["message"] == "listening")
        .expect("a listening line");
    assert_eq!(listening["listener"], "main");
    assert_eq!(listening["level"], "INFO");
    let access: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "flashgate::access")
        .collect();
    assert_eq!(access.len(), 2, "{lines:?}");
    assert_eq!(access[0]["method"], "GET");
    assert_eq!(access[0]["path"], "/crossdomain.xml");
    assert_eq!(access[0]["status"], 200);
    assert!(
        access[0]["bytes"].as_u64().unwrap() > 100,
        "{:?}",
        access[0]
    );
    assert_eq!(
        access[0]["peer"].as_str().unwrap().split(':').next(),
        Some("127.0.0.1")
    );
    assert!(access[0]["ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(
        (access[1]["path"].as_str(), access[1]["status"].as_u64()),
        (Some("/no-such-page"), Some(404))
    );
    assert_eq!(gateway.terminate().code(), Some(0));
}

#[tokio::test]
async fn the_file_sets_the_format_and_a_probe_of_a_websocket_route_is_no_warning() {
    let dir = fixtures();
    let file = dir.path().join("flashgate.toml");
    std::fs::write(&file, "log_format = \"json\"\n").unwrap();
    let mut gateway = started(dir.path(), &["--config", file.to_str().unwrap()], "debug");
    let main = main_addr(&mut gateway);
    // What `curl http://host/socket` sends: no Upgrade (and the socket proxy's route has no
    // SockJS to answer it instead).
    assert_eq!(get(main, "/socket").await.status, 426);
    gateway.line_with("\"status\":426");
    let lines = objects(&gateway);
    let refused: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "websocket refused")
        .collect();
    assert_eq!(refused.len(), 1, "{lines:?}");
    assert_eq!(refused[0]["level"], "DEBUG");
    let warned =
        |l: &&Value| l["level"] == "WARN" && l["message"].as_str().unwrap().contains("refused");
    assert!(!lines.iter().any(|l| warned(&l)), "{lines:?}");
    assert_eq!(gateway.terminate().code(), Some(0));
}

#[tokio::test]
async fn an_ended_session_has_one_access_line_with_what_it_did_and_how_it_ended() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    let dir = fixtures();
    let mut gateway = started(dir.path(), &["--log-format", "json"], "info");
    let main = main_addr(&mut gateway);
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{main}/echo"))
        .await
        .unwrap();
    for text in ["one", "three"] {
        ws.send(Message::text(text)).await.unwrap();
        within("the echo", ws.next()).await.unwrap().unwrap();
    }
    let frame = CloseFrame {
        code: 4001.into(),
        reason: "bye".into(),
    };
    ws.close(Some(frame)).await.unwrap();
    while let Some(Ok(_)) = within("the close", ws.next()).await {}
    gateway.line_with("\"message\":\"session\"");
    let lines = objects(&gateway);
    let ended: Vec<&Value> = lines.iter().filter(|l| l["message"] == "session").collect();
    assert_eq!(ended.len(), 1, "{lines:?}");
    let line = ended[0];
    assert_eq!(line["target"], "flashgate::access");
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["route"], "/echo");
    assert_eq!(line["transport"], "rfc6455");
    assert_eq!(
        (line["messages_in"].as_u64(), line["messages_out"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(
        (line["bytes_in"].as_u64(), line["bytes_out"].as_u64()),
        (Some(8), Some(8))
    );
    assert_eq!(line["close"], 4001);
    assert!(line["seconds"].as_f64().unwrap() >= 0.0, "{line}");
    let peer: std::net::SocketAddr = line["peer"].as_str().unwrap().parse().unwrap();
    assert_eq!(peer.ip().to_string(), "127.0.0.1");
    assert_eq!(gateway.terminate().code(), Some(0));
}

#[tokio::test]
async fn a_socket_proxy_session_is_logged_as_the_proxy_with_the_bytes_it_carried() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let dir = fixtures();
    let (echo, _) = common::upstream::tcp_echo().await;
    let target = echo.to_string();
    let mut gateway = started(
        dir.path(),
        &["--log-format", "json", "--proxy-target", &target],
        "info",
    );
    let main = main_addr(&mut gateway);
    let url = format!("ws://{main}/socket?target={target}");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.send(Message::binary(&b"raw bytes"[..])).await.unwrap();
    let mut back = Vec::new();
    while back.len() < 9 {
        match within("the echo", ws.next()).await.unwrap().unwrap() {
            Message::Binary(bytes) => back.extend_from_slice(&bytes),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(back, b"raw bytes");
    ws.close(None).await.unwrap();
    while let Some(Ok(_)) = within("the close", ws.next()).await {}
    gateway.line_with("\"message\":\"session\"");
    let lines = objects(&gateway);
    let ended: Vec<&Value> = lines.iter().filter(|l| l["message"] == "session").collect();
    assert_eq!(ended.len(), 1, "{lines:?}");
    assert_eq!(ended[0]["route"], "/socket");
    // As the connection metrics name it, not by the handshake it came with.
    assert_eq!(ended[0]["transport"], "proxy");
    assert_eq!(
        (
            ended[0]["bytes_in"].as_u64(),
            ended[0]["bytes_out"].as_u64()
        ),
        (Some(9), Some(9))
    );
    assert_eq!(gateway.terminate().code(), Some(0));
}
