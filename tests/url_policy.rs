//! `/crossdomain.xml`: the URL policy Flash Player fetches over HTTP before a SWF from
//! another site may use `URLLoader` or `NetConnection` here, written from the same
//! allow-list as the socket policy.

mod common;

use common::*;
use quick_xml::events::Event;

/// The `domain` of each `<allow-access-from>` in `xml`, and whether any has `to-ports`
/// (which a URL policy must not) and whether it says `master-only`.
fn read(xml: &[u8]) -> (Vec<String>, bool, bool) {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let (mut domains, mut ports, mut master_only) = (Vec::new(), false, false);
    loop {
        match reader.read_event().expect("well-formed policy XML") {
            Event::Start(e) | Event::Empty(e) => {
                for a in e.attributes().map(Result::unwrap) {
                    let value = a.value.to_string();
                    match (e.name().as_ref(), a.key.as_ref()) {
                        ("allow-access-from", "domain") => domains.push(value),
                        ("allow-access-from", "to-ports") => ports = true,
                        ("site-control", "permitted-cross-domain-policies") => {
                            master_only = value == "master-only"
                        }
                        _ => {}
                    }
                }
            }
            Event::Eof => return (domains, ports, master_only),
            _ => {}
        }
    }
}

/// The socket policy's domains, as the policy port answers them.
async fn socket_domains(gw: &TestGateway) -> Vec<String> {
    let reply = exchange(gw.policy, &[POLICY_REQUEST], false).await;
    read(&reply[..reply.len() - 1]).0
}

#[tokio::test]
async fn the_allowed_origins_hosts_are_the_url_policys_domains() {
    let gw = TestGateway::start(&[
        "--allow-origin",
        "http://example.com:8000",
        "--allow-origin",
        "https://example.com",
        "--allow-origin",
        "https://games.example.org",
    ])
    .await;
    let res = get(gw.main, "/crossdomain.xml").await;
    assert_eq!(res.status, 200);
    assert_eq!(
        res.header("content-type"),
        Some("text/x-cross-domain-policy")
    );
    assert!(
        !res.body.contains(&0),
        "a URL policy has no NUL: {:?}",
        res.text()
    );
    let (domains, ports, master_only) = read(&res.body);
    // One grant per host: a URL policy has no ports to tell two origins apart.
    assert_eq!(
        domains,
        ["example.com", "games.example.org"],
        "{}",
        res.text()
    );
    assert_eq!(
        socket_domains(&gw).await,
        ["example.com", "games.example.org"]
    );
    assert!(
        !ports,
        "to-ports belongs in socket policies only: {}",
        res.text()
    );
    assert!(master_only, "the site's one policy: {}", res.text());
}

#[tokio::test]
async fn a_hand_written_socket_policy_grants_its_domains_over_http_too() {
    let dir = fixtures();
    let xml = "<cross-domain-policy>\n  \
               <allow-access-from domain=\"kiosk.example\" to-ports=\"8080\"/>\n  \
               <allow-access-from domain=\"*.arcade.example\" to-ports=\"9000-9100\"/>\n\
               </cross-domain-policy>\n";
    let file = dir.path().join("policy.xml");
    std::fs::write(&file, xml).unwrap();
    let gw = TestGateway::start_in(dir, &["--policy-file", file.to_str().unwrap()]).await;
    let res = get(gw.main, "/crossdomain.xml").await;
    assert_eq!(res.status, 200);
    assert_eq!(read(&res.body).0, ["kiosk.example", "*.arcade.example"]);
}

#[tokio::test]
async fn any_origin_is_every_domain_and_only_get_or_head_are_answered() {
    let gw = TestGateway::start(&["--allow-origin", "*"]).await;
    assert_eq!(read(&get(gw.main, "/crossdomain.xml").await.body).0, ["*"]);
    let head = http(gw.main, "HEAD", "/crossdomain.xml", &[]).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "HEAD has no body");
    let post = http(
        gw.main,
        "POST",
        "/crossdomain.xml",
        &[("Content-Length", "0")],
    )
    .await;
    assert_eq!(post.status, 405, "{}", post.text());
}
