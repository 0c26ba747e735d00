//! The client side of the wire: WebSocket handshakes and frames, written for speed (frames
//! are built once and copied; server frames are parsed in place and never allocated).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;

/// What the load generator talks to.
#[derive(Clone, Debug)]
pub enum Target {
    /// RFC 6455 WebSocket at this address and path (with query).
    Ws { addr: SocketAddr, path: String },
    /// Raw TCP: messages are fixed-size chunks of the byte stream.
    Tcp { addr: SocketAddr },
    /// hixie-76 WebSocket (draft-76: `0x00 text 0xFF` frames) at this address and path.
    Hixie76 { addr: SocketAddr, path: String },
    /// RFC 6455 WebSocket over TLS.
    Wss { addr: SocketAddr, path: String },
    /// A TLS handshake alone (`connect`: full handshakes per second).
    Tls { addr: SocketAddr },
}

impl Target {
    /// `ws://HOST:PORT/PATH` or `tcp://HOST:PORT`.
    pub fn parse(url: &str) -> anyhow::Result<Target> {
        let host_path = |rest: &str| -> anyhow::Result<(SocketAddr, String)> {
            let (host, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            let addr = host
                .parse()
                .with_context(|| format!("{url}: need an IP:PORT host"))?;
            Ok((addr, path.to_string()))
        };
        if let Some(rest) = url.strip_prefix("ws://") {
            let (addr, path) = host_path(rest)?;
            return Ok(Target::Ws { addr, path });
        }
        if let Some(rest) = url.strip_prefix("wss://") {
            let (addr, path) = host_path(rest)?;
            return Ok(Target::Wss { addr, path });
        }
        if let Some(rest) = url.strip_prefix("tls://") {
            let (addr, _) = host_path(rest)?;
            return Ok(Target::Tls { addr });
        }
        if let Some(rest) = url.strip_prefix("hixie76://") {
            let (addr, path) = host_path(rest)?;
            return Ok(Target::Hixie76 { addr, path });
        }
        if let Some(rest) = url.strip_prefix("tcp://") {
            return Ok(Target::Tcp {
                addr: rest
                    .parse()
                    .with_context(|| format!("{url}: need IP:PORT"))?,
            });
        }
        bail!(
            "{url}: expected ws://IP:PORT/PATH, wss://IP:PORT/PATH, hixie76://IP:PORT/PATH, \
             tcp://IP:PORT or tls://IP:PORT"
        )
    }

    pub fn addr(&self) -> SocketAddr {
        match self {
            Target::Ws { addr, .. }
            | Target::Tcp { addr }
            | Target::Hixie76 { addr, .. }
            | Target::Wss { addr, .. }
            | Target::Tls { addr } => *addr,
        }
    }

    /// Whether the connection speaks TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Target::Wss { .. } | Target::Tls { .. })
    }
}

/// A client connection over TLS.
pub type Tls = tokio_rustls::client::TlsStream<TcpStream>;

/// A TLS client trusting the certificates in the PEM file `ca` alone, offering ALPN
/// `http/1.1`, that never resumes a session: every connection is a full handshake, as a
/// new visitor's is.
pub fn tls_connector(ca: Option<&Path>) -> anyhow::Result<TlsConnector> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let Some(ca) = ca else {
        bail!("a wss:// or tls:// url needs --ca FILE (the server's CA, PEM)");
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).with_context(|| format!("{}", ca.display()))? {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Opens a TLS connection to `target` (`wss://` or `tls://`); for `wss://`, performs the
/// WebSocket handshake over it. Returns the stream and any bytes after the handshake.
pub async fn connect_tls(target: &Target, tls: &TlsConnector) -> anyhow::Result<(Tls, Vec<u8>)> {
    let stream = TcpStream::connect(target.addr()).await?;
    stream.set_nodelay(true)?;
    let name = rustls::pki_types::ServerName::IpAddress(target.addr().ip().into());
    let mut stream = tls.connect(name, stream).await?;
    match target {
        Target::Wss { addr, path } => {
            let leftover = ws_handshake(&mut stream, *addr, path).await?;
            Ok((stream, leftover))
        }
        _ => Ok((stream, Vec::new())),
    }
}

/// Opens a connection; for WebSocket, performs the handshake. Returns the stream and any
/// bytes that arrived after the handshake response.
pub async fn connect(target: &Target) -> anyhow::Result<(TcpStream, Vec<u8>)> {
    let mut stream = TcpStream::connect(target.addr()).await?;
    stream.set_nodelay(true)?;
    let (addr, path) = match target {
        Target::Tcp { .. } => return Ok((stream, Vec::new())),
        Target::Hixie76 { addr, path } => return hixie76_handshake(stream, *addr, path).await,
        Target::Ws { addr, path } => (addr, path),
        Target::Wss { .. } | Target::Tls { .. } => bail!("a TLS url: connect with connect_tls"),
    };
    let leftover = ws_handshake(&mut stream, *addr, path).await?;
    Ok((stream, leftover))
}

/// The RFC 6455 handshake on `stream`: the bytes that came after the server's answer.
async fn ws_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    addr: SocketAddr,
    path: &str,
) -> anyhow::Result<Vec<u8>> {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         User-Agent: flashgate-loadgen\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut buf = Vec::with_capacity(512);
    loop {
        let mut chunk = [0u8; 512];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed during the handshake");
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            if !buf.starts_with(b"HTTP/1.1 101") {
                bail!(
                    "handshake refused: {}",
                    String::from_utf8_lossy(&buf[..end.min(80)])
                );
            }
            return Ok(buf[end + 4..].to_vec());
        }
        if buf.len() > 8192 {
            bail!("handshake response too long");
        }
    }
}

/// The draft-76 handshake with the draft's own example keys, whose answer is known.
async fn hixie76_handshake(
    mut stream: TcpStream,
    addr: SocketAddr,
    path: &str,
) -> anyhow::Result<(TcpStream, Vec<u8>)> {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n\
         Origin: http://{addr}\r\nSec-WebSocket-Key1: 4 @1  46546xW%0l 1 5\r\n\
         Sec-WebSocket-Key2: 12998 5 Y3 1  .P00\r\n\r\n^n:ds[4U"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut buf = Vec::with_capacity(512);
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            if !buf.starts_with(b"HTTP/1.1 101") {
                bail!(
                    "handshake refused: {}",
                    String::from_utf8_lossy(&buf[..end.min(80)])
                );
            }
            if buf.len() >= end + 4 + 16 {
                let answer = &buf[end + 4..end + 20];
                if answer != b"8jKS'y:G*Co,Wxa-" {
                    bail!(
                        "a wrong handshake answer: {:?}",
                        String::from_utf8_lossy(answer)
                    );
                }
                return Ok((stream, buf[end + 20..].to_vec()));
            }
        }
        let mut chunk = [0u8; 512];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed during the handshake");
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 8192 {
            bail!("handshake response too long");
        }
    }
}

/// A hixie-76 text frame of `payload` (which must hold no 0xFF).
pub fn hixie76_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(payload.len() + 2);
    frame.push(0x00);
    frame.extend_from_slice(payload);
    frame.push(0xff);
    frame
}

/// The length of the complete hixie-76 text frame at the start of `buf`; an error for the
/// closing handshake or anything else.
pub fn parse_hixie76_frame(buf: &[u8]) -> anyhow::Result<Option<usize>> {
    match buf.first() {
        None => Ok(None),
        Some(0x00) => Ok(memchr::memchr(0xff, buf).map(|end| end + 1)),
        Some(0xff) => bail!("the server closed the connection"),
        Some(other) => bail!("unexpected hixie-76 frame type {other:#x}"),
    }
}

/// The mask every client frame of the load generator carries.
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// One masked client frame, built by the gateway's own codec.
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    flashgate::wire::client_frame(true, opcode, payload, MASK)
}

/// Writes `bytes` at `at` in the payload of `frame`, a client frame from `client_frame` whose
/// payload is `len` bytes, masked as the rest of it: a frame built once can carry a counter.
pub fn patch_payload(frame: &mut [u8], len: usize, at: usize, bytes: &[u8]) {
    let start = frame.len() - len + at;
    for (i, (dst, b)) in frame[start..start + bytes.len()]
        .iter_mut()
        .zip(bytes)
        .enumerate()
    {
        *dst = b ^ MASK[(at + i) % 4];
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// FIN bit.
    pub fin: bool,
    /// Opcode (0 continuation, 1 text, 2 binary, 8 close, 9 ping, 10 pong).
    pub opcode: u8,
    /// Where the payload starts.
    pub header: usize,
    /// Payload length.
    pub len: usize,
}

impl Frame {
    /// Header plus payload.
    pub fn total(&self) -> usize {
        self.header + self.len
    }
}

/// Parses the (unmasked) server frame at the start of `buf`, if it is complete.
pub fn parse_frame(buf: &[u8]) -> anyhow::Result<Option<Frame>> {
    let Some(header) = flashgate::wire::head_len(buf).filter(|&n| buf.len() >= n) else {
        return Ok(None);
    };
    let head = flashgate::wire::Header::parse(&buf[..header]);
    if head.mask.is_some() {
        bail!("the server sent a masked frame");
    }
    let frame = Frame {
        fin: head.fin,
        opcode: head.opcode,
        header,
        len: usize::try_from(head.len)?,
    };
    Ok((buf.len() >= frame.total()).then_some(frame))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patched_frame_is_the_frame_of_the_patched_payload() {
        for len in [10, 200] {
            let mut payload = vec![b'x'; len];
            let mut frame = client_frame(1, &payload);
            patch_payload(&mut frame, len, 3, b"12345");
            payload[3..8].copy_from_slice(b"12345");
            assert_eq!(frame, client_frame(1, &payload));
        }
    }

    #[test]
    fn hixie76_frames_are_found_whole_and_the_closing_handshake_is_an_error() {
        let mut two = hixie76_frame(b"abc");
        two.extend(hixie76_frame(b""));
        assert_eq!(parse_hixie76_frame(&two).unwrap(), Some(5));
        assert_eq!(parse_hixie76_frame(&two[5..]).unwrap(), Some(2));
        assert_eq!(parse_hixie76_frame(&two[..4]).unwrap(), None);
        assert_eq!(parse_hixie76_frame(&[]).unwrap(), None);
        assert!(parse_hixie76_frame(&[0xff, 0x00]).is_err());
        assert!(parse_hixie76_frame(&[0x80, 0x01, b'x']).is_err());
    }

    #[test]
    fn frames_round_trip_lengths() {
        for len in [0, 1, 125, 126, 65535, 65536, 70000] {
            let payload = vec![b'x'; len];
            let mut frame = client_frame(2, &payload);
            frame[1] &= 0x7f; // as if unmasked by a server: drop the mask bit and key
            let key_at = frame.len() - len - 4;
            frame.drain(key_at..key_at + 4);
            let parsed = parse_frame(&frame).unwrap().unwrap();
            assert_eq!(
                (parsed.opcode, parsed.len, parsed.total()),
                (2, len, frame.len())
            );
            assert!(parse_frame(&frame[..frame.len() - 1]).unwrap().is_none() || len == 0);
        }
    }
}
