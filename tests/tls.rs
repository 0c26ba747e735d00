//! TLS on the main port, with real TLS clients (rustls, trusting a CA made for the test):
//! one port for https://, wss://, plain HTTP and the Flash policy; every transport over it;
//! `--tls-only`; the certificate read again on reload while connections stay; bad and
//! stalled handshakes closed without touching anyone else.

mod common;

use std::time::Duration;

use common::tls::{TestCa, served};
use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// A gateway speaking TLS with a certificate from `ca`, and `extra` options.
async fn tls_gateway(ca: &TestCa, extra: &[&str]) -> TestGateway {
    let dir = fixtures();
    let issued = ca.issue(dir.path(), "server");
    let (cert, key) = (
        issued.cert.display().to_string(),
        issued.key.display().to_string(),
    );
    let mut args = vec!["--tls-cert", cert.as_str(), "--tls-key", key.as_str()];
    args.extend_from_slice(extra);
    TestGateway::start_in(dir, &args).await
}

/// Sends `request` and reads until the server closes (or `until` appears).
async fn exchange_on<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    request: &str,
    until: Option<&str>,
) -> String {
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    within("the response", async {
        loop {
            let n = stream.read(&mut buf).await.unwrap_or(0);
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got);
            if n == 0 || until.is_some_and(|u| text.contains(u)) {
                return;
            }
        }
    })
    .await;
    String::from_utf8_lossy(&got).into_owned()
}

fn get_request(target: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
}

#[tokio::test]
async fn one_port_serves_https_wss_plain_http_and_the_flash_policy() {
    let ca = TestCa::new();
    let gw = tls_gateway(&ca, &[]).await;

    let mut tls = ca.connect(gw.main).await.expect("TLS handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let page = exchange_on(&mut tls, &get_request("/"), None).await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains(INDEX_HTML), "{page}");

    let plain = get(gw.main, "/").await;
    assert_eq!(plain.status, 200);
    assert!(plain.text().contains(INDEX_HTML));
    let policy = exchange(gw.main, &[POLICY_REQUEST], true).await;
    assert!(String::from_utf8_lossy(&policy).contains("<cross-domain-policy>"));

    let tls = ca.connect(gw.main).await.unwrap();
    let url = format!("wss://127.0.0.1:{}/echo", gw.main.port());
    let (mut ws, response) = within("wss handshake", tokio_tungstenite::client_async(url, tls))
        .await
        .expect("wss handshake");
    assert_eq!(response.status(), 101);
    for i in 0..50 {
        ws.send(Message::text(format!("text {i}"))).await.unwrap();
        let got = within("echo", ws.next()).await.unwrap().unwrap();
        assert_eq!(got, Message::text(format!("text {i}")));
    }
    // A message larger than a TLS record (16 KiB) and than a read batch.
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    ws.send(Message::binary(big.clone())).await.unwrap();
    let got = within("big echo", ws.next()).await.unwrap().unwrap();
    assert_eq!(got.into_data(), big);
    ws.close(None).await.unwrap();
    let closed = within("close", ws.next()).await;
    assert!(matches!(closed, Some(Ok(Message::Close(_))) | None));
}

#[tokio::test]
async fn hixie76_over_tls_is_told_a_wss_location() {
    let ca = TestCa::new();
    let gw = tls_gateway(&ca, &[]).await;
    let origin = format!("http://{}", gw.main);
    // The example handshake of draft-hixie-76, section 1.3.
    let request = format!(
        "GET /echo HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\n\
         Origin: {origin}\r\nSec-WebSocket-Key1: 4 @1  46546xW%0l 1 5\r\n\
         Sec-WebSocket-Key2: 12998 5 Y3 1  .P00\r\n\r\n^n:ds[4U",
        gw.main.port()
    );
    let mut tls = ca.connect(gw.main).await.unwrap();
    let head = exchange_on(&mut tls, &request, Some("8jKS'y:G*Co,Wxa-")).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let location = format!(
        "sec-websocket-location: wss://127.0.0.1:{}/echo",
        gw.main.port()
    );
    assert!(head.to_ascii_lowercase().contains(&location), "{head}");
    tls.write_all(b"\x00over TLS\xff").await.unwrap();
    let mut echoed = [0u8; 10];
    within("hixie echo", tls.read_exact(&mut echoed))
        .await
        .unwrap();
    assert_eq!(&echoed, b"\x00over TLS\xff");

    // Plain, the same port says ws://.
    let mut plain = TcpStream::connect(gw.main).await.unwrap();
    let head = exchange_on(&mut plain, &request, Some("8jKS'y:G*Co,Wxa-")).await;
    let location = format!(
        "sec-websocket-location: ws://127.0.0.1:{}/echo",
        gw.main.port()
    );
    assert!(head.to_ascii_lowercase().contains(&location), "{head}");
}

#[tokio::test]
// The handshake callback's error type is tungstenite's, large as it is.
#[allow(clippy::result_large_err)]
async fn a_relayed_client_on_tls_is_told_to_its_server_as_https() {
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    // A WebSocket server (tokio-tungstenite) that says which forwarded headers it was given.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut seen = String::new();
                let told = |req: &Request, res: Response| {
                    for name in ["x-forwarded-proto", "forwarded"] {
                        let value = req.headers().get(name).and_then(|v| v.to_str().ok());
                        seen.push_str(&format!("{name}={};", value.unwrap_or("-")));
                    }
                    Ok(res)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, told).await else {
                    return;
                };
                let _ = ws.send(Message::text(seen)).await;
            });
        }
    });
    let ca = TestCa::new();
    let route = format!("/app=ws://{upstream}/");
    let gw = tls_gateway(&ca, &["--route", &route]).await;

    let tls = ca.connect(gw.main).await.unwrap();
    let url = format!("wss://127.0.0.1:{}/app", gw.main.port());
    let (mut ws, _) = tokio_tungstenite::client_async(url, tls).await.unwrap();
    let told = within("the server's word", ws.next())
        .await
        .unwrap()
        .unwrap();
    let told = told.into_text().unwrap();
    assert!(told.starts_with("x-forwarded-proto=https;"), "{told}");
    assert!(told.contains(";proto=https;"), "{told}");

    // The same route, plain, on the same port.
    let (mut ws, _) = tokio_tungstenite::connect_async(gw.ws_url("/app"))
        .await
        .unwrap();
    let told = within("the server's word", ws.next())
        .await
        .unwrap()
        .unwrap();
    assert!(
        told.into_text()
            .unwrap()
            .starts_with("x-forwarded-proto=http;")
    );
}

#[tokio::test]
async fn a_sockjs_streaming_response_is_written_through_tls() {
    let ca = TestCa::new();
    let gw = tls_gateway(&ca, &[]).await;
    let s = common::http_stream::session();
    let mut stream = ca.connect(gw.main).await.unwrap();
    let open = format!("POST {s}/xhr_streaming HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    let opened = exchange_on(&mut stream, &open, Some("o\n")).await;
    assert!(opened.starts_with("HTTP/1.1 200"), "{opened}");
    for i in 0..20 {
        // Sent over TLS as well, on a connection of its own.
        let body = format!("[\"m{i}\"]");
        let send = format!(
            "POST {s}/xhr_send HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut sender = ca.connect(gw.main).await.unwrap();
        let answer = exchange_on(&mut sender, &send, None).await;
        assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
        let frame = format!("a[\"m{i}\"]\n");
        let got = exchange_on(&mut stream, "", Some(&frame)).await;
        assert!(got.contains(&frame), "{got}");
    }
}

#[tokio::test]
async fn tls_only_refuses_plain_http_but_answers_the_policy() {
    let ca = TestCa::new();
    let gw = tls_gateway(&ca, &["--tls-only"]).await;
    let plain = exchange(gw.main, &[get_request("/").as_bytes()], false).await;
    let plain = String::from_utf8_lossy(&plain);
    assert!(plain.starts_with("HTTP/1.1 400"), "{plain}");
    assert!(plain.contains("TLS only"), "{plain}");
    let policy = exchange(gw.main, &[POLICY_REQUEST], true).await;
    assert!(String::from_utf8_lossy(&policy).contains("<cross-domain-policy>"));
    let mut tls = ca.connect(gw.main).await.unwrap();
    let page = exchange_on(&mut tls, &get_request("/"), None).await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
}

#[tokio::test]
async fn reload_serves_the_new_certificate_and_keeps_open_connections() {
    let ca = TestCa::new();
    let gw = tls_gateway(&ca, &[]).await;
    let first = served(&ca.connect(gw.main).await.unwrap());
    let tls = ca.connect(gw.main).await.unwrap();
    let url = format!("wss://127.0.0.1:{}/echo", gw.main.port());
    let (mut ws, _) = tokio_tungstenite::client_async(url, tls).await.unwrap();

    // A new pair in the same files, then a reload.
    let next = ca.issue(gw.dir.path(), "server");
    assert_ne!(next.der, first);
    gw.reload.trigger();
    within("the new certificate", async {
        while served(&ca.connect(gw.main).await.unwrap()) != next.der {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    ws.send(Message::text("still here")).await.unwrap();
    let got = within("echo after reload", ws.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, Message::text("still here"));

    // A broken pair (another certificate's key) is refused: the one served stays.
    let other = ca.issue(gw.dir.path(), "other");
    std::fs::copy(&other.key, &next.key).unwrap();
    gw.reload.trigger();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(served(&ca.connect(gw.main).await.unwrap()), next.der);
}

#[tokio::test]
async fn bad_and_stalled_handshakes_are_closed_and_counted_and_others_go_on() {
    let ca = TestCa::new();
    let gw = tls_gateway(&ca, &["--handshake-timeout", "1s"]).await;
    let tls = ca.connect(gw.main).await.unwrap();
    let url = format!("wss://127.0.0.1:{}/echo", gw.main.port());
    let (mut ws, _) = tokio_tungstenite::client_async(url, tls).await.unwrap();

    // A record header that says TLS, then nonsense: an alert or a close, at once.
    let mut bad = TcpStream::connect(gw.main).await.unwrap();
    bad.write_all(b"\x16\x03\x01\x00\x05hello").await.unwrap();
    assert!(closed_within(&mut bad, Duration::from_secs(2)).await);
    // The start of a ClientHello, then silence: closed at the handshake timeout.
    let mut stalled = TcpStream::connect(gw.main).await.unwrap();
    stalled.write_all(b"\x16\x03").await.unwrap();
    assert!(!closed_within(&mut stalled, Duration::from_millis(500)).await);
    assert!(closed_within(&mut stalled, Duration::from_secs(3)).await);
    // A client that does not trust the certificate gives up in the handshake.
    let stranger = TestCa::new();
    assert!(stranger.connect(gw.main).await.is_err());

    ws.send(Message::text("unharmed")).await.unwrap();
    let got = within("echo", ws.next()).await.unwrap().unwrap();
    assert_eq!(got, Message::text("unharmed"));

    let metrics = get(gw.metrics, "/metrics").await.text();
    let count = |outcome: &str| {
        let line = format!("flashgate_tls_handshakes_total{{outcome=\"{outcome}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {line} in\n{metrics}"))
    };
    assert_eq!(count("ok"), 1, "{metrics}");
    assert_eq!(count("failed"), 2, "{metrics}");
    assert_eq!(count("timeout"), 1, "{metrics}");
    assert!(
        metrics.contains("flashgate_tls_handshake_seconds_count 4"),
        "{metrics}"
    );
}

#[test]
fn check_validates_the_pair() {
    let ca = TestCa::new();
    let dir = fixtures();
    let good = ca.issue(dir.path(), "good");
    let other = ca.issue(dir.path(), "other");
    let expired = ca.issue_for(dir.path(), "expired", &["localhost"], (2001, 2002));
    let nameless = ca.issue_for(dir.path(), "nameless", &[], (2020, 2100));
    let check = |cert: &std::path::Path, key: &std::path::Path| {
        let (cert, key) = (cert.display().to_string(), key.display().to_string());
        let config = config(dir.path(), &["--tls-cert", &cert, "--tls-key", &key]).unwrap();
        // The fixtures lack the third-party files: only what TLS finds matters here.
        let (report, problems) = flashgate::check(&config);
        let tls: Vec<String> = problems
            .into_iter()
            .filter(|p| p.starts_with("TLS: "))
            .collect();
        (report, tls)
    };
    let (report, problems) = check(&good.cert, &good.key);
    assert!(problems.is_empty(), "{problems:?}");
    assert!(
        report.contains("127.0.0.1") && report.contains("localhost"),
        "{report}"
    );
    let (_, problems) = check(&good.cert, &other.key);
    assert!(
        problems.iter().any(|p| p.contains("is not the key of")),
        "{problems:?}"
    );
    let (_, problems) = check(&expired.cert, &expired.key);
    assert!(
        problems.iter().any(|p| p.contains("expired")),
        "{problems:?}"
    );
    let (_, problems) = check(&nameless.cert, &nameless.key);
    assert!(
        problems.iter().any(|p| p.contains("names no host")),
        "{problems:?}"
    );
    let missing = dir.path().join("missing.pem");
    let (_, problems) = check(&missing, &good.key);
    assert!(
        problems.iter().any(|p| p.contains("cannot read")),
        "{problems:?}"
    );

    let half = config(
        dir.path(),
        &["--tls-cert", &good.cert.display().to_string()],
    );
    assert!(format!("{:#}", half.unwrap_err()).contains("needs --tls-key"));
    let only = config(dir.path(), &["--tls-only"]);
    assert!(format!("{:#}", only.unwrap_err()).contains("--tls-only needs"));
}
