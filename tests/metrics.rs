//! The metrics listener: what real clients do shows in `/metrics` (checked by Prometheus'
//! own `promtool`, and scraped by a real Prometheus server), `/healthz` answers, and
//! `/readyz` says what is not ready and why.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::scrape::{sample, until};
use common::*;
use futures_util::SinkExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The exposition as Prometheus asks for it: OpenMetrics.
async fn scrape_openmetrics(gw: &TestGateway) -> String {
    let mut conn = TcpStream::connect(gw.metrics).await.unwrap();
    let accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    let get = request("GET", "/metrics", &[("Accept", accept)]);
    conn.write_all(get.as_bytes()).await.unwrap();
    let res = read_response(&mut conn).await;
    assert_eq!(
        res.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    res.text()
}

/// `promtool check metrics` on `text`: its complaints, empty when it has none.
fn promtool(text: &str) -> String {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package) is installed");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "promtool: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[tokio::test]
async fn what_clients_do_is_counted_and_the_exposition_passes_promtool() {
    let gw = TestGateway::start(&[]).await;
    // Two policy requests on the master port, one on the main port, one that is not one.
    for addr in [gw.policy, gw.policy, gw.main] {
        let reply = exchange(addr, &[b"<policy-file-request/>\0"], false).await;
        assert!(reply.starts_with(b"<?xml"), "{reply:?}");
    }
    exchange(gw.policy, &[b"GET / HTTP/1.0\r\n\r\n"], false).await;
    // A native client and a web-socket-js one; a handshake from a page not allowed.
    let mut native = gw.ws("/echo").await;
    let mut flash = gw.flash_ws("/echo").await;
    let mut stranger = TcpStream::connect(gw.main).await.unwrap();
    let handshake = request(
        "GET",
        "/echo",
        &[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
            ("Origin", "http://elsewhere.example"),
        ],
    );
    stranger.write_all(handshake.as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut stranger).await.status, 403);

    // A SockJS session, opened by xhr-polling: the session counts, not its requests.
    for _ in 0..2 {
        let mut poll = TcpStream::connect(gw.main).await.unwrap();
        let open = request("POST", "/echo/000/metrics1/xhr", &[("Content-Length", "0")]);
        poll.write_all(open.as_bytes()).await.unwrap();
        assert_eq!(read_response(&mut poll).await.status, 200);
    }

    let text = until(&gw, "flashgate_sessions_open{transport=\"flash\"}", 1.0).await;
    for (name, value) in [
        ("flashgate_sessions_open{transport=\"rfc6455\"}", 1.0),
        ("flashgate_sessions_total{transport=\"rfc6455\"}", 1.0),
        ("flashgate_sessions_total{transport=\"flash\"}", 1.0),
        (
            "flashgate_sessions_total{transport=\"sockjs-xhr-polling\"}",
            1.0,
        ),
        (
            "flashgate_sessions_open{transport=\"sockjs-xhr-polling\"}",
            1.0,
        ),
        ("flashgate_sessions_open{transport=\"hixie76\"}", 0.0),
        (
            "flashgate_policy_requests_total{listener=\"policy\",outcome=\"served\"}",
            2.0,
        ),
        (
            "flashgate_policy_requests_total{listener=\"main\",outcome=\"served\"}",
            1.0,
        ),
        (
            "flashgate_policy_requests_total{listener=\"policy\",outcome=\"not_policy\"}",
            1.0,
        ),
        ("flashgate_upgrades_refused_total{reason=\"origin\"}", 1.0),
    ] {
        assert_eq!(sample(&text, name), Some(value), "{name} in\n{text}");
    }
    assert_eq!(promtool(&text), "", "promtool has no complaint");
    // OpenMetrics has the same samples; its counters' families drop `_total`.
    let openmetrics = scrape_openmetrics(&gw).await;
    assert!(openmetrics.ends_with("# EOF\n"), "{openmetrics}");
    assert!(openmetrics.contains("# TYPE flashgate_sessions counter\n"));
    assert_eq!(
        sample(
            &openmetrics,
            "flashgate_upgrades_refused_total{reason=\"origin\"}"
        ),
        Some(1.0)
    );

    // Sessions that end are no longer open, however they end.
    native.close(None).await.unwrap();
    drop(flash.send(tungstenite::Message::text("bye")).await);
    drop(flash);
    until(&gw, "flashgate_sessions_open{transport=\"rfc6455\"}", 0.0).await;
    let text = until(&gw, "flashgate_sessions_open{transport=\"flash\"}", 0.0).await;
    assert_eq!(
        sample(&text, "flashgate_sessions_total{transport=\"rfc6455\"}"),
        Some(1.0)
    );
}

#[tokio::test]
async fn healthz_answers_and_readyz_names_what_is_not_ready() {
    // A route whose upstream does not listen yet: a port just given back.
    let port = {
        let spare = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        spare.local_addr().unwrap().port()
    };
    let route = format!("/app=tcp://127.0.0.1:{port}");
    // Fixtures without the third-party files: not ready, and it says which.
    let bare = TestGateway::start(&["--route", &route]).await;
    let report = get(bare.metrics, "/readyz").await.text();
    assert!(report.contains("FAILED assets: missing in "), "{report}");
    assert!(report.contains("ruffle/ruffle.js"), "{report}");

    let gw = TestGateway::start_in(complete_fixtures(), &["--route", &route]).await;
    let health = get(gw.metrics, "/healthz").await;
    assert_eq!((health.status, health.text()), (200, "ok\n".to_string()));

    let unready = get(gw.metrics, "/readyz").await;
    assert_eq!(unready.status, 503);
    let report = unready.text();
    assert!(
        report.contains(&format!("ok listener main: listening on {}", gw.main)),
        "{report}"
    );
    assert!(report.contains("ok assets: in place"), "{report}");
    assert!(
        report.contains(&format!("FAILED upstream of /app: 127.0.0.1:{port}: ")),
        "{report}"
    );

    // A client of the route while its server is down: the attempt is counted as failed.
    let attempt = |gw: &TestGateway| {
        let url = gw.ws_url("/app");
        async move {
            if let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url).await {
                let _ = ws.close(None).await;
            }
        }
    };
    attempt(&gw).await;
    until(
        &gw,
        "flashgate_upstream_connects_total{route=\"/app\",outcome=\"failed\"}",
        1.0,
    )
    .await;

    // Once the upstream listens, the gateway is ready.
    let upstream = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let ready = get(gw.metrics, "/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert!(ready.text().contains(&format!(
        "ok upstream of /app: 127.0.0.1:{port} accepts connections"
    )));
    // And a client connects through it: an attempt that connected, both timed.
    attempt(&gw).await;
    let text = until(
        &gw,
        "flashgate_upstream_connects_total{route=\"/app\",outcome=\"ok\"}",
        1.0,
    )
    .await;
    assert_eq!(
        sample(
            &text,
            "flashgate_upstream_connect_seconds_count{route=\"/app\"}"
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(promtool(&text), "");
    drop(upstream);

    // Everything else on the listener is not there, and only GET is.
    assert_eq!(get(gw.metrics, "/").await.status, 404);
    let mut post = TcpStream::connect(gw.metrics).await.unwrap();
    post.write_all(request("POST", "/metrics", &[("Content-Length", "0")]).as_bytes())
        .await
        .unwrap();
    assert_eq!(read_response(&mut post).await.status, 405);
}

#[tokio::test]
async fn a_prometheus_server_scrapes_the_gateway() {
    let gw = TestGateway::start(&[]).await;
    let _native = gw.ws("/echo").await;
    let dir = tempfile::tempdir().unwrap();
    let web = {
        let spare = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        spare.local_addr().unwrap()
    };
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: flashgate\n    \
         static_configs:\n      - targets: ['{}']\n",
        gw.metrics
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let mut prometheus = KillOnDrop(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian's prometheus package) is installed"),
    );
    // Asks Prometheus what it scraped, until the session shows.
    let query = "/api/v1/query?query=flashgate_sessions_open%7Btransport%3D%22rfc6455%22%7D";
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut conn) = TcpStream::connect(web).await {
            conn.write_all(request("GET", query, &[("Connection", "close")]).as_bytes())
                .await
                .unwrap();
            let mut raw = Vec::new();
            let _ = conn.read_to_end(&mut raw).await;
            let body = String::from_utf8_lossy(&raw);
            if body.contains("\"job\":\"flashgate\"") {
                assert!(body.contains("\"1\"]"), "one open session scraped: {body}");
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "prometheus scraped nothing: {:?}",
            prometheus.0.try_wait()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A child process killed when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn rooms_members_and_sleeping_connections_are_gauges() {
    let gw = TestGateway::start(&["--hibernate-after", "200ms"]).await;
    let a = gw.ws("/chat").await;
    let b = gw.ws("/chat?room=other").await;
    let mut c = gw.ws("/chat").await;
    until(&gw, "flashgate_rooms{route=\"/chat\"}", 2.0).await;
    until(&gw, "flashgate_room_members{route=\"/chat\"}", 3.0).await;
    // Silent, all three fall asleep; their rooms still reach them.
    until(&gw, "flashgate_connections_asleep", 3.0).await;
    let mut d = gw.ws("/chat").await;
    send_text(&mut d, "to the sleepers").await;
    let got = next_message(&mut c).await.into_text().unwrap();
    assert_eq!(got.as_str(), "to the sleepers");
    until(&gw, "flashgate_room_members{route=\"/chat\"}", 4.0).await;
    for ws in [a, b, c, d] {
        drop(ws);
    }
    until(&gw, "flashgate_room_members{route=\"/chat\"}", 0.0).await;
    until(&gw, "flashgate_rooms{route=\"/chat\"}", 0.0).await;
    let text = until(&gw, "flashgate_connections_asleep", 0.0).await;
    assert_eq!(promtool(&text), "", "{text}");
}
