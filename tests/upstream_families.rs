//! Upstream routes with every client family (RFC 6455 text and binary, web-socket-js,
//! hixie-76, each SockJS transport) against each upstream kind (`tcp://`,
//! `tcp+xmlsocket://`, `ws://`), through real servers started here: what the server reads, what the
//! client gets back, refusals, PROXY headers, and routes from a configuration file.
//! Bulk transfers and servers that end, reset or read slowly are in tests/upstream_flow.rs;
//! a side that stops reading, with the gateway's memory measured, in tests/upstream_memory.rs.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::family::{Client, FAMILIES, Family, Got, assert_close};
use common::upstream::{Echo, proxy_header_addrs, recording_echo, recording_ws_echo};
use common::*;

/// An upstream kind: how its server frames messages, and so what it reads and sends back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Tcp,
    XmlSocket,
    WebSocket,
}

const KINDS: [Kind; 3] = [Kind::Tcp, Kind::XmlSocket, Kind::WebSocket];

/// The kinds whose URL takes `?proxy-protocol=` (a WebSocket server's query is its own: its
/// PROXY header is set in the configuration file's `[route.upstream]`).
const TCP_KINDS: [Kind; 2] = [Kind::Tcp, Kind::XmlSocket];

/// What each client sends: non-ASCII, markup, a JSON-looking string, an empty message.
const MESSAGES: [&str; 4] = [
    "héllo wörld ☃ 𝄞",
    "<msg to=\"all\">ça va ?</msg>",
    "[\"x\"]",
    "",
];

impl Kind {
    /// A recording echo server of this kind.
    async fn echo(self, proxied: bool) -> Echo {
        match self {
            Kind::WebSocket => recording_ws_echo(proxied).await,
            _ => recording_echo(self == Kind::XmlSocket, proxied).await,
        }
    }

    /// The route's backend for the server at `addr`, with `query` after it.
    fn backend(self, addr: SocketAddr, query: &str) -> String {
        match self {
            Kind::Tcp => format!("tcp://{addr}{query}"),
            Kind::XmlSocket => format!("tcp+xmlsocket://{addr}{query}"),
            Kind::WebSocket => format!("ws://{addr}/{query}"),
        }
    }

    /// What the server reads for `messages`.
    fn wire(self, messages: &[&str]) -> Vec<u8> {
        let end: &[u8] = match self {
            Kind::Tcp | Kind::WebSocket => b"",
            Kind::XmlSocket => b"\0",
        };
        messages
            .iter()
            .flat_map(|m| [m.as_bytes(), end].concat())
            .collect()
    }

    /// Checks that `client` gets `messages` back from the echo: as bytes however the server
    /// cut them (`tcp://`), each as one text message (XMLSocket), or each as the message
    /// it sent (WebSocket).
    async fn echoed(self, client: &mut Client, messages: &[&str]) {
        match self {
            Kind::Tcp => {
                let want = self.wire(messages);
                let got = client.recv_len(want.len()).await;
                assert_eq!(got, want, "{:?}", client.family);
            }
            Kind::XmlSocket => {
                for message in messages {
                    let got = client.recv().await;
                    assert_eq!(got, Got::Text(message.to_string()), "{:?}", client.family);
                }
            }
            Kind::WebSocket => {
                for message in messages {
                    let want = match client.family {
                        Family::NativeBinary => Got::Binary(message.as_bytes().to_vec()),
                        _ => Got::Text(message.to_string()),
                    };
                    assert_eq!(client.recv().await, want, "{:?}", client.family);
                }
            }
        }
    }
}

/// Each family sends [`MESSAGES`] (one, then the others at once) and gets them back
/// through `kind`'s echo, which read exactly their bytes.
async fn every_family_through(kind: Kind) {
    let echo = kind.echo(false).await;
    let route = format!("/up={}", kind.backend(echo.addr, ""));
    let gw = TestGateway::start(&["--route", &route]).await;
    let messages = &MESSAGES;
    for family in FAMILIES {
        let before = echo.record.bytes().len();
        let mut client = family.connect(gw.main, "/up").await;
        client.send(messages[0]).await;
        kind.echoed(&mut client, &messages[..1]).await;
        for message in &messages[1..] {
            client.send(message).await;
        }
        kind.echoed(&mut client, &messages[1..]).await;
        let want = kind.wire(messages);
        let read = echo.record.wait_for(before + want.len()).await;
        assert_eq!(read[before..], want, "what the server read from {family:?}");
    }
}

#[tokio::test]
async fn every_family_through_a_tcp_echo() {
    every_family_through(Kind::Tcp).await;
}

#[tokio::test]
async fn every_family_through_an_xmlsocket_echo() {
    every_family_through(Kind::XmlSocket).await;
}

#[tokio::test]
async fn every_family_through_a_websocket_echo() {
    every_family_through(Kind::WebSocket).await;
}

/// A route for each kind, `/{kind:?}`, to the server at `addr`.
fn every_kind_to(addr: SocketAddr) -> String {
    let routes = KINDS.map(|kind| format!("/{kind:?}={}", kind.backend(addr, "")));
    routes.join(",")
}

/// Every family of every kind, at once, connects to its route of [`every_kind_to`] and is
/// closed: the closes.
async fn closes(gw: &TestGateway) -> Vec<(Family, (Option<u16>, String))> {
    let clients = KINDS.iter().flat_map(|kind| {
        FAMILIES.iter().map(move |family| async move {
            let route = format!("/{kind:?}");
            let mut client = family.connect(gw.main, &route).await;
            (*family, client.closed().await)
        })
    });
    futures_util::future::join_all(clients).await
}

#[tokio::test]
async fn every_family_is_told_an_unreachable_upstream_with_1011() {
    // A port nothing listens on: bound, then closed.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let gw = TestGateway::start(&["--route", &every_kind_to(addr)]).await;
    for (family, close) in closes(&gw).await {
        assert_close(family, close, 1011, "upstream unreachable: ");
    }
}

/// A listener whose queue is full and which never accepts: a connection to it is never
/// answered. The sockets that fill it are kept in the second value.
fn black_hole() -> (SocketAddr, Vec<socket2::Socket>) {
    use socket2::{Domain, Socket, Type};
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    listener
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let mut kept = vec![listener];
    loop {
        assert!(kept.len() < 64, "the listen queue never fills");
        let filler = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        match filler.connect_timeout(&addr.into(), Duration::from_millis(500)) {
            Ok(()) => kept.push(filler),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return (addr, kept),
            Err(e) => panic!("filling the listen queue: {e}"),
        }
    }
}

#[tokio::test]
async fn every_family_is_told_an_upstream_that_never_answers_after_the_connect_timeout() {
    let (addr, _kept) = black_hole();
    let timeout = Duration::from_secs(2);
    let routes = every_kind_to(addr);
    let gw = TestGateway::start(&["--route", &routes, "--handshake-timeout", "2s"]).await;
    let started = Instant::now();
    for (family, close) in closes(&gw).await {
        assert_close(
            family,
            close,
            1011,
            "upstream unreachable: connect timed out",
        );
    }
    assert!(started.elapsed() >= timeout, "not before the timeout");
}

/// Each family on a route with a PROXY header of `version` before `kind`'s echo: the
/// server reads the header first, naming the client's address and the gateway's, then the
/// client's messages.
async fn proxy_header_from_every_family(kind: Kind, version: &str) {
    let mut echo = kind.echo(true).await;
    let query = format!("?proxy-protocol={version}");
    let route = format!("/up={}", kind.backend(echo.addr, &query));
    let gw = TestGateway::start(&["--route", &route]).await;
    for family in FAMILIES {
        let mut client = family.connect(gw.main, "/up").await;
        let header = within("a PROXY header", echo.headers.recv()).await.unwrap();
        let v1 = header.starts_with(b"PROXY ");
        assert_eq!(v1, version == "v1", "{family:?}: {header:?}");
        let (from, to) = proxy_header_addrs(&header);
        assert_eq!((from, to), (client.addr, gw.main), "{family:?}");
        client.send("after the header").await;
        kind.echoed(&mut client, &["after the header"]).await;
    }
}

#[tokio::test]
async fn a_proxy_header_v1_names_every_familys_client() {
    for kind in TCP_KINDS {
        proxy_header_from_every_family(kind, "v1").await;
    }
}

#[tokio::test]
async fn a_proxy_header_v2_names_every_familys_client() {
    for kind in TCP_KINDS {
        proxy_header_from_every_family(kind, "v2").await;
    }
}

#[tokio::test]
async fn upstream_routes_from_a_configuration_file_relay_every_family() {
    // A route of each kind, with a PROXY header (v2) on all but the first and a small
    // response limit: the streaming transports' responses end and are reopened while the
    // relay goes on.
    let (mut echoes, mut toml) = (Vec::new(), String::new());
    for (i, kind) in KINDS.into_iter().enumerate() {
        let proxied = i > 0;
        let echo = kind.echo(proxied).await;
        let upstream = if proxied {
            "[route.upstream]\nproxy_protocol = \"v2\"\n"
        } else {
            ""
        };
        toml += &format!(
            "[[route]]\npath = \"/{kind:?}\"\nbackend = \"{}\"\n{upstream}\
             [route.sockjs]\nresponse_limit = 64\n\n",
            kind.backend(echo.addr, "")
        );
        echoes.push((kind, proxied, echo));
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), toml).unwrap();
    let path = file.path().display().to_string();
    let gw = TestGateway::start(&["--config", &path]).await;
    for family in FAMILIES {
        for (kind, proxied, echo) in &mut echoes {
            let mut client = family.connect(gw.main, &format!("/{kind:?}")).await;
            if *proxied {
                let header = within("a PROXY header", echo.headers.recv()).await.unwrap();
                assert_eq!(proxy_header_addrs(&header), (client.addr, gw.main));
            }
            for message in MESSAGES {
                client.send(message).await;
            }
            kind.echoed(&mut client, &MESSAGES).await;
        }
    }
    for (kind, _, echo) in &echoes {
        let want = kind.wire(&MESSAGES).repeat(FAMILIES.len());
        assert_eq!(echo.record.wait_for(want.len()).await, want, "{kind:?}");
    }
}

#[tokio::test]
async fn a_jsonp_poll_after_the_upstream_ended_calls_back_once_with_what_waited() {
    // A server that greets and ends its connection at once.
    let (gone, ended) = tokio::sync::oneshot::channel();
    let gone = std::sync::Mutex::new(Some(gone));
    let (addr, _) = common::upstream::server(move |mut tcp| {
        let gone = gone.lock().unwrap().take();
        async move {
            use tokio::io::AsyncWriteExt;
            tcp.write_all(b"bye").await.unwrap();
            drop(tcp);
            let _ = gone.map(|gone| gone.send(()));
        }
    })
    .await;
    let gw = TestGateway::start(&["--route", &format!("/tcp=tcp://{addr}")]).await;
    let s = format!("/tcp/000/{}", common::http_stream::rand_u16());
    let poll = || async {
        let target = format!("{s}/jsonp?c=cb");
        let poll = common::http_stream::Stream::open(gw.main, "GET", &target, b"").await;
        poll.body().await
    };
    assert_eq!(poll().await, "/**/cb(\"o\");\r\n");
    within("the server to end", ended).await.unwrap();
    // Time for the gateway to see the end: the session is closing, "bye" waiting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // sockjs-client's callback is gone once called: a second call in one script would
    // throw, and lose the frame it carried.
    let bye = "\"a[\\\"data:application/octet-stream;base64,Ynll\\\"]\"";
    assert_eq!(poll().await, format!("/**/cb({bye});\r\n"));
    let close = "\"c[1000,\\\"target closed\\\"]\"";
    assert_eq!(poll().await, format!("/**/cb({close});\r\n"));
    assert_eq!(
        poll().await,
        format!("/**/cb({close});\r\n"),
        "every later poll"
    );
}
