//! The real gateway on `127.0.0.1:0`, with fixture files in a temporary directory, and the
//! small clients the integration tests use: raw TCP, raw HTTP/1.1 and tokio-tungstenite.
#![allow(dead_code)] // each test file uses a part of this

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub mod family;
pub mod http_stream;
pub mod running;
pub mod scrape;
pub mod tls;
pub mod upstream;

use flashgate::config::Config;

/// A command for the built binary `path`, without this process's `FLASHGATE_*` variables
/// and log filter, so that only what a test sets reaches it.
pub fn binary(path: &str) -> std::process::Command {
    let mut command = std::process::Command::new(path);
    command.env_remove("RUST_LOG");
    for (name, _) in std::env::vars() {
        if name.starts_with("FLASHGATE_") {
            command.env_remove(name);
        }
    }
    command
}

/// Every wait in the tests is bounded by this, so a broken gateway fails a test, never hangs it.
pub const WAIT: Duration = Duration::from_secs(10);

pub const POLICY_REQUEST: &[u8] = b"<policy-file-request/>\0";
/// What sits next to the served directories; no request may ever return it.
pub const SECRET: &str = "top secret: never served";
pub const SWF: &[u8] = b"FWS\x0afake swf for tests";
pub const WEB_SOCKET_JS: &str = "/* web_socket.js fixture */";
pub const INDEX_HTML: &str = "<!doctype html><title>flashgate test page</title>";

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A test still running this long after starting its gateway is stuck somewhere no
/// [`within`] bounds: the test binary is stopped rather than left hanging.
pub const HUNG: Duration = Duration::from_secs(120);

/// Aborts the process if it is not dropped within [`HUNG`].
pub struct Watchdog(Option<std::sync::mpsc::Sender<()>>);

impl Watchdog {
    pub fn start() -> Watchdog {
        let test = std::thread::current()
            .name()
            .unwrap_or("a test")
            .to_string();
        let (done, wait) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(HUNG) {
                eprintln!("{test} hung for {HUNG:?}: aborting the test binary");
                std::process::abort();
            }
        });
        Watchdog(Some(done))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(done) = self.0.take() {
            let _ = done.send(());
        }
    }
}

/// Fails the test if `future` takes longer than [`WAIT`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// A directory laid out like a checkout: `web/`, `assets/`, `assets/vendor/` (without
/// `web_socket.min.js` and the hixie-76 build, to test the missing-file answers) and a secret
/// file beside them.
pub fn fixtures() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("web")).unwrap();
    std::fs::create_dir_all(root.join("assets/vendor")).unwrap();
    std::fs::write(root.join("secret.txt"), SECRET).unwrap();
    std::fs::write(root.join("web/index.html"), INDEX_HTML).unwrap();
    std::fs::write(root.join("assets/own.js"), "/* our own asset */").unwrap();
    std::fs::write(root.join("assets/vendor/WebSocketMain.swf"), SWF).unwrap();
    std::fs::write(root.join("assets/vendor/web_socket.js"), WEB_SOCKET_JS).unwrap();
    std::fs::write(root.join("assets/vendor/swfobject.js"), "/* swfobject */").unwrap();
    dir
}

/// A configuration as the command line would give it, with the fixture directories.
pub fn config(dir: &Path, extra: &[&str]) -> anyhow::Result<Config> {
    let web = dir.join("web");
    let assets = dir.join("assets");
    let mut argv: Vec<String> = vec![
        "flashgate".into(),
        "--web-dir".into(),
        web.display().to_string(),
        "--assets-dir".into(),
        assets.display().to_string(),
    ];
    argv.extend(extra.iter().map(|s| s.to_string()));
    let (args, given) = flashgate::args::try_parse_from(argv)?;
    Config::load(&args, &given)
}

/// The gateway, running in this test's runtime on ports chosen by the kernel.
pub struct TestGateway {
    pub main: SocketAddr,
    pub policy: SocketAddr,
    /// The metrics listener (`/metrics`, `/healthz`, `/readyz`).
    pub metrics: SocketAddr,
    pub dir: TempDir,
    /// Asks it to read its TLS certificate again, as SIGHUP does.
    pub reload: flashgate::Reload,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    _watchdog: Watchdog,
}

impl TestGateway {
    /// Starts with the fixtures and extra command-line options.
    pub async fn start(extra: &[&str]) -> TestGateway {
        TestGateway::start_in(fixtures(), extra).await
    }

    pub async fn start_in(dir: TempDir, extra: &[&str]) -> TestGateway {
        let config = config(dir.path(), extra).expect("valid test configuration");
        let main = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let policy = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (main_addr, policy_addr) = (main.local_addr().unwrap(), policy.local_addr().unwrap());
        let metrics_addr = metrics.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let listeners = flashgate::Listeners {
            main,
            policy: Some(policy),
            metrics: Some(metrics),
        };
        let reload = flashgate::Reload::default();
        let stop_when = async move {
            let _ = stopped.await;
        };
        let task = tokio::spawn(flashgate::run_with(
            listeners,
            config,
            stop_when,
            reload.clone(),
        ));
        TestGateway {
            main: main_addr,
            policy: policy_addr,
            metrics: metrics_addr,
            dir,
            reload,
            stop: Some(stop),
            task: Some(task),
            _watchdog: Watchdog::start(),
        }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Triggers a graceful shutdown and waits for `run` to return; gives how long it took.
    pub async fn shutdown(&mut self) -> Duration {
        let started = Instant::now();
        let _ = self.stop.take().expect("running").send(());
        let task = self.task.take().unwrap();
        within("run() to return after shutdown", task)
            .await
            .unwrap()
            .expect("run() returns Ok");
        started.elapsed()
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.main, path)
    }

    /// A WebSocket client as a native program makes it: no `Origin`, no `User-Agent`.
    pub async fn ws(&self, path: &str) -> Ws {
        self.ws_with(path, &[]).await
    }

    /// A WebSocket client with extra handshake headers.
    pub async fn ws_with(&self, path: &str, headers: &[(&str, &str)]) -> Ws {
        let request = self.ws_request(path, headers);
        let (ws, response) = within(
            "websocket handshake",
            tokio_tungstenite::connect_async(request),
        )
        .await
        .expect("handshake succeeds");
        assert_eq!(response.status(), 101);
        ws
    }

    pub fn ws_request(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> tokio_tungstenite::tungstenite::handshake::client::Request {
        let mut request = self.ws_url(path).into_client_request().unwrap();
        for (name, value) in headers {
            request.headers_mut().insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        request
    }

    /// A browser-like client: `Origin` of the gateway's own page and a `User-Agent`.
    pub async fn browser_ws(&self, path: &str) -> Ws {
        let origin = format!("http://{}", self.main);
        self.ws_with(path, &[("Origin", &origin), ("User-Agent", "test-browser")])
            .await
    }

    /// A web-socket-js (Flash) client: `Origin` and no `User-Agent`, as Flash writes it.
    pub async fn flash_ws(&self, path: &str) -> Ws {
        let origin = format!("http://{}", self.main);
        self.ws_with(path, &[("Origin", &origin)]).await
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Sends `request` in the given pieces, then reads until the server closes.
pub async fn exchange(addr: SocketAddr, pieces: &[&[u8]], half_close: bool) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    for piece in pieces {
        stream.write_all(piece).await.unwrap();
        stream.flush().await.unwrap();
        tokio::task::yield_now().await;
    }
    if half_close {
        stream.shutdown().await.unwrap();
    }
    read_to_close(&mut stream).await
}

/// Reads until EOF or a reset; a reset after data counts as the end.
pub async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    within("the server to close the connection", async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    out
}

/// Reads until the server ends the connection cleanly (FIN); a reset fails the test.
pub async fn read_to_eof(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    within("the server to end the connection", async {
        stream.read_to_end(&mut out).await
    })
    .await
    .unwrap_or_else(|e| panic!("the connection was reset, not closed: {e}"));
    out
}

/// True when the server has closed `stream` (EOF or reset) within `wait`; false when the
/// connection is still open and silent at the end of it.
pub async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(wait, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// The raw text of one HTTP/1.1 request without a body.
pub fn request(method: &str, target: &str, headers: &[(&str, &str)]) -> String {
    let mut request = format!("{method} {target} HTTP/1.1\r\nHost: test\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request
}

/// Reads one HTTP/1.1 response with a `Content-Length` (or none) off a connection that stays
/// open, for keep-alive tests. Bytes read past the response are dropped.
pub async fn read_response(stream: &mut TcpStream) -> Response {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    within("an HTTP response", async {
        loop {
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = parse_response(&raw[..end + 4]);
                let len: usize = head
                    .header("content-length")
                    .map_or(0, |v| v.parse().unwrap());
                if raw.len() >= end + 4 + len {
                    return parse_response(&raw[..end + 4 + len]);
                }
            }
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before a whole response: {raw:?}");
            raw.extend_from_slice(&buf[..n]);
        }
    })
    .await
}

/// An HTTP/1.1 response, as read off the wire.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one raw HTTP/1.1 request (`Connection: close` is added) and parses the answer.
/// `head` is true for a HEAD request: the answer has no body whatever its length says.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> Response {
    let mut request =
        format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let raw = exchange(addr, &[request.as_bytes()], false).await;
    parse_response(&raw)
}

pub async fn get(addr: SocketAddr, target: &str) -> Response {
    http(addr, "GET", target, &[]).await
}

pub fn parse_response(raw: &[u8]) -> Response {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP header end in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect::<Vec<_>>();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        if raw.is_empty() {
            return out; // only the head was read
        }
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..line_end]).unwrap().trim(), 16)
            .expect("chunk size");
        if size == 0 {
            return out;
        }
        let start = line_end + 2;
        out.extend_from_slice(&raw[start..start + size]);
        raw = &raw[start + size + 2..];
    }
}

/// The next data message (text or binary), answering pings on the way.
pub async fn next_message(ws: &mut Ws) -> Message {
    within("a message", async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(message)) => return message,
                other => panic!("expected a message, got {other:?}"),
            }
        }
    })
    .await
}

/// Reads until the server's close frame and returns it; data messages before it are counted.
pub async fn close_frame(ws: &mut Ws) -> (Option<CloseFrame>, usize) {
    within("a close frame", async {
        let mut messages = 0;
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return (frame, messages),
                Some(Ok(Message::Text(_) | Message::Binary(_))) => messages += 1,
                Some(Ok(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    })
    .await
}

pub async fn send_text(ws: &mut Ws, text: &str) {
    within("send", ws.send(Message::text(text))).await.unwrap();
}

/// A client that answers pings (tungstenite does while it reads) gets three of them over
/// several idle periods, with nothing else in between.
pub async fn three_pings(ws: &mut Ws) {
    within("three pings over several idle periods", async {
        for _ in 0..3 {
            match ws.next().await {
                Some(Ok(Message::Ping(_))) => {}
                other => panic!("a responsive idle client got {other:?}"),
            }
        }
    })
    .await;
}

/// [`three_pings`], and the client is still served afterwards (`ws` is on an echo route or
/// alone in a room).
pub async fn stays_through_three_pings(ws: &mut Ws) {
    three_pings(ws).await;
    send_text(ws, "still here").await;
    assert_eq!(next_message(ws).await, Message::text("still here"));
}

/// `count` messages `"{i}:{filler}"` from `publisher` at a chat's pace (each waits for the
/// publisher's own copy), read in order by `fast` meanwhile.
pub async fn publish_while_read(publisher: &mut Ws, fast: &mut Ws, count: usize, filler: &str) {
    let reader = async {
        for i in 0..count {
            let Message::Text(text) = next_message(fast).await else {
                panic!("message {i} is not text")
            };
            assert!(
                text.starts_with(&format!("{i}:")),
                "message {i} out of order"
            );
        }
    };
    let writer = async {
        for i in 0..count {
            let text = format!("{i}:{filler}");
            publisher.send(Message::text(&text)).await.unwrap();
            assert_eq!(next_message(publisher).await, Message::text(text));
        }
    };
    tokio::join!(reader, writer);
}

/// A masked client frame, built by the gateway's own codec.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    flashgate::wire::client_frame(fin, opcode, payload, [0x37, 0xfa, 0x21, 0x3d])
}

/// A WebSocket on `path` by hand: the socket, past the 101 answer.
pub async fn raw_ws(gw: &TestGateway, path: &str) -> TcpStream {
    raw_ws_to(gw.main, path).await
}

/// [`raw_ws`] to the gateway at `addr`.
pub async fn raw_ws_to(addr: SocketAddr, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let headers = [
        ("Host", "127.0.0.1"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    stream
        .write_all(request("GET", path, &headers).as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    within("the 101 answer", async {
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
    })
    .await;
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{:?}",
        String::from_utf8_lossy(&head)
    );
    stream
}

/// The next frame from the gateway: (opcode, payload).
pub async fn server_frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    within("a frame from the gateway", async {
        let mut head = [0u8; 2];
        stream.read_exact(&mut head).await.unwrap();
        assert_eq!(head[0] & 0x80, 0x80, "the gateway sends whole messages");
        assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
        let len = match head[1] & 0x7f {
            126 => {
                let mut n = [0u8; 2];
                stream.read_exact(&mut n).await.unwrap();
                u16::from_be_bytes(n) as usize
            }
            127 => {
                let mut n = [0u8; 8];
                stream.read_exact(&mut n).await.unwrap();
                u64::from_be_bytes(n) as usize
            }
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload).await.unwrap();
        (head[0] & 0x0f, payload)
    })
    .await
}

/// Publishes `count` numbered messages (`{i}:{body}`) from `publisher` as fast as it goes,
/// reading its own copies back meanwhile and checking their order.
pub async fn flood_reading_own_copies(publisher: &mut Ws, count: usize, body: &str) {
    let (mut sink, mut stream) = publisher.split();
    let writer = async {
        for i in 0..count {
            sink.send(Message::text(format!("{i}:{body}")))
                .await
                .unwrap();
        }
    };
    let reader = async {
        for i in 0..count {
            match stream.next().await {
                Some(Ok(Message::Text(text))) => assert!(text.starts_with(&format!("{i}:"))),
                other => panic!("the publisher's own copy {i}: {other:?}"),
            }
        }
    };
    within("the flood", async { tokio::join!(writer, reader) }).await;
}

/// Reads numbered messages (`{i}:…`, each checked by `check`) in order until a close frame:
/// how many came, and the frame.
pub async fn numbered_until_close(ws: &mut Ws, check: impl Fn(&str)) -> (usize, CloseFrame) {
    let mut received = 0;
    let frame = within("the close", async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    assert!(text.starts_with(&format!("{received}:")), "out of order");
                    check(&text);
                    received += 1;
                }
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(Message::Ping(_))) => {}
                other => panic!("expected messages then a close, got {other:?}"),
            }
        }
    })
    .await
    .expect("a close frame");
    (received, frame)
}

/// Fixtures with every vendor file present (as placeholders).
pub fn complete_fixtures() -> TempDir {
    let dir = fixtures();
    for file in flashgate::VENDOR_FILES {
        let path = dir.path().join("assets/vendor").join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "x").unwrap();
    }
    dir
}
