//! Every client family the gateway serves, behind one small interface, so that a test can
//! run the same exchange through each: connect to a route, send text, receive messages and
//! the close. RFC 6455 (tokio-tungstenite, as a native program or as web-socket-js), a raw
//! hixie-76 client, and every SockJS transport over raw HTTP.

use std::collections::VecDeque;
use std::net::SocketAddr;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use super::http_stream::{Stream, rand_u16};
use super::{Ws, parse_response, within};

/// The text a text-only client gets binary as.
pub const BINARY_PREFIX: &str = "data:application/octet-stream;base64,";

/// A SockJS transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sockjs {
    XhrStreaming,
    XhrPolling,
    EventSource,
    HtmlFile,
    JsonpPolling,
    WebSocket,
}

/// A client family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// RFC 6455 from a native program, sending text.
    Native,
    /// RFC 6455 from a native program, sending binary.
    NativeBinary,
    /// web-socket-js: RFC 6455 with an `Origin` and no `User-Agent`; text only.
    Flash,
    /// hixie-76: text only, and a close without a code.
    Hixie76,
    Sockjs(Sockjs),
}

/// Every family, each SockJS transport on its own.
pub const FAMILIES: [Family; 10] = [
    Family::Native,
    Family::NativeBinary,
    Family::Flash,
    Family::Hixie76,
    Family::Sockjs(Sockjs::XhrStreaming),
    Family::Sockjs(Sockjs::XhrPolling),
    Family::Sockjs(Sockjs::EventSource),
    Family::Sockjs(Sockjs::HtmlFile),
    Family::Sockjs(Sockjs::JsonpPolling),
    Family::Sockjs(Sockjs::WebSocket),
];

/// What a client received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Got {
    Text(String),
    Binary(Vec<u8>),
    /// The close: its code and reason (hixie-76 has neither).
    Closed(Option<u16>, String),
}

/// A connected client of some family.
pub struct Client {
    pub family: Family,
    /// The client's address on the connection the gateway took it from.
    pub addr: SocketAddr,
    conn: Conn,
    queue: VecDeque<Got>,
}

enum Conn {
    Ws(Box<Ws>),
    Hixie(TcpStream),
    /// A SockJS session over HTTP, its URL base and the receiving response that streams.
    Http {
        gw: SocketAddr,
        base: String,
        stream: Option<Stream>,
    },
}

impl Family {
    /// True when the client takes text only, and gets binary as [`BINARY_PREFIX`] text.
    pub fn text_only(self) -> bool {
        !matches!(self, Family::Native | Family::NativeBinary)
    }

    /// A client of `route` (e.g. `/tcp`) at the gateway `gw`, once open.
    pub async fn connect(self, gw: SocketAddr, route: &str) -> Client {
        within(&format!("{self:?} to connect"), self.open(gw, route)).await
    }

    async fn open(self, gw: SocketAddr, route: &str) -> Client {
        let (conn, addr) = match self {
            Family::Native | Family::NativeBinary => ws(gw, route, false).await,
            Family::Flash => ws(gw, route, true).await,
            Family::Hixie76 => {
                let mut tcp = TcpStream::connect(gw).await.unwrap();
                let addr = tcp.local_addr().unwrap();
                let head = format!(
                    "GET {route} HTTP/1.1\r\nHost: {gw}\r\nConnection: Upgrade\r\n\
                     Upgrade: WebSocket\r\nOrigin: http://{gw}\r\n\
                     Sec-WebSocket-Key1: 4 @1  46546xW%0l 1 5\r\n\
                     Sec-WebSocket-Key2: 12998 5 Y3 1  .P00\r\n\r\n^n:ds[4U"
                );
                tcp.write_all(head.as_bytes()).await.unwrap();
                let mut raw = Vec::new();
                while !raw.ends_with(b"\r\n\r\n") {
                    raw.push(tcp.read_u8().await.unwrap());
                }
                assert_eq!(parse_response(&raw).status, 101);
                let mut answer = [0u8; 16];
                tcp.read_exact(&mut answer).await.unwrap();
                assert_eq!(&answer, b"8jKS'y:G*Co,Wxa-");
                (Conn::Hixie(tcp), addr)
            }
            Family::Sockjs(transport) => {
                let id = std::process::id() as u64 * 100_000 + rand_u16() as u64;
                let base = format!("{route}/000/{id}");
                if transport == Sockjs::WebSocket {
                    ws(gw, &format!("{base}/websocket"), false).await
                } else {
                    let conn = Conn::Http {
                        gw,
                        base,
                        stream: None,
                    };
                    (conn, gw) // the address of the first request, just below
                }
            }
        };
        let mut client = Client {
            family: self,
            addr,
            conn,
            queue: VecDeque::new(),
        };
        if let Family::Sockjs(transport) = self {
            let first = match transport {
                Sockjs::WebSocket => vec![client.ws_text().await],
                _ => {
                    let (first, addr) = client.frames(transport).await;
                    client.addr = addr.expect("the first request's address");
                    first
                }
            };
            let mut first = first.into_iter();
            assert_eq!(first.next().as_deref(), Some("o"), "{self:?} opens with o");
            for frame in first {
                client.queue.extend(decode_frame(&frame));
            }
        }
        client
    }
}

/// A WebSocket to `path`, as web-socket-js makes it when `flash`, else as a native program.
async fn ws(gw: SocketAddr, path: &str, flash: bool) -> (Conn, SocketAddr) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{gw}{path}").into_client_request().unwrap();
    if flash {
        let origin = format!("http://{gw}").parse().unwrap();
        request.headers_mut().insert("Origin", origin);
    }
    let (ws, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("handshake succeeds");
    assert_eq!(response.status(), 101);
    let addr = match ws.get_ref() {
        tokio_tungstenite::MaybeTlsStream::Plain(tcp) => tcp.local_addr().unwrap(),
        _ => unreachable!("plain WebSocket"),
    };
    (Conn::Ws(Box::new(ws)), addr)
}

/// The messages and the close in one SockJS frame (`h` and `o` carry none).
fn decode_frame(frame: &str) -> Vec<Got> {
    match frame.split_at(1) {
        ("h" | "o", "") => Vec::new(),
        ("a", json) => serde_json::from_str::<Vec<String>>(json)
            .unwrap_or_else(|e| panic!("{e}: {frame:?}"))
            .into_iter()
            .map(Got::Text)
            .collect(),
        ("c", json) => {
            let (code, reason): (u16, String) = serde_json::from_str(json).unwrap();
            vec![Got::Closed(Some(code), reason)]
        }
        _ => panic!("not a SockJS frame: {frame:?}"),
    }
}

/// A JavaScript string literal's value (the JSON subset the gateway writes).
fn js_string(literal: &str) -> String {
    serde_json::from_str(literal).unwrap_or_else(|e| panic!("{e}: {literal}"))
}

impl Client {
    /// Sends `text`: as a binary message from [`Family::NativeBinary`], else as text.
    pub async fn send(&mut self, text: &str) {
        let what = format!("{:?} to send", self.family);
        within(&what, async {
            match (&mut self.conn, self.family) {
                (Conn::Ws(ws), Family::NativeBinary) => {
                    ws.send(Message::binary(text.as_bytes().to_vec())).await
                }
                (Conn::Ws(ws), Family::Sockjs(_)) => {
                    ws.send(Message::text(serde_json::to_string(&[text]).unwrap()))
                        .await
                }
                (Conn::Ws(ws), _) => ws.send(Message::text(text)).await,
                (Conn::Hixie(tcp), _) => {
                    let frame = [&[0x00], text.as_bytes(), &[0xFF]].concat();
                    tcp.write_all(&frame).await.unwrap();
                    Ok(())
                }
                (Conn::Http { gw, base, .. }, family) => {
                    let json = serde_json::to_string(&[text]).unwrap();
                    let (target, headers, body, status) =
                        match family == Family::Sockjs(Sockjs::JsonpPolling) {
                            true => {
                                let form = percent_encoding::utf8_percent_encode(
                                    &json,
                                    percent_encoding::NON_ALPHANUMERIC,
                                );
                                let form = format!("d={form}");
                                let kind = ("Content-Type", "application/x-www-form-urlencoded");
                                (format!("{base}/jsonp_send"), vec![kind], form, 200)
                            }
                            false => (format!("{base}/xhr_send"), vec![], json, 204),
                        };
                    let sent = Stream::open_from(
                        "127.0.0.1",
                        *gw,
                        "POST",
                        &target,
                        &headers,
                        body.as_bytes(),
                    )
                    .await;
                    assert_eq!(sent.head.status, status, "{target}");
                    Ok(())
                }
            }
        })
        .await
        .expect("the message is sent");
    }

    /// The next message, or the close.
    pub async fn recv(&mut self) -> Got {
        let what = format!("{:?} to receive", self.family);
        within(&what, async {
            loop {
                if let Some(got) = self.queue.pop_front() {
                    return got;
                }
                let got = self.read().await;
                self.queue.extend(got);
            }
        })
        .await
    }

    /// The next text message of a WebSocket.
    async fn ws_text(&mut self) -> String {
        let Conn::Ws(ws) = &mut self.conn else {
            unreachable!()
        };
        match ws.next().await {
            Some(Ok(Message::Text(text))) => text.to_string(),
            other => panic!("{:?}: expected text, got {other:?}", self.family),
        }
    }

    /// What comes next off the connection: any number of messages, or the close.
    async fn read(&mut self) -> Vec<Got> {
        let family = self.family;
        match &mut self.conn {
            Conn::Ws(ws) => loop {
                let got = match ws.next().await {
                    Some(Ok(Message::Text(text))) => Got::Text(text.to_string()),
                    Some(Ok(Message::Binary(bytes))) => Got::Binary(bytes.to_vec()),
                    Some(Ok(Message::Close(frame))) => match frame {
                        Some(f) => Got::Closed(Some(u16::from(f.code)), f.reason.to_string()),
                        None => Got::Closed(None, String::new()),
                    },
                    Some(Ok(_)) => continue,
                    other => panic!("{family:?}: expected a message, got {other:?}"),
                };
                return match (family, got) {
                    (Family::Sockjs(_), Got::Text(frame)) => decode_frame(&frame),
                    (Family::Sockjs(_), other) => panic!("not a SockJS frame: {other:?}"),
                    (_, got) => vec![got],
                };
            },
            Conn::Hixie(tcp) => match tcp.read_u8().await.unwrap() {
                0x00 => {
                    let mut text = Vec::new();
                    loop {
                        match tcp.read_u8().await.unwrap() {
                            0xFF => return vec![Got::Text(String::from_utf8(text).unwrap())],
                            b => text.push(b),
                        }
                    }
                }
                0xFF => {
                    assert_eq!(tcp.read_u8().await.unwrap(), 0x00, "the closing handshake");
                    vec![Got::Closed(None, String::new())]
                }
                other => panic!("hixie-76: not a frame: {other:#x}"),
            },
            Conn::Http { .. } => {
                let Family::Sockjs(transport) = family else {
                    unreachable!()
                };
                let frames = self.frames(transport).await.0;
                frames.iter().flat_map(|f| decode_frame(f)).collect()
            }
        }
    }

    /// The next SockJS frames over HTTP: a streaming response's next chunk (opening one when
    /// none is open, or the last one ended), or a polling request's answer; and the client's
    /// address on a request opened for it.
    async fn frames(&mut self, transport: Sockjs) -> (Vec<String>, Option<SocketAddr>) {
        let Conn::Http { gw, base, stream } = &mut self.conn else {
            unreachable!()
        };
        let (method, target) = match transport {
            Sockjs::XhrStreaming => ("POST", format!("{base}/xhr_streaming")),
            Sockjs::XhrPolling => ("POST", format!("{base}/xhr")),
            Sockjs::EventSource => ("GET", format!("{base}/eventsource")),
            Sockjs::HtmlFile => ("GET", format!("{base}/htmlfile?c=cb")),
            Sockjs::JsonpPolling => ("GET", format!("{base}/jsonp?c=cb")),
            Sockjs::WebSocket => unreachable!("a WebSocket"),
        };
        let mut opened = None;
        if matches!(transport, Sockjs::XhrPolling | Sockjs::JsonpPolling) {
            let poll = Stream::open(*gw, method, &target, b"").await;
            let addr = poll.tcp.local_addr().unwrap();
            assert_eq!(poll.head.status, 200, "{target}");
            let body = poll.body().await;
            let frames = match transport {
                Sockjs::XhrPolling => body.lines().map(str::to_string).collect(),
                // One call a frame (a closing session's last messages and its close).
                _ => body
                    .split_terminator(");\r\n")
                    .map(|call| js_string(call.strip_prefix("/**/cb(").expect("a jsonp call")))
                    .collect(),
            };
            return (frames, Some(addr));
        }
        loop {
            if stream.is_none() {
                let mut open = Stream::open(*gw, method, &target, b"").await;
                opened = Some(open.tcp.local_addr().unwrap());
                assert_eq!(open.head.status, 200, "{target}");
                open.chunk().await.expect("a prelude"); // the prelude, or the page's head
                *stream = Some(open);
            }
            let Some(chunk) = stream.as_mut().unwrap().chunk().await else {
                *stream = None; // past the response limit: the next one
                continue;
            };
            let frames = match transport {
                Sockjs::XhrStreaming => chunk.lines().map(str::to_string).collect(),
                Sockjs::EventSource => chunk
                    .split("\r\n\r\n")
                    .filter_map(|event| event.strip_prefix("data: "))
                    .map(str::to_string)
                    .collect(),
                _ => chunk
                    .split("</script>\r\n")
                    .filter(|s| !s.is_empty())
                    .map(|script| {
                        let call = script.strip_prefix("<script>\np(").expect("a script");
                        js_string(call.strip_suffix(");\n").expect("a call"))
                    })
                    .collect(),
            };
            return (frames, opened);
        }
    }

    /// The next message's bytes: [`Client::bytes_of`] it.
    pub async fn recv_bytes(&mut self) -> Vec<u8> {
        let got = self.recv().await;
        self.bytes_of(got)
    }

    /// A message's bytes: binary as it is, text by the text rule for a text-only client.
    pub fn bytes_of(&self, got: Got) -> Vec<u8> {
        match got {
            Got::Binary(bytes) => bytes,
            Got::Text(text) if self.family.text_only() => match text.strip_prefix(BINARY_PREFIX) {
                Some(b64) => base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap(),
                None => panic!("{:?}: text, not bytes: {text:?}", self.family),
            },
            other => panic!("{:?}: expected bytes, got {other:?}", self.family),
        }
    }

    /// Bytes from messages until `len` have come.
    pub async fn recv_len(&mut self, len: usize) -> Vec<u8> {
        let mut got = Vec::new();
        while got.len() < len {
            got.extend(self.recv_bytes().await);
        }
        got
    }

    /// Reads past any messages to the close: its code and reason.
    pub async fn closed(&mut self) -> (Option<u16>, String) {
        loop {
            if let Got::Closed(code, reason) = self.recv().await {
                return (code, reason);
            }
        }
    }
}
