//! Flash socket policy requests, on the policy listener and inline on the main port, over
//! raw TCP as Flash Player and netcat send them.

mod common;

use std::time::{Duration, Instant};

use common::*;
use quick_xml::events::Event;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The policy's elements as (name, attributes), parsed with quick-xml.
fn elements(reply: &[u8]) -> Vec<(String, Vec<(String, String)>)> {
    assert_eq!(
        reply.last(),
        Some(&0),
        "a policy reply ends with one NUL byte"
    );
    let xml = std::str::from_utf8(&reply[..reply.len() - 1]).expect("UTF-8");
    assert!(!xml.contains('\0'), "exactly one NUL, at the end");
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out = Vec::new();
    loop {
        match reader.read_event().expect("well-formed policy XML") {
            Event::Start(e) | Event::Empty(e) => {
                let attrs = e
                    .attributes()
                    .map(|a| {
                        let a = a.unwrap();
                        (a.key.as_ref().to_string(), a.value.to_string())
                    })
                    .collect();
                out.push((e.name().as_ref().to_string(), attrs));
            }
            Event::Eof => return out,
            _ => {}
        }
    }
}

fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn grants(reply: &[u8]) -> Vec<(String, String)> {
    elements(reply)
        .into_iter()
        .filter(|(name, _)| name == "allow-access-from")
        .map(|(_, a)| {
            (
                attr(&a, "domain").unwrap().to_string(),
                attr(&a, "to-ports").unwrap().to_string(),
            )
        })
        .collect()
}

fn has_master_only(reply: &[u8]) -> bool {
    elements(reply).iter().any(|(name, a)| {
        name == "site-control" && attr(a, "permitted-cross-domain-policies") == Some("master-only")
    })
}

#[tokio::test]
async fn policy_port_answers_with_master_policy_and_nul_then_closes() {
    let gw = TestGateway::start(&[]).await;
    let reply = exchange(gw.policy, &[POLICY_REQUEST], false).await;
    let names: Vec<_> = elements(&reply).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names[0], "cross-domain-policy");
    assert!(
        has_master_only(&reply),
        "the master policy carries site-control"
    );
    let port = gw.main.port().to_string();
    let granted = grants(&reply);
    assert!(!granted.is_empty());
    assert!(
        granted.iter().all(|(_, ports)| *ports == port),
        "{granted:?}"
    );
    assert!(
        granted.iter().any(|(domain, _)| domain == "127.0.0.1"),
        "{granted:?}"
    );
}

#[tokio::test]
async fn main_port_answers_inline_without_site_control() {
    let gw = TestGateway::start(&[]).await;
    let reply = exchange(gw.main, &[POLICY_REQUEST], false).await;
    assert!(
        !has_master_only(&reply),
        "only the master policy has site-control"
    );
    let port = gw.main.port().to_string();
    assert!(grants(&reply).iter().all(|(_, ports)| *ports == port));
}

#[tokio::test]
async fn request_split_byte_by_byte_is_recognised() {
    let gw = TestGateway::start(&[]).await;
    for addr in [gw.policy, gw.main] {
        let pieces: Vec<&[u8]> = POLICY_REQUEST.chunks(1).collect();
        let reply = exchange(addr, &pieces, false).await;
        assert!(!grants(&reply).is_empty(), "reply from {addr}");
    }
}

#[tokio::test]
async fn request_ending_in_newline_crlf_or_eof_is_recognised() {
    let gw = TestGateway::start(&[]).await;
    for addr in [gw.policy, gw.main] {
        for (request, half_close) in [
            (&b"<policy-file-request/>\n"[..], false),
            (&b"<policy-file-request/>\r\n"[..], false),
            (&b"<policy-file-request/>"[..], true),
        ] {
            let reply = exchange(addr, &[request], half_close).await;
            assert!(
                !grants(&reply).is_empty(),
                "{addr} {:?}",
                String::from_utf8_lossy(request)
            );
        }
    }
}

#[tokio::test]
async fn garbage_on_policy_port_is_closed_without_reply() {
    let gw = TestGateway::start(&[]).await;
    for garbage in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"<policy-file-request/>X",
        b"<policy-file-request>\0",
        b"\0",
    ] {
        let reply = exchange(gw.policy, &[garbage], false).await;
        assert!(reply.is_empty(), "{:?} got {:?}", garbage, reply);
    }
}

#[tokio::test]
async fn oversized_input_is_closed_without_reply() {
    let gw = TestGateway::start(&[]).await;
    let big = vec![b'<'; 64 * 1024];
    let mut stream = TcpStream::connect(gw.policy).await.unwrap();
    // The server may close before all of it is written; that is the point.
    let _ = stream.write_all(&big).await;
    let reply = read_to_close(&mut stream).await;
    assert!(reply.is_empty());
}

#[tokio::test]
async fn silent_client_is_closed_after_read_timeout() {
    let gw = TestGateway::start(&["--read-timeout", "300ms"]).await;
    for addr in [gw.policy, gw.main] {
        let started = Instant::now();
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let reply = read_to_close(&mut stream).await;
        let waited = started.elapsed();
        assert!(
            reply.is_empty(),
            "{addr}: nothing is sent to a silent client"
        );
        assert!(
            waited >= Duration::from_millis(250),
            "{addr}: closed after {waited:?}, before the read timeout"
        );
    }
}

#[tokio::test]
async fn allow_origin_becomes_the_policy_domains() {
    let gw = TestGateway::start(&[
        "--allow-origin",
        "http://example.com:8000",
        "--allow-origin",
        "https://games.example.org",
    ])
    .await;
    let reply = exchange(gw.policy, &[POLICY_REQUEST], false).await;
    let domains: Vec<_> = grants(&reply).into_iter().map(|(d, _)| d).collect();
    assert_eq!(domains, ["example.com", "games.example.org"]);
}

#[tokio::test]
async fn allow_any_origin_grants_every_domain() {
    let gw = TestGateway::start(&["--allow-origin", "*"]).await;
    let reply = exchange(gw.policy, &[POLICY_REQUEST], false).await;
    let domains: Vec<_> = grants(&reply).into_iter().map(|(d, _)| d).collect();
    assert_eq!(domains, ["*"]);
}

#[tokio::test]
async fn policy_file_is_served_verbatim_with_nul() {
    let dir = fixtures();
    let xml = "<?xml version=\"1.0\"?>\n<cross-domain-policy>\n  \
               <allow-access-from domain=\"kiosk.example\" to-ports=\"8080,9000-9100\"/>\n\
               </cross-domain-policy>\n";
    let file = dir.path().join("policy.xml");
    std::fs::write(&file, xml).unwrap();
    let gw = TestGateway::start_in(dir, &["--policy-file", file.to_str().unwrap()]).await;
    for addr in [gw.policy, gw.main] {
        let reply = exchange(addr, &[POLICY_REQUEST], false).await;
        let mut expected = xml.as_bytes().to_vec();
        expected.push(0);
        assert_eq!(
            String::from_utf8_lossy(&reply),
            String::from_utf8_lossy(&expected)
        );
    }
}

#[tokio::test]
async fn malformed_policy_file_is_refused_naming_the_line() {
    let dir = fixtures();
    let file = dir.path().join("policy.xml");
    std::fs::write(
        &file,
        "<?xml version=\"1.0\"?>\n<cross-domain-policy>\n  <allow-access-from domain=\"a\" to-ports=\"80\">\n</cross-domain-policy>\n",
    )
    .unwrap();
    let Err(error) = config(dir.path(), &["--policy-file", file.to_str().unwrap()]) else {
        panic!("a malformed policy file is an error")
    };
    let message = format!("{error:#}");
    assert!(message.contains("policy.xml"), "{message}");
    assert!(message.contains("line 4"), "{message}");

    std::fs::write(&file, "").unwrap();
    let Err(error) = config(dir.path(), &["--policy-file", file.to_str().unwrap()]) else {
        panic!("an empty policy file is an error")
    };
    assert!(format!("{error:#}").contains("policy.xml"));
}

#[tokio::test]
async fn http_still_works_on_the_main_port_after_sniffing() {
    let gw = TestGateway::start(&[]).await;
    // Bytes that start like a policy request but are not one go to HTTP.
    let response = get(gw.main, "/index.html").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), INDEX_HTML);
    let raw = exchange(gw.main, &[b"<policy-file-request/>X"], true).await;
    assert!(
        raw.starts_with(b"HTTP/1.1 400"),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
}

/// The policy as the README shows it, for a gateway on `port` granting `domains`.
fn documented_policy(domains: &[&str], port: u16, master: bool) -> Vec<u8> {
    let mut xml = String::from(
        "<?xml version=\"1.0\"?>\n\
         <!DOCTYPE cross-domain-policy SYSTEM \"/xml/dtds/cross-domain-policy.dtd\">\n\
         <cross-domain-policy>\n",
    );
    if master {
        xml.push_str("  <site-control permitted-cross-domain-policies=\"master-only\"/>\n");
    }
    for domain in domains {
        xml.push_str(&format!(
            "  <allow-access-from domain=\"{domain}\" to-ports=\"{port}\"/>\n"
        ));
    }
    xml.push_str("</cross-domain-policy>\0");
    xml.into_bytes()
}

/// Sends one request and reads the reply up to a clean end of the connection.
async fn policy_reply(addr: std::net::SocketAddr) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(POLICY_REQUEST).await.unwrap();
    read_to_eof(&mut stream).await
}

#[tokio::test]
async fn replies_are_exactly_the_documented_xml_then_a_clean_close() {
    let gw = TestGateway::start(&["--allow-origin", "http://example.com:8000"]).await;
    let port = gw.main.port();
    assert_eq!(
        String::from_utf8_lossy(&policy_reply(gw.policy).await),
        String::from_utf8_lossy(&documented_policy(&["example.com"], port, true))
    );
    assert_eq!(
        String::from_utf8_lossy(&policy_reply(gw.main).await),
        String::from_utf8_lossy(&documented_policy(&["example.com"], port, false))
    );
}

#[tokio::test]
async fn default_policy_grants_the_loopback_names_as_the_readme_shows() {
    let gw = TestGateway::start(&[]).await;
    let expected = documented_policy(&["localhost", "127.0.0.1", "::1"], gw.main.port(), true);
    assert_eq!(
        String::from_utf8_lossy(&policy_reply(gw.policy).await),
        String::from_utf8_lossy(&expected)
    );
}

#[tokio::test]
async fn the_readme_shows_what_each_port_really_prints() {
    // Its netcat section shows the master policy's reply, then the main port's.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("## Try the policy with netcat")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("the README has its netcat section");
    let shown: Vec<&str> = section
        .split("```xml\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .collect();
    assert_eq!(shown.len(), 2, "{section}");
    let gw = TestGateway::start(&[]).await;
    let port = format!("to-ports=\"{}\"", gw.main.port());
    for (shown, addr) in shown.into_iter().zip([gw.policy, gw.main]) {
        let reply = policy_reply(addr).await;
        assert_eq!(reply.last(), Some(&0), "{addr}: the reply ends in a NUL");
        assert_eq!(
            String::from_utf8_lossy(&reply[..reply.len() - 1]),
            shown.trim_end().replace("to-ports=\"8080\"", &port),
            "{addr}"
        );
    }
}

#[tokio::test]
async fn client_that_keeps_the_connection_open_still_gets_the_whole_reply_and_eof() {
    // Flash Player does not close its side after the request; the reply must still end.
    let gw = TestGateway::start(&[]).await;
    for addr in [gw.policy, gw.main] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(POLICY_REQUEST).await.unwrap();
        let reply = read_to_eof(&mut stream).await;
        assert!(!grants(&reply).is_empty(), "{addr}");
        // Bytes sent after the reply (a typed newline, say) cause no reset or second reply.
        let _ = stream.write_all(b"\n").await;
    }
}

#[tokio::test]
async fn incomplete_request_gets_no_reply_and_is_closed_after_read_timeout() {
    let gw = TestGateway::start(&["--read-timeout", "300ms"]).await;
    for addr in [gw.policy, gw.main] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"<policy-file-req").await.unwrap();
        let reply = read_to_close(&mut stream).await;
        assert!(reply.is_empty(), "{addr}: {reply:?}");
    }
}

#[tokio::test]
async fn oversized_input_on_the_main_port_never_gets_a_policy() {
    let gw = TestGateway::start(&[]).await;
    let mut stream = TcpStream::connect(gw.main).await.unwrap();
    let mut big = POLICY_REQUEST[..10].to_vec();
    big.extend(std::iter::repeat_n(b'x', 16 * 1024));
    let _ = stream.write_all(&big).await;
    let reply = read_to_close(&mut stream).await;
    assert!(
        !String::from_utf8_lossy(&reply).contains("cross-domain-policy"),
        "{:?}",
        String::from_utf8_lossy(&reply)
    );
}

#[tokio::test]
async fn bytes_after_the_request_never_turn_the_close_into_a_reset() {
    // A request with more behind it in the same packet (a typed newline, say): the reply
    // must end with a clean close, never a reset that could destroy it in flight.
    let gw = TestGateway::start(&[]).await;
    for addr in [gw.policy, gw.main] {
        for _ in 0..20 {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let mut request = POLICY_REQUEST.to_vec();
            request.extend_from_slice(&[b'\n'; 300]);
            stream.write_all(&request).await.unwrap();
            let reply = read_to_eof(&mut stream).await;
            assert!(reply.ends_with(b"\0"), "{addr}: {reply:?}");
            assert!(!grants(&reply).is_empty(), "{addr}");
        }
    }
}

#[tokio::test]
async fn a_client_that_stays_after_its_reply_is_closed_when_it_goes() {
    // The policy port closes answered sockets once their client has gone; one that stays
    // connected (and keeps talking) is looked after until it closes, and every other client
    // meanwhile is answered.
    let gw = TestGateway::start(&[]).await;
    let mut stayer = TcpStream::connect(gw.policy).await.unwrap();
    stayer.write_all(POLICY_REQUEST).await.unwrap();
    let reply = read_to_eof(&mut stayer).await;
    assert!(reply.ends_with(b"\0"));
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(30)).await;
        // Still there: what it sends is read and dropped, not answered with a reset.
        stayer.write_all(b"\n").await.unwrap();
        assert!(!grants(&exchange(gw.policy, &[POLICY_REQUEST], false).await).is_empty());
    }
    let mut probe = [0u8; 16];
    assert_eq!(
        stayer.read(&mut probe).await.unwrap(),
        0,
        "still only the end of the stream, no reset"
    );
}
