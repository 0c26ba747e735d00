use super::*;
use crate::session::Transport;

fn addrs() -> (SocketAddr, SocketAddr) {
    (
        "192.0.2.7:51000".parse().unwrap(),
        "127.0.0.1:8080".parse().unwrap(),
    )
}

fn hello() -> Hello {
    let mut hello = Hello::new(Transport::Flash);
    hello.origin = Some(HeaderValue::from_static("http://legacy.example"));
    hello.protocols = Some(HeaderValue::from_static("chat.v2, chat.v1"));
    hello.cookie = Some(HeaderValue::from_static("sid=42"));
    hello.host = Some(HeaderValue::from_static("gateway.example"));
    hello.query = Some("room=lobby&flash=1".into());
    hello
}

fn head(resource: &str, hello: &Hello, tell: Tell) -> String {
    let target = Target {
        host: "game.example:9000",
        resource,
    };
    let mut out = Vec::new();
    request(
        &target,
        hello,
        addrs(),
        tell,
        "dGhlIHNhbXBsZSBub25jZQ==",
        &mut out,
    );
    String::from_utf8(out).unwrap()
}

const ALL: Tell = Tell {
    forwarded: true,
    cookies: true,
};

#[test]
fn the_request_tells_the_server_who_the_client_is() {
    let head = head("/socket?app=7", &hello(), ALL);
    let lines: Vec<&str> = head.split("\r\n").collect();
    assert_eq!(lines[0], "GET /socket?app=7&room=lobby&flash=1 HTTP/1.1");
    for line in [
        "Host: game.example:9000",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Origin: http://legacy.example",
        "Sec-WebSocket-Protocol: chat.v2, chat.v1",
        "Cookie: sid=42",
        "X-Flashgate-Transport: flash",
        "X-Forwarded-For: 192.0.2.7",
        "X-Forwarded-Proto: http",
        "X-Forwarded-Host: gateway.example",
        "Forwarded: for=\"192.0.2.7:51000\";proto=http;host=gateway.example",
    ] {
        assert!(lines.contains(&line), "{line:?} missing from\n{head}");
    }
    assert!(head.ends_with("\r\n\r\n"));
}

#[test]
fn cookies_and_addresses_go_only_where_the_route_says() {
    let head = head(
        "/",
        &hello(),
        Tell {
            forwarded: false,
            cookies: false,
        },
    );
    assert!(!head.contains("Cookie"), "{head}");
    assert!(!head.contains("Forwarded"), "{head}");
    assert!(head.contains("X-Flashgate-Transport: flash"), "{head}");
    // Nothing the client did not say.
    let bare = Hello::new(Transport::SockjsXhrStreaming);
    let head = self::head("/ws", &bare, ALL);
    assert!(head.starts_with("GET /ws HTTP/1.1\r\n"), "{head}");
    for absent in [
        "Origin",
        "Sec-WebSocket-Protocol",
        "Cookie",
        "X-Forwarded-Host",
    ] {
        assert!(!head.contains(absent), "{absent} in\n{head}");
    }
    assert!(head.contains("X-Flashgate-Transport: sockjs-xhr-streaming"));
}

#[test]
fn ipv6_clients_are_bracketed_and_quoted_in_forwarded() {
    let target = Target {
        host: "h",
        resource: "/",
    };
    let mut out = Vec::new();
    let addrs = (
        "[2001:db8::1]:4000".parse().unwrap(),
        "[::1]:80".parse().unwrap(),
    );
    request(
        &target,
        &Hello::new(Transport::Rfc6455),
        addrs,
        ALL,
        "k",
        &mut out,
    );
    let head = String::from_utf8(out).unwrap();
    assert!(head.contains("X-Forwarded-For: 2001:db8::1\r\n"), "{head}");
    assert!(
        head.contains("Forwarded: for=\"[2001:db8::1]:4000\";proto=http\r\n"),
        "{head}"
    );
    // An IPv4 client on a dual-stack socket is told as IPv4.
    let mut out = Vec::new();
    let mapped = (
        "[::ffff:192.0.2.9]:1".parse().unwrap(),
        "[::1]:80".parse().unwrap(),
    );
    request(
        &target,
        &Hello::new(Transport::Rfc6455),
        mapped,
        ALL,
        "k",
        &mut out,
    );
    assert!(
        String::from_utf8(out)
            .unwrap()
            .contains("X-Forwarded-For: 192.0.2.9\r\n")
    );
}

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

fn reply(extra: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {ACCEPT}\r\n{extra}\r\n"
    )
    .into_bytes()
}

#[test]
fn an_answer_is_read_in_any_pieces_and_the_frames_after_it_are_left() {
    let mut bytes = reply("Sec-WebSocket-Protocol: chat.v1\r\n");
    let head_len = bytes.len();
    bytes.extend_from_slice(&[0x81, 0x02, b'h', b'i']);
    let offered = HeaderValue::from_static("chat.v2, chat.v1");
    for cut in 0..head_len {
        assert_eq!(
            answer(&bytes[..cut], KEY, Some(&offered)),
            Ok(None),
            "cut at {cut}"
        );
    }
    let got = answer(&bytes, KEY, Some(&offered)).unwrap().unwrap();
    assert_eq!(got.head_len, head_len);
    assert_eq!(got.protocol, Some(HeaderValue::from_static("chat.v1")));
}

#[test]
fn a_server_may_choose_no_subprotocol_but_not_one_never_offered() {
    let offered = HeaderValue::from_static("chat.v1");
    let none = answer(&reply(""), KEY, Some(&offered)).unwrap().unwrap();
    assert_eq!(none.protocol, None);
    let other = answer(
        &reply("Sec-WebSocket-Protocol: mqtt\r\n"),
        KEY,
        Some(&offered),
    );
    assert!(other.unwrap_err().contains("did not offer"));
    let unasked = answer(&reply("Sec-WebSocket-Protocol: chat.v1\r\n"), KEY, None);
    assert!(unasked.unwrap_err().contains("did not offer"));
}

#[test]
fn refusals_say_what_the_server_did() {
    let forbidden = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(
        answer(forbidden, KEY, None).unwrap_err(),
        "it answered 403 Forbidden"
    );
    let another_key = "AQIDBAUGBwgJCgsMDQ4PEA==";
    assert!(
        answer(&reply(""), another_key, None)
            .unwrap_err()
            .contains("Accept")
    );
    let no_upgrade = format!("HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n");
    assert!(
        answer(no_upgrade.as_bytes(), KEY, None)
            .unwrap_err()
            .contains("upgrade")
    );
    assert!(
        answer(b"SSH-2.0-OpenSSH\r\n\r\n", KEY, None)
            .unwrap_err()
            .contains("not HTTP")
    );
    let endless = format!("HTTP/1.1 101 OK\r\nX: {}", "a".repeat(MAX_HEAD));
    assert!(
        answer(endless.as_bytes(), KEY, None)
            .unwrap_err()
            .contains("over")
    );
}
