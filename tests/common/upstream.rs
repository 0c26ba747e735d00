//! The upstream servers the relay tests start: TCP, XMLSocket and WebSocket echoes that
//! record what they read, an XMLSocket chat, the PROXY header's reader and parser, and a deterministic
//! byte stream to send and check in bulk.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};

use super::within;

/// A TCP server on its own port serving each connection with `serve`; the connections it
/// accepted are counted in the second value.
pub async fn server<F, Fut>(serve: F) -> (SocketAddr, Arc<AtomicUsize>)
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(tcp));
        }
    });
    (addr, accepted)
}

/// A TCP echo server.
pub async fn tcp_echo() -> (SocketAddr, Arc<AtomicUsize>) {
    server(|mut tcp| async move {
        let (mut read, mut write) = tcp.split();
        let _ = tokio::io::copy(&mut read, &mut write).await;
    })
    .await
}

/// The bytes a server read, all connections together, in order.
#[derive(Clone, Default)]
pub struct Record(Arc<Mutex<Vec<u8>>>);

impl Record {
    pub fn push(&self, bytes: &[u8]) {
        self.0.lock().unwrap().extend_from_slice(bytes);
    }

    /// What was read so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }

    /// Waits until at least `len` bytes were read, and gives them all.
    pub async fn wait_for(&self, len: usize) -> Vec<u8> {
        within("the server to read what was sent", async {
            loop {
                let bytes = self.bytes();
                if bytes.len() >= len {
                    return bytes;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
        .await
    }
}

/// An echo server of its own kind: what it read is recorded, and each connection's PROXY
/// header (when it expects one) is sent on `headers`.
pub struct Echo {
    pub addr: SocketAddr,
    pub record: Record,
    pub headers: mpsc::UnboundedReceiver<Vec<u8>>,
}

/// A recording server on its own port: each connection's PROXY header is read first when
/// `proxied` (and sent on `headers`), then `serve` serves it, recording into the record.
async fn recording<F, Fut>(proxied: bool, serve: F) -> Echo
where
    F: Fn(TcpStream, Record) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let record = Record::default();
    let (tx, headers) = mpsc::unbounded_channel();
    let (rec, serve) = (record.clone(), Arc::new(serve));
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let (rec, tx, serve) = (rec.clone(), tx.clone(), serve.clone());
            tokio::spawn(async move {
                if proxied {
                    let _ = tx.send(read_proxy_header(&mut tcp).await);
                }
                serve(tcp, rec).await;
            });
        }
    });
    Echo {
        addr,
        record,
        headers,
    }
}

/// Starts a recording WebSocket echo (tokio-tungstenite): each message back as it came,
/// its bytes recorded; `proxied` reads a PROXY header before the handshake.
pub async fn recording_ws_echo(proxied: bool) -> Echo {
    use futures_util::{SinkExt, StreamExt};
    recording(proxied, |tcp, rec| async move {
        let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
            return;
        };
        while let Some(Ok(message)) = ws.next().await {
            if message.is_text() || message.is_binary() {
                rec.push(&message.clone().into_data());
                if ws.send(message).await.is_err() {
                    return;
                }
            }
        }
    })
    .await
}

/// Starts a recording echo: `xmlsocket` echoes each whole NUL-ended message (and nothing
/// of one not ended yet), else every byte as it comes; `proxied` reads a PROXY header first.
pub async fn recording_echo(xmlsocket: bool, proxied: bool) -> Echo {
    recording(proxied, move |mut tcp, rec| async move {
        let (mut pending, mut chunk) = (Vec::new(), vec![0u8; 16 * 1024]);
        loop {
            let n = match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            rec.push(&chunk[..n]);
            let out = match xmlsocket {
                false => chunk[..n].to_vec(),
                true => {
                    pending.extend_from_slice(&chunk[..n]);
                    let whole = pending.iter().rposition(|&b| b == 0).map_or(0, |i| i + 1);
                    pending.drain(..whole).collect()
                }
            };
            if tcp.write_all(&out).await.is_err() {
                return;
            }
        }
    })
    .await
}

/// The PROXY header at the start of `tcp`, version 1 or 2, as it came.
pub async fn read_proxy_header(tcp: &mut TcpStream) -> Vec<u8> {
    let mut header = vec![0u8; 16];
    tcp.read_exact(&mut header).await.unwrap();
    if header.starts_with(b"PROXY ") {
        while !header.ends_with(b"\r\n") {
            header.push(tcp.read_u8().await.unwrap());
        }
        return header;
    }
    assert_eq!(
        &header[..12],
        b"\r\n\r\n\0\r\nQUIT\n",
        "a version 2 signature"
    );
    let len = u16::from_be_bytes([header[14], header[15]]) as usize;
    let mut rest = vec![0u8; len];
    tcp.read_exact(&mut rest).await.unwrap();
    header.extend(rest);
    header
}

/// The (client, gateway) addresses a PROXY header of either version names, checked to be
/// a well-formed TCP over IPv4 header.
pub fn proxy_header_addrs(header: &[u8]) -> (SocketAddr, SocketAddr) {
    if let Some(line) = header.strip_prefix(b"PROXY ") {
        let line = std::str::from_utf8(line).unwrap();
        let line = line
            .strip_suffix("\r\n")
            .expect("a v1 header ends with CRLF");
        let words: Vec<&str> = line.split(' ').collect();
        assert_eq!(words.len(), 5, "TCP4 and four addresses: {line:?}");
        assert_eq!(words[0], "TCP4");
        let ip = |w: &str| w.parse::<IpAddr>().unwrap();
        let port = |w: &str| w.parse::<u16>().unwrap();
        return (
            SocketAddr::new(ip(words[1]), port(words[3])),
            SocketAddr::new(ip(words[2]), port(words[4])),
        );
    }
    assert_eq!(&header[..12], b"\r\n\r\n\0\r\nQUIT\n", "a v2 signature");
    assert_eq!(
        &header[12..16],
        &[0x21, 0x11, 0, 12],
        "PROXY, TCP over IPv4, 12 bytes"
    );
    assert_eq!(header.len(), 28, "nothing past the addresses");
    let ip = |b: &[u8]| IpAddr::from([b[0], b[1], b[2], b[3]]);
    let port = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
    (
        SocketAddr::new(ip(&header[16..20]), port(&header[24..26])),
        SocketAddr::new(ip(&header[20..24]), port(&header[26..28])),
    )
}

/// An XMLSocket chat server: each NUL-ended message from one connection goes to every
/// connection, the sender's included.
pub async fn xmlsocket_chat() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, _) = broadcast::channel::<Vec<u8>>(64);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (tx, mut rx) = (tx.clone(), tx.subscribe());
            let (mut read, mut write) = tcp.into_split();
            tokio::spawn(async move {
                while let Ok(message) = rx.recv().await {
                    if write.write_all(&message).await.is_err() {
                        return;
                    }
                }
            });
            tokio::spawn(async move {
                let (mut buf, mut chunk) = (Vec::new(), [0u8; 1024]);
                while let Ok(n) = read.read(&mut chunk).await {
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.iter().position(|&b| b == 0) {
                        let message: Vec<u8> = buf.drain(..=end).collect();
                        let _ = tx.send(message);
                    }
                }
            });
        }
    });
    addr
}

/// A deterministic pseudo-random byte stream (xorshift64*): two with the same seed give
/// the same bytes, however they are cut.
#[derive(Clone)]
pub struct Bytes {
    state: u64,
    word: [u8; 8],
    used: usize,
}

impl Bytes {
    pub fn new(seed: u64) -> Bytes {
        Bytes {
            state: seed | 1,
            word: [0; 8],
            used: 8,
        }
    }

    /// The next number, for sizes.
    pub fn next_u64(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Fills `out` with the stream's next bytes.
    pub fn fill(&mut self, mut out: &mut [u8]) {
        let left = (8 - self.used).min(out.len());
        out[..left].copy_from_slice(&self.word[self.used..self.used + left]);
        self.used += left;
        out = &mut out[left..];
        let mut words = out.chunks_exact_mut(8);
        for word in &mut words {
            word.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = words.into_remainder();
        if !rest.is_empty() {
            self.word = self.next_u64().to_le_bytes();
            rest.copy_from_slice(&self.word[..rest.len()]);
            self.used = rest.len();
        }
    }

    /// The stream's next `n` bytes.
    pub fn take(&mut self, n: usize) -> Vec<u8> {
        let mut out = vec![0u8; n];
        self.fill(&mut out);
        out
    }
}

/// Checks bytes as they come against the stream they should be.
pub struct Checker {
    want: Bytes,
    pub seen: usize,
    buf: Vec<u8>,
}

impl Checker {
    pub fn new(seed: u64) -> Checker {
        Checker {
            want: Bytes::new(seed),
            seen: 0,
            buf: Vec::new(),
        }
    }

    /// Fails the test at the first byte of `got` that is not the stream's next.
    pub fn check(&mut self, got: &[u8]) {
        self.buf.resize(got.len(), 0);
        self.want.fill(&mut self.buf);
        if got != &self.buf[..] {
            let i = (0..got.len()).find(|&i| got[i] != self.buf[i]).unwrap();
            panic!("byte {} differs from what was sent", self.seen + i);
        }
        self.seen += got.len();
    }
}
