//! A raw HTTP/1.1 client that reads a response as it streams: its head, then one chunk at a
//! time, as SockJS's streaming transports send them.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::{Response, parse_response, within};

/// A response read as it streams: its head, then one chunk at a time.
pub struct Stream {
    pub tcp: TcpStream,
    pub head: Response,
    pub buf: Vec<u8>,
    pub chunked: bool,
}

impl Stream {
    /// Sends `method target` with `body` from `from` (an address of this machine) and reads
    /// the response's head.
    pub async fn open_from(
        from: &str,
        gw: SocketAddr,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Stream {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        let mut tcp = socket.connect(gw).await.unwrap();
        let mut request = format!(
            "{method} {target} HTTP/1.1\r\nHost: {gw}\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        tcp.write_all(request.as_bytes()).await.unwrap();
        tcp.write_all(body).await.unwrap();
        Stream::read_head(tcp, Vec::new()).await
    }

    /// Sends another request on the same connection, once this response is read, and
    /// reads its head.
    pub async fn next(self, method: &str, target: &str, body: &[u8]) -> Stream {
        let Stream { mut tcp, buf, .. } = self;
        assert!(buf.is_empty(), "bytes after the response: {buf:?}");
        let request = format!(
            "{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        tcp.write_all(body).await.unwrap();
        Stream::read_head(tcp, Vec::new()).await
    }

    async fn read_head(mut tcp: TcpStream, mut buf: Vec<u8>) -> Stream {
        let end = within("a response head", async {
            loop {
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    return end + 4;
                }
                let mut chunk = vec![0u8; 4096];
                let n = tcp.read(&mut chunk).await.unwrap();
                assert!(n > 0, "closed before a head");
                buf.extend_from_slice(&chunk[..n]);
            }
        })
        .await;
        let head = parse_response(&buf[..end]);
        let chunked = head
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"));
        buf.drain(..end);
        Stream {
            tcp,
            head,
            buf,
            chunked,
        }
    }

    pub async fn open(gw: SocketAddr, method: &str, target: &str, body: &[u8]) -> Stream {
        Stream::open_from("127.0.0.1", gw, method, target, &[], body).await
    }

    pub async fn fill(&mut self) -> bool {
        let mut chunk = vec![0u8; 65536];
        let n = self.tcp.read(&mut chunk).await.unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// The next chunk of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Option<String> {
        assert!(self.chunked, "not chunked: {:?}", self.head);
        within("a chunk", async {
            loop {
                if let Some(line) = self.buf.windows(2).position(|w| w == b"\r\n") {
                    let size = usize::from_str_radix(
                        std::str::from_utf8(&self.buf[..line]).unwrap().trim(),
                        16,
                    )
                    .unwrap();
                    if self.buf.len() >= line + 2 + size + 2 {
                        let data = self.buf[line + 2..line + 2 + size].to_vec();
                        self.buf.drain(..line + 2 + size + 2);
                        return (size > 0).then(|| String::from_utf8(data).unwrap());
                    }
                }
                if !self.fill().await {
                    return None;
                }
            }
        })
        .await
    }

    /// The whole body, to its end.
    pub async fn body(self) -> String {
        self.read_body().await.0
    }

    /// The whole body, to its end, and the connection for the next request.
    pub async fn read_body(mut self) -> (String, Stream) {
        if !self.chunked {
            let len: usize = self
                .head
                .header("content-length")
                .map_or(0, |v| v.parse().unwrap());
            while self.buf.len() < len {
                assert!(self.fill().await, "short body");
            }
            let body = String::from_utf8(self.buf.drain(..len).collect()).unwrap();
            return (body, self);
        }
        let mut out = String::new();
        while let Some(chunk) = self.chunk().await {
            out.push_str(&chunk);
        }
        (out, self)
    }
}

/// A polling or sending request's whole answer.
pub async fn post(gw: SocketAddr, target: &str, body: &str) -> (u16, String) {
    let stream = Stream::open(gw, "POST", target, body.as_bytes()).await;
    (stream.head.status, stream.body().await)
}

/// A gateway whose `/echo` has SockJS timings short enough to watch, with `extra` flags.
pub async fn quick_gateway(
    heartbeat: &str,
    disconnect: &str,
    limit: usize,
    extra: &[&str],
) -> (super::TestGateway, tempfile::NamedTempFile) {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let toml = format!(
        "[[route]]\npath = \"/echo\"\nbackend = \"echo\"\n[route.sockjs]\n\
         heartbeat = \"{heartbeat}\"\ndisconnect_delay = \"{disconnect}\"\nresponse_limit = {limit}\n"
    );
    std::io::Write::write_all(&mut file, toml.as_bytes()).unwrap();
    let path = file.path().display().to_string();
    let mut args = vec!["--config", path.as_str()];
    args.extend_from_slice(extra);
    (super::TestGateway::start(&args).await, file)
}

pub fn session() -> String {
    format!(
        "/echo/000/{}",
        std::process::id() as u64 * 1000 + rand_u16() as u64
    )
}

pub fn rand_u16() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
