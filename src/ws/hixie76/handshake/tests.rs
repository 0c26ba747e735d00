use super::*;

fn headers(list: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in list {
        map.append(*k, v.parse().unwrap());
    }
    map
}

/// The draft's own example request (section 1.2).
const DRAFT_EXAMPLE: [(&str, &str); 6] = [
    ("host", "example.com"),
    ("connection", "Upgrade"),
    ("sec-websocket-key2", "12998 5 Y3 1  .P00"),
    ("sec-websocket-protocol", "sample"),
    ("upgrade", "WebSocket"),
    ("sec-websocket-key1", "4 @1  46546xW%0l 1 5"),
];

fn allow() -> AllowList {
    AllowList::parse(&["http://example.com".to_string()]).unwrap()
}

fn check_76(list: &[(&'static str, &'static str)]) -> Result<Opening, Rejection> {
    let map = headers(list);
    check(
        Draft::Hixie76,
        &Method::GET,
        Version::HTTP_11,
        &map,
        "/demo",
        &allow(),
    )
}

#[test]
fn the_drafts_example_gives_its_answer() {
    let k1 = key_number(b"4 @1  46546xW%0l 1 5").unwrap();
    let k2 = key_number(b"12998 5 Y3 1  .P00").unwrap();
    assert_eq!((k1, k2), (829309203, 259970620));
    assert_eq!(&answer(k1, k2, b"^n:ds[4U"), b"8jKS'y:G*Co,Wxa-");
}

#[test]
fn websocket_drivers_vector_gives_its_answer() {
    let k1 = key_number(b"1   38 wZ3f9 23O0 3l 0r").unwrap();
    let k2 = key_number(b"27   0E 6 2  1665:< ;U 1H").unwrap();
    let body = [0x91, 0x25, 0x3e, 0xd3, 0xa9, 0xe7, 0x6a, 0x88];
    let want = [
        0xb4, 0x9c, 0x6e, 0x40, 0x53, 0x04, 0x04, 0x26, 0xe5, 0x1b, 0xbf, 0x6c, 0xb7, 0x9f, 0x1d,
        0xf9,
    ];
    assert_eq!(answer(k1, k2, &body), want);
}

#[test]
fn each_bad_key_is_refused_for_its_own_reason() {
    assert_eq!(key_number(b"12 34"), Ok(1234));
    assert_eq!(key_number(b"   "), Err(KeyError::NoDigits));
    assert_eq!(key_number(b"1234"), Err(KeyError::NoSpaces));
    assert_eq!(key_number(b"10  1"), Err(KeyError::NotAMultiple)); // 101 / 2
    // 2^32 with one space: one past the 32 bits.
    assert_eq!(key_number(b"4294967296 "), Err(KeyError::TooLarge));
    assert_eq!(key_number(b"4294967295 "), Ok(u32::MAX));
    assert_eq!(key_number(b"8589934590  "), Ok(u32::MAX));
    // Far past 128 bits of digits.
    let huge = [b"9".repeat(60), b" ".to_vec()].concat();
    assert_eq!(key_number(&huge), Err(KeyError::TooLarge));
    // The remainder is checked first, as the draft orders it, whatever the number's size.
    let odd = [b"9".repeat(60), b"  ".to_vec()].concat();
    assert_eq!(key_number(&odd), Err(KeyError::NotAMultiple));
    // Only digits and spaces count.
    assert_eq!(key_number(b"a1b 2c\t3"), Ok(123));
}

#[test]
fn a_bad_key_is_a_400_that_says_why() {
    let mut list = DRAFT_EXAMPLE.to_vec();
    list[2] = ("sec-websocket-key2", "12998");
    let refused = check_76(&list).unwrap_err();
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.reason, "hixie-76: Sec-WebSocket-Key2 has no spaces");
    list.remove(5);
    let missing = check_76(&list).unwrap_err();
    assert_eq!(
        missing.reason,
        "hixie-76: missing (or repeated) Sec-WebSocket-Key1"
    );
    let mut twice = DRAFT_EXAMPLE.to_vec();
    twice.push(("sec-websocket-key1", "1 1"));
    assert_eq!(
        check_76(&twice).unwrap_err().status,
        StatusCode::BAD_REQUEST
    );
}

#[test]
fn the_answer_head_echoes_origin_location_and_protocol() {
    let mut list = DRAFT_EXAMPLE.to_vec();
    list.push(("origin", "http://example.com"));
    let opening = check_76(&list).unwrap();
    assert_eq!(opening.keys, Some((829309203, 259970620)));
    assert_eq!(
        String::from_utf8(opening.head("ws")).unwrap(),
        "HTTP/1.1 101 WebSocket Protocol Handshake\r\n\
         Upgrade: WebSocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Origin: http://example.com\r\n\
         Sec-WebSocket-Location: ws://example.com/demo\r\n\
         Sec-WebSocket-Protocol: sample\r\n\r\n"
    );
    assert_eq!(opening.location("wss"), "wss://example.com/demo");
}

#[test]
fn a_foreign_origin_is_forbidden() {
    let mut list = DRAFT_EXAMPLE.to_vec();
    list.push(("origin", "http://evil.example"));
    assert_eq!(check_76(&list).unwrap_err().status, StatusCode::FORBIDDEN);
}

#[test]
fn drafts_are_told_apart_by_their_headers() {
    let base = [("upgrade", "WebSocket"), ("connection", "Upgrade")];
    assert_eq!(draft_of(&headers(&base)), Some(Draft::Hixie75));
    let mut keyed = base.to_vec();
    keyed.push(("sec-websocket-key2", "1 1"));
    assert_eq!(draft_of(&headers(&keyed)), Some(Draft::Hixie76));
    let mut rfc = base.to_vec();
    rfc.push(("sec-websocket-version", "13"));
    assert_eq!(draft_of(&headers(&rfc)), None);
    let mut sloppy = base.to_vec();
    sloppy.push(("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="));
    assert_eq!(draft_of(&headers(&sloppy)), None);
}

#[test]
fn hixie_75_has_no_keys_and_its_own_names() {
    let list = [
        ("host", "example.com:81"),
        ("upgrade", "WebSocket"),
        ("connection", "Upgrade"),
        ("origin", "http://example.com"),
        ("websocket-protocol", "chat"),
    ];
    let map = headers(&list);
    let allow = AllowList::parse(&["*".to_string()]).unwrap();
    let opening = check(
        Draft::Hixie75,
        &Method::GET,
        Version::HTTP_11,
        &map,
        "/chat?room=a",
        &allow,
    )
    .unwrap();
    assert_eq!(opening.keys, None);
    assert_eq!(
        String::from_utf8(opening.head("ws")).unwrap(),
        "HTTP/1.1 101 Web Socket Protocol Handshake\r\n\
         Upgrade: WebSocket\r\n\
         Connection: Upgrade\r\n\
         WebSocket-Origin: http://example.com\r\n\
         WebSocket-Location: ws://example.com:81/chat?room=a\r\n\
         WebSocket-Protocol: chat\r\n\r\n"
    );
}

#[test]
fn not_a_get_or_not_http_1_1_is_refused() {
    let map = headers(&DRAFT_EXAMPLE);
    let post = check(
        Draft::Hixie76,
        &Method::POST,
        Version::HTTP_11,
        &map,
        "/",
        &allow(),
    );
    assert_eq!(post.unwrap_err().status, StatusCode::METHOD_NOT_ALLOWED);
    let old = check(
        Draft::Hixie76,
        &Method::GET,
        Version::HTTP_10,
        &map,
        "/",
        &allow(),
    );
    assert_eq!(old.unwrap_err().status, StatusCode::BAD_REQUEST);
}
