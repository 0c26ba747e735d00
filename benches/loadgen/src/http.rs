//! A minimal HTTP/1.1 client for SockJS's HTTP transports: requests are written into buffers
//! that are reused, responses are read one after another from a keep-alive connection, and
//! chunked bodies are decoded in place (no allocation per response, chunk or message).

use std::io::Write as _;
use std::net::SocketAddr;

use anyhow::{Context, bail};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// `http://IP:PORT/PATH`: the address and the path (without a trailing slash).
pub fn parse_url(url: &str) -> anyhow::Result<(SocketAddr, String)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("{url}: expected http://IP:PORT/PATH"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let addr = host
        .parse()
        .with_context(|| format!("{url}: need an IP:PORT host"))?;
    Ok((addr, path.trim_end_matches('/').to_string()))
}

/// Opens a connection with Nagle's algorithm off.
pub async fn connect(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The head of a `POST` of text to `path`, as a browser's XMLHttpRequest sends it (SockJS
/// servers read a text body as the payload), up to the body's length: built once, finished
/// by `post_head` for each request.
pub fn post_prefix(addr: SocketAddr, path: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain;charset=UTF-8\r\n\
         Content-Length: "
    )
    .into_bytes()
}

/// Puts the head of a `POST` (from `post_prefix`) whose body is `length` bytes in `out`.
pub fn post_head(out: &mut Vec<u8>, prefix: &[u8], length: usize) {
    out.clear();
    out.extend_from_slice(prefix);
    write!(out, "{length}\r\n\r\n").expect("writing to a Vec");
}

/// What reading a response has come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A response's head has arrived, with this status.
    Head(u16),
    /// The response has ended: its whole body is in `body()`.
    End,
    /// Everything that arrived is decoded: read more.
    More,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for a status line and headers.
    Head,
    /// A body of known length: bytes left.
    Length(u64),
    /// Chunked: a chunk-size line comes next.
    ChunkSize,
    /// Chunked: bytes left in the current chunk.
    ChunkData(u64),
    /// Chunked: the CRLF after a chunk's data.
    ChunkEnd,
    /// Chunked: trailer lines after the last chunk, up to an empty one.
    Trailer,
    /// A body that ends with the connection.
    UntilClose,
}

/// Responses from one connection, one after another. Bytes are read into one buffer; the
/// body decoded so far sits at its start (`body()`), what is not yet decoded after it, and
/// decoding moves data down over the chunk framing, in the same buffer.
pub struct Reader {
    buf: Vec<u8>,
    /// Decoded body: `buf[..body]`.
    body: usize,
    /// Not yet decoded: `buf[raw..filled]`.
    raw: usize,
    filled: usize,
    state: State,
    /// The current or last response said the connection closes after it.
    close: bool,
    /// The server closed the connection.
    eof: bool,
}

impl Reader {
    pub fn new(capacity: usize) -> Reader {
        Reader {
            buf: vec![0; capacity],
            body: 0,
            raw: 0,
            filled: 0,
            state: State::Head,
            close: false,
            eof: false,
        }
    }

    /// The body decoded so far (of the current response, if the caller consumes each
    /// response's body before the next one's head).
    pub fn body(&self) -> &[u8] {
        &self.buf[..self.body]
    }

    /// Drops the first `n` bytes of the body.
    pub fn consume(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        self.buf.copy_within(n..self.filled, 0);
        self.body -= n;
        self.raw -= n;
        self.filled -= n;
    }

    /// The last response asked for the connection to be closed (or the server closed it).
    pub fn must_reconnect(&self) -> bool {
        self.close || self.eof
    }

    /// The current response's body ends with the connection.
    pub fn ends_with_close(&self) -> bool {
        self.state == State::UntilClose
    }

    /// Reads what the socket holds. Cancel-safe: nothing is lost if the read is dropped.
    /// Returns 0 when the server has closed the connection.
    pub async fn read_from(&mut self, stream: &mut TcpStream) -> anyhow::Result<usize> {
        if self.raw > self.body {
            self.buf.copy_within(self.raw..self.filled, self.body);
            self.filled -= self.raw - self.body;
            self.raw = self.body;
        }
        if self.filled == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = stream.read(&mut self.buf[self.filled..]).await?;
        self.filled += n;
        self.eof |= n == 0;
        Ok(n)
    }

    /// Decodes what has arrived, up to the next head or end of a response.
    pub fn poll(&mut self) -> anyhow::Result<Event> {
        loop {
            let avail = self.filled - self.raw;
            match self.state {
                State::Head => {
                    if avail == 0 {
                        return Ok(Event::More);
                    }
                    return self.head();
                }
                State::Length(0) => {
                    self.state = State::Head;
                    return Ok(Event::End);
                }
                State::Length(left) | State::ChunkData(left) => {
                    let take = left.min(avail as u64) as usize;
                    if take == 0 {
                        return self.more();
                    }
                    self.buf.copy_within(self.raw..self.raw + take, self.body);
                    self.body += take;
                    self.raw += take;
                    let left = left - take as u64;
                    self.state = match self.state {
                        State::Length(_) => State::Length(left),
                        _ if left == 0 => State::ChunkEnd,
                        _ => State::ChunkData(left),
                    };
                }
                State::ChunkEnd => {
                    if avail < 2 {
                        return self.more();
                    }
                    if &self.buf[self.raw..self.raw + 2] != b"\r\n" {
                        bail!("a chunk's data is not followed by CRLF");
                    }
                    self.raw += 2;
                    self.state = State::ChunkSize;
                }
                State::ChunkSize => {
                    let Some(len) = self.line()? else {
                        return self.more();
                    };
                    let line = &self.buf[self.raw..self.raw + len];
                    let digits = line.split(|&b| b == b';').next().unwrap_or_default();
                    let size = std::str::from_utf8(digits)
                        .ok()
                        .and_then(|s| u64::from_str_radix(s.trim(), 16).ok())
                        .with_context(|| {
                            format!("bad chunk size {:?}", String::from_utf8_lossy(line))
                        })?;
                    self.raw += len + 2;
                    self.state = if size == 0 {
                        State::Trailer
                    } else {
                        State::ChunkData(size)
                    };
                }
                State::Trailer => {
                    let Some(len) = self.line()? else {
                        return self.more();
                    };
                    self.raw += len + 2;
                    if len == 0 {
                        self.state = State::Head;
                        return Ok(Event::End);
                    }
                }
                State::UntilClose => {
                    self.buf.copy_within(self.raw..self.filled, self.body);
                    self.body += avail;
                    self.raw = self.filled;
                    if self.eof {
                        self.state = State::Head;
                        return Ok(Event::End);
                    }
                    return Ok(Event::More);
                }
            }
        }
    }

    /// Nothing more can be decoded: more must be read, unless the server has gone.
    fn more(&self) -> anyhow::Result<Event> {
        if self.eof {
            bail!("the server closed the connection in the middle of a response");
        }
        Ok(Event::More)
    }

    /// The length of the CRLF-terminated line at `raw` (without its CRLF), if it has all
    /// arrived.
    fn line(&self) -> anyhow::Result<Option<usize>> {
        let rest = &self.buf[self.raw..self.filled];
        match rest.windows(2).position(|w| w == b"\r\n") {
            Some(i) => Ok(Some(i)),
            None if rest.len() > 1024 => bail!("a chunk line of more than 1 KiB"),
            None => Ok(None),
        }
    }

    fn head(&mut self) -> anyhow::Result<Event> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        let n = match response.parse(&self.buf[self.raw..self.filled])? {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial if self.filled - self.raw > 16 * 1024 => {
                bail!("a response head of more than 16 KiB")
            }
            httparse::Status::Partial => return self.more(),
        };
        let status = response.code.context("no status")?;
        let mut length = None;
        let mut chunked = false;
        self.close = response.version == Some(0);
        for h in response.headers.iter() {
            let value = std::str::from_utf8(h.value).unwrap_or_default();
            if h.name.eq_ignore_ascii_case("content-length") {
                length = Some(value.trim().parse::<u64>().context("bad content-length")?);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            } else if h.name.eq_ignore_ascii_case("connection") {
                let value = value.to_ascii_lowercase();
                if value.contains("close") {
                    self.close = true;
                } else if value.contains("keep-alive") {
                    self.close = false;
                }
            }
        }
        self.raw += n;
        self.state = if status == 204 || status == 304 || (100..200).contains(&status) {
            State::Length(0)
        } else if chunked {
            State::ChunkSize
        } else if let Some(length) = length {
            State::Length(length)
        } else {
            self.close = true;
            State::UntilClose
        };
        Ok(Event::Head(status))
    }

    /// The reader of a fresh connection.
    pub fn reset(&mut self) {
        self.body = 0;
        self.raw = 0;
        self.filled = 0;
        self.state = State::Head;
        self.close = false;
        self.eof = false;
    }

    /// Test helper: as if `bytes` had been read.
    #[cfg(test)]
    fn feed(&mut self, bytes: &[u8]) {
        if self.filled + bytes.len() > self.buf.len() {
            self.buf.resize(self.filled + bytes.len(), 0);
        }
        self.buf[self.filled..self.filled + bytes.len()].copy_from_slice(bytes);
        self.filled += bytes.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every event and the body at each End, fed `wire` `step` bytes at a time.
    fn decode(wire: &[u8], step: usize) -> (Vec<Event>, Vec<Vec<u8>>) {
        let mut reader = Reader::new(16);
        let (mut events, mut bodies) = (Vec::new(), Vec::new());
        for piece in wire.chunks(step) {
            reader.feed(piece);
            loop {
                let event = reader.poll().unwrap();
                if event == Event::More {
                    break;
                }
                if event == Event::End {
                    bodies.push(reader.body().to_vec());
                    reader.consume(reader.body().len());
                }
                events.push(event);
            }
        }
        (events, bodies)
    }

    #[test]
    fn chunked_and_empty_responses_one_after_another() {
        let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                     5\r\nhhhh\n\r\n2;x=y\r\no\n\r\n0\r\nTrailer: z\r\n\r\n\
                     HTTP/1.1 204 No Content\r\nContent-Type: text/plain\r\n\r\n\
                     HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\na\nb";
        for step in [1, 2, 3, 7, wire.len()] {
            let (events, bodies) = decode(wire, step);
            assert_eq!(
                events,
                [
                    Event::Head(200),
                    Event::End,
                    Event::Head(204),
                    Event::End,
                    Event::Head(200),
                    Event::End
                ],
                "step {step}"
            );
            assert_eq!(bodies, [&b"hhhh\no\n"[..], b"", b"a\nb"], "step {step}");
        }
    }

    #[test]
    fn a_body_without_length_ends_with_the_connection() {
        let mut reader = Reader::new(64);
        reader.feed(b"HTTP/1.1 200 OK\r\n\r\nabc");
        assert_eq!(reader.poll().unwrap(), Event::Head(200));
        assert_eq!(reader.poll().unwrap(), Event::More);
        reader.eof = true;
        assert_eq!(reader.poll().unwrap(), Event::End);
        assert_eq!(reader.body(), b"abc");
        assert!(reader.must_reconnect());
    }

    #[test]
    fn urls() {
        let (addr, path) = parse_url("http://127.0.0.1:80/echo/").unwrap();
        assert_eq!((addr.port(), path.as_str()), (80, "/echo"));
        assert!(parse_url("ws://127.0.0.1:80/echo").is_err());
    }
}
