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

mod sockjs_http;

use sockjs_http::{Http, decode_frame};

use super::http_stream::rand_u16;
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

/// Checks a close: `code` and a reason holding `why`, as `family` can tell them
/// (hixie-76's close has neither).
pub fn assert_close(family: Family, got: (Option<u16>, String), code: u16, why: &str) {
    if family == Family::Hixie76 {
        return assert_eq!(got, (None, String::new()), "hixie-76's closing handshake");
    }
    assert_eq!(got.0, Some(code), "{family:?}: {}", got.1);
    assert!(got.1.contains(why), "{family:?}: {:?}", got.1);
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
    /// A SockJS session over HTTP.
    Http(Http),
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
                    // The address is the first request's, just below.
                    (Conn::Http(Http::new(gw, base)), gw)
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
                    let Conn::Http(http) = &mut client.conn else {
                        unreachable!()
                    };
                    let (first, addr) = http.frames(transport).await;
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
                (Conn::Http(http), Family::Sockjs(transport)) => {
                    http.send(transport, text).await;
                    Ok(())
                }
                (Conn::Http(_), _) => unreachable!(),
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
            Conn::Http(http) => {
                let Family::Sockjs(transport) = family else {
                    unreachable!()
                };
                let frames = http.frames(transport).await.0;
                frames.iter().flat_map(|f| decode_frame(f)).collect()
            }
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
