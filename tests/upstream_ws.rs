//! WebSocket upstream routes (`ws://`, `wss://`): clients of each family relayed to a
//! tokio-tungstenite server started by each test, which records what it was told.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use http::HeaderMap;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use common::http_stream::{Stream, post, rand_u16};
use common::*;

/// What the upstream server saw of one client.
#[derive(Debug)]
enum Seen {
    /// Its handshake: the request line's target and the headers.
    Hello(String, HeaderMap),
    /// Its close frame, when the connection ended.
    Closed(Option<CloseFrame>),
}

/// How the test server answers handshakes.
#[derive(Clone, Copy)]
enum Answer {
    /// 101, choosing `chat.v1` when it is offered.
    Accept,
    /// 403.
    Refuse,
}

/// Serves one upgraded client: echoes, and obeys `close:CODE:REASON`, `binary:TEXT` and
/// `drop` (the connection is dropped without a close frame).
async fn serve<S>(mut ws: tokio_tungstenite::WebSocketStream<S>, seen: mpsc::Sender<Seen>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    while let Some(Ok(message)) = ws.next().await {
        let reply = match &message {
            Message::Text(text) if text.starts_with("close:") => {
                let mut parts = text.splitn(3, ':').skip(1);
                let code: u16 = parts.next().unwrap().parse().unwrap();
                let reason = parts.next().unwrap_or("").to_string();
                let frame = CloseFrame {
                    code: CloseCode::from(code),
                    reason: reason.into(),
                };
                let _ = ws.close(Some(frame)).await;
                // The gateway's reply finishes the close handshake.
                while let Some(Ok(message)) = ws.next().await {
                    if let Message::Close(reply) = message {
                        let _ = seen.send(Seen::Closed(reply)).await;
                    }
                }
                return;
            }
            Message::Text(text) if text.as_str() == "drop" => return,
            Message::Text(text) if text.starts_with("binary:") => {
                Message::binary(text.as_bytes()[7..].to_vec())
            }
            Message::Text(_) | Message::Binary(_) => message.clone(),
            Message::Close(frame) => {
                let _ = seen.send(Seen::Closed(frame.clone())).await;
                continue;
            }
            _ => continue,
        };
        if ws.send(reply).await.is_err() {
            return;
        }
    }
}

/// The handshake callback: records the request and answers as `answer` says. (Its error
/// type is tungstenite's, large as it is.)
#[allow(clippy::result_large_err)]
fn callback(
    answer: Answer,
    seen: mpsc::Sender<Seen>,
) -> impl FnOnce(&Request, Response) -> Result<Response, ErrorResponse> {
    move |req: &Request, mut res: Response| {
        let target = req.uri().to_string();
        let _ = seen.try_send(Seen::Hello(target, req.headers().clone()));
        if let Answer::Refuse = answer {
            let mut refused = ErrorResponse::new(Some("no".into()));
            *refused.status_mut() = http::StatusCode::FORBIDDEN;
            return Err(refused);
        }
        let offered = req
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if offered.split(',').any(|p| p.trim() == "chat.v1") {
            let chosen = http::HeaderValue::from_static("chat.v1");
            res.headers_mut().insert("sec-websocket-protocol", chosen);
        }
        Ok(res)
    }
}

/// A WebSocket server on its own port; what it sees comes on the channel.
async fn upstream(answer: Answer) -> (SocketAddr, mpsc::Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let seen = tx.clone();
            tokio::spawn(async move {
                let accepted =
                    tokio_tungstenite::accept_hdr_async(tcp, callback(answer, seen.clone())).await;
                if let Ok(ws) = accepted {
                    serve(ws, seen).await;
                }
            });
        }
    });
    (addr, rx)
}

async fn hello(seen: &mut mpsc::Receiver<Seen>) -> (String, HeaderMap) {
    match within("the upstream's handshake", seen.recv()).await {
        Some(Seen::Hello(target, headers)) => (target, headers),
        other => panic!("expected a handshake, got {other:?}"),
    }
}

async fn closed(seen: &mut mpsc::Receiver<Seen>) -> Option<CloseFrame> {
    match within("the upstream's close", seen.recv()).await {
        Some(Seen::Closed(frame)) => frame,
        other => panic!("expected a close, got {other:?}"),
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

fn local_addr(ws: &Ws) -> SocketAddr {
    match ws.get_ref() {
        tokio_tungstenite::MaybeTlsStream::Plain(tcp) => tcp.local_addr().unwrap(),
        _ => unreachable!("the tests speak plain WebSocket"),
    }
}

#[tokio::test]
async fn a_websocket_upstream_relays_text_and_binary_and_learns_who_the_client_is() {
    let (addr, mut seen) = upstream(Answer::Accept).await;
    let route = format!("/app=ws://{addr}/game?v=2");
    let gw = TestGateway::start(&["--route", &route, "--allow-origin", "*"]).await;
    let request = gw.ws_request(
        "/app?token=abc",
        &[
            ("Origin", "http://legacy.example"),
            ("User-Agent", "test-browser"),
            ("Sec-WebSocket-Protocol", "chat.v2, chat.v1"),
            ("Cookie", "sid=secret"),
        ],
    );
    let (mut ws, response) = within("handshake", tokio_tungstenite::connect_async(request))
        .await
        .unwrap();
    // The server's choice of subprotocol is the client's answer.
    assert_eq!(
        header(response.headers(), "sec-websocket-protocol"),
        Some("chat.v1")
    );
    let (target, headers) = hello(&mut seen).await;
    assert_eq!(target, "/game?v=2&token=abc");
    let client = local_addr(&ws);
    assert_eq!(header(&headers, "x-forwarded-for"), Some("127.0.0.1"));
    let forwarded = format!("for=\"{client}\";proto=http;host=\"{}\"", gw.main);
    assert_eq!(header(&headers, "forwarded"), Some(forwarded.as_str()));
    let host = gw.main.to_string();
    assert_eq!(header(&headers, "x-forwarded-host"), Some(host.as_str()));
    assert_eq!(header(&headers, "origin"), Some("http://legacy.example"));
    assert_eq!(header(&headers, "x-flashgate-transport"), Some("rfc6455"));
    assert_eq!(
        header(&headers, "sec-websocket-protocol"),
        Some("chat.v2, chat.v1")
    );
    assert_eq!(
        header(&headers, "cookie"),
        None,
        "cookies only when the route says"
    );

    send_text(&mut ws, "héllo").await;
    assert_eq!(next_message(&mut ws).await, Message::text("héllo"));
    ws.send(Message::binary(vec![0u8, 255, 7])).await.unwrap();
    assert_eq!(
        next_message(&mut ws).await,
        Message::binary(vec![0u8, 255, 7])
    );
    // A burst keeps its order.
    for i in 0..200 {
        ws.feed(Message::text(format!("m{i}"))).await.unwrap();
    }
    ws.flush().await.unwrap();
    for i in 0..200 {
        assert_eq!(next_message(&mut ws).await, Message::text(format!("m{i}")));
    }
}

#[tokio::test]
async fn close_codes_and_reasons_pass_through_both_ways() {
    let (addr, mut seen) = upstream(Answer::Accept).await;
    let gw = TestGateway::start(&["--route", &format!("/app=ws://{addr}/")]).await;

    // The client's.
    let mut ws = gw.ws("/app").await;
    hello(&mut seen).await;
    let bye = CloseFrame {
        code: CloseCode::from(4001),
        reason: "bye for now".into(),
    };
    ws.close(Some(bye.clone())).await.unwrap();
    assert_eq!(closed(&mut seen).await, Some(bye));

    // The server's.
    let mut ws = gw.ws("/app").await;
    hello(&mut seen).await;
    send_text(&mut ws, "close:4002:come back later").await;
    let (frame, _) = close_frame(&mut ws).await;
    let frame = frame.expect("a close frame");
    assert_eq!(
        (u16::from(frame.code), frame.reason.as_str()),
        (4002, "come back later")
    );
    // And the server hears the gateway's reply, with its code (RFC 6455 5.5.1).
    let reply = closed(&mut seen).await.expect("a close reply");
    assert_eq!(u16::from(reply.code), 4002);

    // A client that just goes: 1001.
    let ws = gw.ws("/app").await;
    hello(&mut seen).await;
    drop(ws);
    let frame = closed(&mut seen).await.expect("a close frame");
    assert_eq!(frame.code, CloseCode::Away);
}

#[tokio::test]
async fn text_only_clients_reach_a_websocket_upstream_as_their_family() {
    let (addr, mut seen) = upstream(Answer::Accept).await;
    let gw = TestGateway::start(&["--route", &format!("/app=ws://{addr}/")]).await;

    let mut flash = gw.flash_ws("/app").await;
    let (_, headers) = hello(&mut seen).await;
    assert_eq!(header(&headers, "x-flashgate-transport"), Some("flash"));
    send_text(&mut flash, "from flash").await;
    assert_eq!(next_message(&mut flash).await, Message::text("from flash"));
    send_text(&mut flash, "binary:hi").await;
    assert_eq!(
        next_message(&mut flash).await,
        Message::text("data:application/octet-stream;base64,aGk=")
    );

    let s = format!("/app/000/{}", rand_u16());
    let mut stream = Stream::open(gw.main, "POST", &format!("{s}/xhr_streaming"), b"").await;
    stream.chunk().await.unwrap(); // the prelude
    assert_eq!(stream.chunk().await.unwrap(), "o\n");
    let (target, headers) = hello(&mut seen).await;
    assert_eq!(target, "/", "SockJS's own query is not the server's");
    assert_eq!(
        header(&headers, "x-flashgate-transport"),
        Some("sockjs-xhr-streaming")
    );
    assert_eq!(
        post(gw.main, &format!("{s}/xhr_send"), "[\"a\",\"é\"]")
            .await
            .0,
        204
    );
    let mut got = String::new();
    while !got.contains("\"é\"") {
        got.push_str(&stream.chunk().await.unwrap());
    }
    assert_eq!(got, "a[\"a\"]\na[\"é\"]\n");
    // The server's close code reaches the SockJS client in its close frame.
    let close = "[\"close:4003:gone\"]";
    assert_eq!(post(gw.main, &format!("{s}/xhr_send"), close).await.0, 204);
    assert_eq!(stream.chunk().await.unwrap(), "c[4003,\"gone\"]\n");
}

#[tokio::test]
async fn a_refusing_or_vanishing_upstream_closes_the_client_with_1011_and_why() {
    let (addr, mut seen) = upstream(Answer::Refuse).await;
    let gw = TestGateway::start(&["--route", &format!("/app=ws://{addr}/")]).await;
    let mut ws = gw.ws("/app").await;
    hello(&mut seen).await;
    let (frame, _) = close_frame(&mut ws).await;
    let frame = frame.unwrap();
    assert_eq!(frame.code, CloseCode::Error);
    assert_eq!(
        frame.reason.as_str(),
        "upstream unreachable: it answered 403 Forbidden"
    );

    // Nothing listening.
    let gone = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = gone.local_addr().unwrap().port();
    drop(gone);
    let gw = TestGateway::start(&["--route", &format!("/app=ws://127.0.0.1:{port}/")]).await;
    let mut ws = gw.ws("/app").await;
    let (frame, _) = close_frame(&mut ws).await;
    let frame = frame.unwrap();
    assert_eq!(frame.code, CloseCode::Error);
    assert!(
        frame.reason.starts_with("upstream unreachable: "),
        "{frame:?}"
    );

    // Gone mid-session, without a close frame: the client hears of it at once.
    let (addr, mut seen) = upstream(Answer::Accept).await;
    let gw = TestGateway::start(&["--route", &format!("/app=ws://{addr}/")]).await;
    let mut ws = gw.ws("/app").await;
    hello(&mut seen).await;
    send_text(&mut ws, "still there").await;
    assert_eq!(next_message(&mut ws).await, Message::text("still there"));
    send_text(&mut ws, "drop").await;
    let (frame, _) = close_frame(&mut ws).await;
    let frame = frame.unwrap();
    assert_eq!(frame.code, CloseCode::Error);
    assert!(
        frame.reason.starts_with("upstream connection lost"),
        "{frame:?}"
    );
}

/// A certificate authority made for one test, and a server certificate for `localhost`.
fn test_ca() -> (String, rustls::ServerConfig) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()).into();
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], der)
        .unwrap();
    (ca.pem(), server)
}

#[tokio::test]
async fn a_wss_upstream_from_the_config_file_trusts_its_ca_and_gets_the_cookies_it_asked_for() {
    let (ca_pem, server) = test_ca();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, mut seen) = mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, seen) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let answer = callback(Answer::Accept, seen.clone());
                if let Ok(ws) = tokio_tungstenite::accept_hdr_async(tls, answer).await {
                    serve(ws, seen).await;
                }
            });
        }
    });
    let dir = fixtures();
    let ca_file = dir.path().join("upstream-ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let config = dir.path().join("flashgate.toml");
    let toml = format!(
        "[[route]]\npath = \"/secure\"\nbackend = \"wss://localhost:{port}/live\"\n\
         [route.upstream]\nca_file = {ca_file:?}\ncookies = true\nforwarded = false\n\
         connect_timeout = \"3s\"\nwrite_timeout = \"5s\"\n"
    );
    std::fs::write(&config, toml).unwrap();
    let config = config.to_str().unwrap().to_string();
    let gw = TestGateway::start_in(dir, &["--config", &config]).await;
    let mut ws = gw.ws_with("/secure", &[("Cookie", "sid=42")]).await;
    let (target, headers) = hello(&mut seen).await;
    assert_eq!(target, "/live");
    assert_eq!(header(&headers, "cookie"), Some("sid=42"));
    assert_eq!(header(&headers, "x-forwarded-for"), None);
    assert_eq!(header(&headers, "forwarded"), None);
    send_text(&mut ws, "over TLS").await;
    assert_eq!(next_message(&mut ws).await, Message::text("over TLS"));

    // The system's roots do not know this test's CA: the client hears why.
    let route = format!("/pinned=wss://localhost:{port}/");
    let gw = TestGateway::start(&["--route", &route]).await;
    let mut ws = gw.ws("/pinned").await;
    let (frame, _) = close_frame(&mut ws).await;
    let frame = frame.unwrap();
    assert_eq!(frame.code, CloseCode::Error);
    assert!(frame.reason.contains("TLS"), "{frame:?}");
}

#[tokio::test]
async fn a_client_that_offers_subprotocols_reaches_a_server_that_chooses_none() {
    // A server that never answers with a subprotocol, which RFC 6455 allows.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
                let (tx, _rx) = mpsc::channel(4);
                serve(ws, tx).await;
            });
        }
    });
    let gw = TestGateway::start(&["--route", &format!("/app=ws://{addr}/")]).await;
    // tokio-tungstenite's client refuses a 101 without one: the head is read by hand.
    let mut tcp = TcpStream::connect(gw.main).await.unwrap();
    let head = format!(
        "GET /app HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: chat.v1\r\n\r\n",
        gw.main
    );
    tokio::io::AsyncWriteExt::write_all(&mut tcp, head.as_bytes())
        .await
        .unwrap();
    let response = read_response(&mut tcp).await;
    assert_eq!(response.status, 101);
    assert_eq!(response.header("sec-websocket-protocol"), None);
}
