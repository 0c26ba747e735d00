//! flashgate against the SockJS reference server (sockjs-node 0.3.24, started by the test
//! with the services the protocol's suite expects): the same request sequences to both, and
//! the answers compared — status, the headers that matter, and bodies with entropy and dates
//! normalised. A difference fails the test unless it is listed here with why flashgate is
//! right.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::http_stream::Stream;
use common::*;

/// The reference server, stopped when dropped.
struct Reference {
    child: Child,
    addr: SocketAddr,
}

impl Reference {
    async fn start() -> Reference {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sockjs/peer");
        assert!(
            dir.join("node_modules/sockjs").is_dir(),
            "the reference server is not installed: run `npm ci` in {} (scripts/test does)",
            dir.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("node")
            .arg(dir.join("server.js"))
            .arg(port.to_string())
            .stdout(Stdio::null())
            .spawn()
            .expect("node, for the reference server");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        within("the reference server to listen", async {
            while tokio::net::TcpStream::connect(addr).await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        Reference { child, addr }
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request of a sequence: method, path under the server (`{s}` is the session's
/// path, made fresh per sequence), headers, body.
type Step = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

/// What is compared of an answer.
#[derive(Debug, PartialEq)]
struct Seen {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

/// The headers that matter to clients, normalised (content type without spaces, dates
/// dropped: only whether there is one).
const COMPARED: [&str; 10] = [
    "content-type",
    "cache-control",
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-max-age",
    "set-cookie",
    "allow",
    "expires",
];

async fn run(addr: SocketAddr, session: &str, steps: &[Step]) -> Vec<Seen> {
    let mut seen = Vec::new();
    for (method, path, headers, body) in steps {
        let target = path.replace("{s}", session);
        let stream =
            Stream::open_from("127.0.0.1", addr, method, &target, headers, body.as_bytes()).await;
        let mut compared = Vec::new();
        for name in COMPARED {
            if let Some(value) = stream.head.header(name) {
                let value = match name {
                    "expires" => "(a date)".to_string(),
                    "content-type" => value.replace(' ', "").to_ascii_lowercase(),
                    _ => value.to_string(),
                };
                compared.push((name.to_string(), value));
            }
        }
        let status = stream.head.status;
        let mut body = stream.body().await;
        if body.contains("\"entropy\"") {
            let info: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert!(info["entropy"].is_u64());
            let mut info = info;
            info["entropy"] = 0.into();
            body = info.to_string();
            // Key order is JSON's own business.
            body = serde_json::from_str::<serde_json::Value>(&body)
                .unwrap()
                .to_string();
        }
        if status == 404 {
            // A 404's body and headers are each server's own: clients see the status.
            compared.clear();
            body.clear();
        }
        seen.push(Seen {
            status,
            headers: compared,
            body,
        });
    }
    seen
}

/// Each sequence, to both servers; `ours` adjusts what the reference answered into what
/// flashgate answers where the two differ for a reason.
async fn compare(name: &str, steps: &[Step], ours: impl Fn(&mut [Seen])) {
    let reference = Reference::start().await;
    let gw = TestGateway::start(&["--config", suite_config()]).await;
    let session = format!("/000/{}", name.replace(' ', "_"));
    let mut theirs = run(reference.addr, &session, steps).await;
    let mine = run(gw.main, &session, steps).await;
    ours(&mut theirs);
    assert_eq!(
        mine, theirs,
        "{name}: flashgate (left) and the reference (right) differ"
    );
}

fn suite_config() -> &'static str {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/sockjs/protocol-suite.toml"
    )
}

/// Nothing differs.
fn same(_: &mut [Seen]) {}

/// The reference answers a client's error (500) without a content type; flashgate says it
/// is plain text, which is what the body is.
fn typed_errors(theirs: &mut [Seen]) {
    for seen in theirs.iter_mut().filter(|s| s.status == 500) {
        if !seen.headers.iter().any(|(n, _)| n == "content-type") {
            let typed = (
                "content-type".to_string(),
                "text/plain;charset=utf-8".to_string(),
            );
            seen.headers.insert(0, typed);
        }
    }
}

#[tokio::test]
async fn static_urls() {
    compare(
        "static",
        &[
            ("GET", "/echo", &[], ""),
            ("GET", "/echo/", &[], ""),
            ("GET", "/echo/info", &[("Origin", "http://a.example")], ""),
            (
                "OPTIONS",
                "/echo/info",
                &[
                    ("Origin", "http://a.example"),
                    ("Access-Control-Request-Method", "GET"),
                ],
                "",
            ),
            ("GET", "/disabled_websocket_echo/info", &[], ""),
            ("GET", "/cookie_needed_echo/info", &[], ""),
            ("GET", "/echo/a", &[], ""),
            ("GET", "/echo/iframe.htm", &[], ""),
        ],
        same,
    )
    .await;
}

#[tokio::test]
async fn xhr_polling() {
    compare(
        "xhr polling",
        &[
            (
                "POST",
                "/echo{s}/xhr",
                &[("Origin", "http://a.example")],
                "",
            ),
            (
                "POST",
                "/echo{s}/xhr_send",
                &[("Origin", "http://a.example")],
                "[\"a\",\"\\u2028\"]",
            ),
            ("POST", "/echo{s}/xhr", &[], ""),
            ("POST", "/echo{s}/xhr_send", &[], "[\"x"),
            ("POST", "/echo{s}/xhr_send", &[], ""),
            ("POST", "/echo/000/nobody/xhr_send", &[], "[\"a\"]"),
            (
                "OPTIONS",
                "/echo{s}/xhr",
                &[
                    ("Origin", "http://a.example"),
                    ("Access-Control-Request-Headers", "a, b"),
                ],
                "",
            ),
        ],
        typed_errors,
    )
    .await;
}

#[tokio::test]
async fn close_and_cookies() {
    compare(
        "close",
        &[
            ("POST", "/close{s}/xhr", &[], ""),
            ("POST", "/close{s}/xhr", &[], ""),
            ("GET", "/close{s}/jsonp?c=x", &[], ""),
            // Its own session id: the reference keeps one table of sessions for all its
            // services, so the same id on another service would find the closed session;
            // flashgate keeps sessions per route.
            (
                "POST",
                "/cookie_needed_echo/000/cookie/xhr",
                &[("Cookie", "JSESSIONID=abc")],
                "",
            ),
        ],
        same,
    )
    .await;
}

#[tokio::test]
async fn jsonp_and_errors() {
    compare(
        "jsonp",
        &[
            ("GET", "/echo{s}/jsonp?c=cb", &[], ""),
            (
                "POST",
                "/echo{s}/jsonp_send",
                &[("Content-Type", "application/x-www-form-urlencoded")],
                "d=%5B%22x%22%5D",
            ),
            (
                "POST",
                "/echo{s}/jsonp_send",
                &[("Content-Type", "text/plain")],
                "[\"y\"]",
            ),
            ("GET", "/echo{s}/jsonp?c=cb", &[], ""),
            (
                "POST",
                "/echo{s}/jsonp_send",
                &[("Content-Type", "application/x-www-form-urlencoded")],
                "p=p",
            ),
            ("GET", "/echo/a/a/jsonp", &[], ""),
            ("GET", "/echo/a/a/jsonp?c=a(", &[], ""),
        ],
        typed_errors,
    )
    .await;
}

#[tokio::test]
async fn streaming_transports_to_their_end() {
    // Each streaming transport on a session its service closes: the prelude, the open
    // frame and the close frame, then the response ends; later ones get the close frame.
    compare(
        "streaming",
        &[
            (
                "POST",
                "/close{s}/xhr_streaming",
                &[("Origin", "http://a.example")],
                "",
            ),
            ("GET", "/close{s}/eventsource", &[], ""),
            ("GET", "/close{s}/htmlfile?c=%63allback", &[], ""),
            ("GET", "/close/000/other/eventsource", &[], ""),
            ("GET", "/close/000/third/htmlfile?c=cb", &[], ""),
            ("GET", "/close/000/fourth/htmlfile", &[], ""),
        ],
        typed_errors,
    )
    .await;
}
