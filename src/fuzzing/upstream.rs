//! Fuzz targets for the handshake with an upstream WebSocket server.

use std::net::SocketAddr;

use http::HeaderValue;

use crate::backend::relay::Hello;
use crate::backend::relay::handshake::{self, Target, Tell};
use crate::session::Transport;

/// The key the answers are read against.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// Asserts: an answer read whole, or from any prefix, never panics; a prefix reads as
/// incomplete or as the error the whole gives, never as an answer of its own; an accepted
/// answer's head lies within the input, reads the same from exactly its own bytes, and names
/// a subprotocol only when one was offered, and then one of them.
pub fn upstream_answer(data: &[u8]) {
    let offered = HeaderValue::from_static("chat.v1, chat.v2");
    let whole = handshake::answer(data, KEY, Some(&offered));
    let unoffered = handshake::answer(data, KEY, None);
    if let Ok(Some(answer)) = &whole {
        assert!(answer.head_len <= data.len());
        let own = handshake::answer(&data[..answer.head_len], KEY, Some(&offered));
        assert_eq!(
            own.as_ref(),
            Ok(&Some(handshake::Answer { ..clone(answer) }))
        );
        if let Some(protocol) = &answer.protocol {
            assert!(["chat.v1", "chat.v2"].contains(&protocol.to_str().unwrap()));
            assert!(unoffered.is_err(), "a subprotocol nobody offered");
        }
    }
    for end in [data.len() / 2, data.len().saturating_sub(1)] {
        match handshake::answer(&data[..end], KEY, Some(&offered)) {
            Ok(None) | Err(_) => {}
            Ok(Some(early)) => {
                let Ok(Some(answer)) = &whole else {
                    panic!("a prefix is an answer, the whole is not: {whole:?}");
                };
                assert_eq!(early.head_len, answer.head_len);
            }
        }
    }
}

fn clone(answer: &handshake::Answer) -> handshake::Answer {
    handshake::Answer {
        head_len: answer.head_len,
        protocol: answer.protocol.clone(),
    }
}

/// Asserts: whatever the client said (each value one a parsed request could hold), the
/// request to the server is one complete HTTP/1.1 GET head, nothing after it, that carries
/// the client's values as they were, and those the route allows only.
pub fn upstream_request(data: &[u8]) {
    let mut parts = data.split(|&b| b == 0xFF);
    // What hyper parses: no white space around a value.
    let mut value = || {
        let bytes = parts.next()?;
        let padded = bytes
            .first()
            .or(bytes.last())
            .is_some_and(|b| matches!(b, b' ' | b'\t'))
            || bytes.last().is_some_and(|b| matches!(b, b' ' | b'\t'));
        (!padded)
            .then(|| HeaderValue::from_bytes(bytes).ok())
            .flatten()
    };
    let mut hello = Hello::new(Transport::Hixie76);
    hello.origin = value();
    hello.protocols = value();
    hello.cookie = value();
    hello.host = value();
    let query = value().and_then(|v| v.to_str().ok().map(str::to_owned));
    hello.query = query.filter(|q| q.bytes().all(|b| b.is_ascii_graphic() && b != b'#'));
    let addrs: (SocketAddr, SocketAddr) = (
        "[2001:db8::7]:9".parse().unwrap(),
        "10.0.0.1:80".parse().unwrap(),
    );
    let tell = Tell {
        forwarded: data.first().is_some_and(|b| b & 1 == 1),
        cookies: data.first().is_some_and(|b| b & 2 == 2),
    };
    let target = Target {
        host: "upstream.example:9000",
        resource: "/live?v=1",
    };
    let mut out = Vec::new();
    handshake::request(&target, &hello, addrs, tell, KEY, &mut out);
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let status = req.parse(&out).expect("a valid request head");
    assert_eq!(
        status,
        httparse::Status::Complete(out.len()),
        "one head, nothing after it"
    );
    assert_eq!(req.method, Some("GET"));
    let path = req.path.unwrap();
    match &hello.query {
        Some(query) if !query.is_empty() => assert_eq!(path, format!("/live?v=1&{query}")),
        _ => assert_eq!(path, "/live?v=1"),
    }
    let get = |name: &str| {
        let found = req
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name));
        found.map(|h| h.value.to_vec()).collect::<Vec<_>>()
    };
    let said = |value: &Option<HeaderValue>| {
        value
            .iter()
            .map(|v| v.as_bytes().to_vec())
            .collect::<Vec<_>>()
    };
    assert_eq!(get("origin"), said(&hello.origin));
    assert_eq!(get("sec-websocket-protocol"), said(&hello.protocols));
    let cookie = if tell.cookies {
        said(&hello.cookie)
    } else {
        Vec::new()
    };
    assert_eq!(get("cookie"), cookie);
    assert_eq!(get("x-forwarded-for").len(), usize::from(tell.forwarded));
    assert_eq!(get("forwarded").len(), usize::from(tell.forwarded));
    assert_eq!(get("x-flashgate-transport"), vec![b"hixie76".to_vec()]);
    assert_eq!(get("sec-websocket-key"), vec![KEY.as_bytes().to_vec()]);
}
