//! The client side of the wire: WebSocket handshakes and frames, written for speed (frames
//! are built once and copied; server frames are parsed in place and never allocated).

use std::net::SocketAddr;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the load generator talks to.
#[derive(Clone, Debug)]
pub enum Target {
    /// RFC 6455 WebSocket at this address and path (with query).
    Ws { addr: SocketAddr, path: String },
    /// Raw TCP: messages are fixed-size chunks of the byte stream.
    Tcp { addr: SocketAddr },
}

impl Target {
    /// `ws://HOST:PORT/PATH` or `tcp://HOST:PORT`.
    pub fn parse(url: &str) -> anyhow::Result<Target> {
        if let Some(rest) = url.strip_prefix("ws://") {
            let (host, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            let addr = host
                .parse()
                .with_context(|| format!("{url}: need an IP:PORT host"))?;
            return Ok(Target::Ws {
                addr,
                path: path.to_string(),
            });
        }
        if let Some(rest) = url.strip_prefix("tcp://") {
            return Ok(Target::Tcp {
                addr: rest
                    .parse()
                    .with_context(|| format!("{url}: need IP:PORT"))?,
            });
        }
        bail!("{url}: expected ws://IP:PORT/PATH or tcp://IP:PORT")
    }

    pub fn addr(&self) -> SocketAddr {
        match self {
            Target::Ws { addr, .. } | Target::Tcp { addr } => *addr,
        }
    }
}

/// Opens a connection; for WebSocket, performs the handshake. Returns the stream and any
/// bytes that arrived after the handshake response.
pub async fn connect(target: &Target) -> anyhow::Result<(TcpStream, Vec<u8>)> {
    let mut stream = TcpStream::connect(target.addr()).await?;
    stream.set_nodelay(true)?;
    let Target::Ws { addr, path } = target else {
        return Ok((stream, Vec::new()));
    };
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
            return Ok((stream, buf[end + 4..].to_vec()));
        }
        if buf.len() > 8192 {
            bail!("handshake response too long");
        }
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
