//! Limits per client address: connections at once and handshakes per second, answered with
//! 429 and `Retry-After`, counted in the metrics; `X-Forwarded-For` believed from trusted
//! proxies only; Flash policy requests always answered.

mod common;

use std::time::Duration;

use common::*;
use tokio_tungstenite::tungstenite::{Error, Message};

/// A WebSocket handshake to `path` with `headers` that the gateway refuses: its status,
/// `Retry-After` and body.
async fn refused(gw: &TestGateway, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let request = gw.ws_request(path, headers);
    match within("handshake", tokio_tungstenite::connect_async(request)).await {
        Err(Error::Http(response)) => {
            let retry = (response.headers().get("retry-after"))
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or(&[]));
            (response.status().as_u16(), retry, body.into_owned())
        }
        Err(other) => panic!("not an HTTP refusal: {other}"),
        Ok(_) => panic!("the handshake was accepted"),
    }
}

/// The value of metric sample `name` (with its labels) on the metrics listener.
async fn sample(gw: &TestGateway, name: &str) -> f64 {
    let text = get(gw.metrics, "/metrics").await.text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[tokio::test]
async fn connections_per_address_are_bounded_and_freed_when_they_end() {
    let gw = TestGateway::start(&["--per-ip-connections", "2"]).await;
    let mut first = gw.ws("/echo").await;
    let _second = gw.ws("/echo").await;

    let (status, retry, body) = refused(&gw, "/echo", &[]).await;
    assert_eq!((status, retry.as_str()), (429, "1"));
    assert!(body.contains("--per-ip-connections"), "{body}");
    // Plain HTTP gets the same answer, before its request is read.
    let page = get(gw.main, "/").await;
    assert_eq!(page.status, 429);
    // Flash Player's policy request is never refused.
    let policy = exchange(gw.main, &[POLICY_REQUEST], false).await;
    assert!(policy.ends_with(b"</cross-domain-policy>\0"));

    // The clients already in are untouched.
    send_text(&mut first, "still mine").await;
    assert_eq!(next_message(&mut first).await, Message::text("still mine"));
    first.close(None).await.unwrap();
    drop(first);
    within("a freed connection", async {
        while get(gw.main, "/").await.status != 200 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let refusals = r#"flashgate_per_ip_refused_total{limit="connections"}"#;
    assert_eq!(sample(&gw, refusals).await, 2.0);
}

#[tokio::test]
async fn handshakes_per_second_are_bounded_for_websocket_and_sockjs_alike() {
    let gw = TestGateway::start(&["--per-ip-handshakes", "3"]).await;
    let mut open = Vec::new();
    for _ in 0..2 {
        open.push(gw.ws("/echo").await);
    }
    // A new SockJS session is a handshake too.
    let opened = http(gw.main, "POST", "/echo/000/per-ip-one/xhr", &[]).await;
    assert_eq!(opened.status, 200);
    assert_eq!(opened.text(), "o\n");

    let (status, retry, body) = refused(&gw, "/echo", &[]).await;
    assert_eq!((status, retry.as_str()), (429, "1"));
    assert!(body.contains("try again shortly"), "{body}");
    let sockjs = http(gw.main, "POST", "/echo/000/per-ip-two/xhr", &[]).await;
    assert_eq!(sockjs.status, 429, "{}", sockjs.text());
    // A session already open goes on: polling it is no new handshake.
    let mut stream = tokio::net::TcpStream::connect(gw.main).await.unwrap();
    use tokio::io::AsyncWriteExt;
    let body = r#"["echoed"]"#;
    let request = format!(
        "POST /echo/000/per-ip-one/xhr_send HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut stream).await.status, 204);
    let polled = http(gw.main, "POST", "/echo/000/per-ip-one/xhr", &[]).await;
    assert_eq!(polled.text(), "a[\"echoed\"]\n");

    // The budget refills at 3 a second.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut later = gw.ws("/echo").await;
    send_text(&mut later, "in again").await;
    assert_eq!(next_message(&mut later).await, Message::text("in again"));
    let refusals = r#"flashgate_per_ip_refused_total{limit="handshakes"}"#;
    assert_eq!(sample(&gw, refusals).await, 2.0);
}

#[tokio::test]
async fn forwarded_for_names_the_client_only_behind_a_trusted_proxy() {
    let dir = fixtures();
    let file = dir.path().join("flashgate.toml");
    std::fs::write(
        &file,
        "per_ip_connections = 1\ntrusted_proxy = [\"127.0.0.0/8\"]\n",
    )
    .unwrap();
    let file = file.display().to_string();
    let gw = TestGateway::start_in(dir, &["--config", &file]).await;
    // Behind the proxy (this test, on loopback), each forwarded client counts alone.
    let alice = [("X-Forwarded-For", "198.51.100.1")];
    let _a = gw.ws_with("/echo", &alice).await;
    let (status, _, _) = refused(&gw, "/echo", &alice).await;
    assert_eq!(status, 429, "alice's second connection");
    let chain = [("X-Forwarded-For", "203.0.113.50, 198.51.100.2, 127.0.0.1")];
    let mut bob = gw.ws_with("/echo", &chain).await;
    send_text(&mut bob, "bob").await;
    assert_eq!(next_message(&mut bob).await, Message::text("bob"));

    // Not trusted: the header is the client's own claim, and the socket's address counts.
    let gw = TestGateway::start(&["--per-ip-connections", "1"]).await;
    let _first = gw.ws_with("/echo", &alice).await;
    let other = [("X-Forwarded-For", "198.51.100.9")];
    let (status, _, _) = refused(&gw, "/echo", &other).await;
    assert_eq!(
        status, 429,
        "a claimed address does not get around the limit"
    );
}

#[test]
fn a_trusted_proxy_that_is_not_an_address_is_refused_with_its_line() {
    let dir = fixtures();
    let file = dir.path().join("flashgate.toml");
    std::fs::write(&file, "trusted_proxy = [\"10.0.0.0/8\", \"ten\"]\n").unwrap();
    let error = config(dir.path(), &["--config", &file.display().to_string()]).unwrap_err();
    let text = format!("{error:#}");
    assert!(
        text.contains("flashgate.toml:1:32") && text.contains("\"ten\""),
        "{text}"
    );
    let error = config(dir.path(), &["--trusted-proxy", "10.0.0.0/99"]).unwrap_err();
    assert!(
        format!("{error:#}").contains("--trusted-proxy"),
        "{error:#}"
    );
}
