use super::*;

fn quoted(s: &str) -> String {
    let mut out = String::new();
    quote(s, &mut out);
    out
}

#[test]
fn quoting_is_json_and_escapes_what_the_protocol_lists() {
    assert_eq!(quoted("héllo"), r#""héllo""#);
    assert_eq!(quoted("a\"b\\c\n\r\t\u{8}\u{c}"), r#""a\"b\\c\n\r\t\b\f""#);
    assert_eq!(quoted("\u{0}\u{1f}"), r#""\u0000\u001f""#);
    // Every character of the protocol's server-escaped ranges, and none next to them.
    for c in [
        '\u{200c}', '\u{200f}', '\u{2028}', '\u{202f}', '\u{2060}', '\u{206f}', '\u{fff0}',
        '\u{ffff}',
    ] {
        assert_eq!(quoted(&c.to_string()), format!("\"\\u{:04x}\"", c as u32));
    }
    for c in [
        '\u{200b}',
        '\u{2010}',
        '\u{2030}',
        '\u{2070}',
        '\u{ffef}',
        '\u{10000}',
        '\u{7f}',
    ] {
        assert_eq!(quoted(&c.to_string()), format!("\"{c}\""));
    }
    // What is quoted parses back to what it was.
    let all: String = (0..0x11000u32).filter_map(char::from_u32).collect();
    assert_eq!(serde_json::from_str::<String>(&quoted(&all)).unwrap(), all);
}

#[test]
fn frames() {
    let mut out = String::new();
    messages(["a", "b\"c"], &mut out);
    assert_eq!(out, r#"a["a","b\"c"]"#);
    assert_eq!(close(3000, "Go away!"), r#"c[3000,"Go away!"]"#);
}

#[test]
fn each_transport_wraps_a_frame_as_the_protocol_shows() {
    let frame = r#"a["x"]"#;
    let wrapped = |wrap: Wrap| {
        let mut out = String::new();
        wrap.frame(frame, &mut out);
        out
    };
    assert_eq!(wrapped(Wrap::Line), "a[\"x\"]\n");
    assert_eq!(wrapped(Wrap::Event), "data: a[\"x\"]\r\n\r\n");
    assert_eq!(
        wrapped(Wrap::Script),
        "<script>\np(\"a[\\\"x\\\"]\");\n</script>\r\n"
    );
    assert_eq!(
        wrapped(Wrap::Callback("cb".into())),
        "/**/cb(\"a[\\\"x\\\"]\");\r\n"
    );
}

#[test]
fn a_message_cannot_end_the_htmlfile_script() {
    let mut frame = String::new();
    messages(["</script><script>alert(1)</script>"], &mut frame);
    let mut out = String::new();
    Wrap::Script.frame(&frame, &mut out);
    assert_eq!(out.matches("</script>").count(), 1, "{out}");
    // Still the same frame once the page's script reads the string.
    let inner = out
        .strip_prefix("<script>\np(")
        .unwrap()
        .strip_suffix(");\n</script>\r\n")
        .unwrap();
    assert_eq!(serde_json::from_str::<String>(inner).unwrap(), frame);
}

#[test]
fn callbacks() {
    for ok in ["callback", "a.b-c_d", "X9"] {
        assert!(valid_callback(ok), "{ok}");
    }
    for bad in ["", " ", "*", "abc(", "abc%28", &"x".repeat(33)] {
        assert!(!valid_callback(bad), "{bad}");
    }
}

/// The messages of a sending request's body, as strings.
fn client(body: &[u8]) -> Result<Vec<String>, Refused> {
    let messages = client_messages(&Bytes::copy_from_slice(body))?;
    Ok(messages.iter().map(|m| m.as_str().to_owned()).collect())
}

/// The messages of a WebSocket message, as strings.
fn websocket(text: &'static str) -> Result<Vec<String>, Refused> {
    let messages = websocket_messages(&Utf8Bytes::from_static(text))?;
    Ok(messages.iter().map(|m| m.as_str().to_owned()).collect())
}

#[test]
fn client_payloads() {
    assert_eq!(client(br#"["a","b"]"#), Ok(vec!["a".into(), "b".into()]));
    assert_eq!(client(br#"["a\u0000"]"#), Ok(vec!["a\0".into()]));
    assert_eq!(client(b"[]"), Ok(vec![]));
    assert_eq!(client(b""), Err(Refused::Expected));
    assert_eq!(client(b"\"a\""), Err(Refused::Expected));
    assert_eq!(client(br#"["x"#), Err(Refused::Broken));
    assert_eq!(client(b"[1]"), Err(Refused::Broken));
    assert_eq!(websocket(""), Ok(vec![]));
    assert_eq!(websocket("[]"), Ok(vec![]));
    assert_eq!(websocket(r#""a""#), Ok(vec!["a".into()]));
    assert_eq!(websocket(r#"["a"#), Err(Refused::Broken));
}

#[test]
fn form_bodies() {
    assert_eq!(
        form_field_d(b"d=%5B%22x%22%5D").as_deref(),
        Some(&br#"["x"]"#[..])
    );
    assert_eq!(form_field_d(b"a=1&d=%5B%5D").as_deref(), Some(&b"[]"[..]));
    assert_eq!(form_field_d(b"d=").as_deref(), Some(&b""[..]));
    assert_eq!(form_field_d(b"p=p"), None);
    assert_eq!(form_field_d(b"d=%zz+%4").as_deref(), Some(&b"%zz %4"[..]));
}

#[test]
fn the_first_byte_that_may_need_escaping_is_found_wherever_it_is() {
    for len in 0..40 {
        for at in 0..len {
            for b in [0u8, 0x1f, b'"', b'\\', 0xe2, 0xef] {
                let mut s = vec![b'x'; len];
                s[at] = b;
                assert_eq!(first_maybe_escaped(&s), Some(at), "{len} {at} {b}");
            }
        }
        for b in [
            0x20u8, 0x7f, 0x80, 0xe1, 0xe3, 0xee, 0xf0, 0xff, b'!', b'#', b'[',
        ] {
            assert_eq!(first_maybe_escaped(&vec![b; len]), None, "{len} {b}");
        }
    }
}

#[test]
fn a_frame_put_in_place_is_the_frame_wrapped_and_chunked() {
    let wraps = [
        Wrap::Line,
        Wrap::Event,
        Wrap::Script,
        Wrap::Callback("cb".into()),
    ];
    for len in [0, 1, 14, 15, 16, 255, 256, 4095, 4096, 70_000] {
        let frame = "x".repeat(len);
        for wrap in &wraps {
            let mut wrapped = String::new();
            wrap.frame(&frame, &mut wrapped);
            for chunked in [false, true] {
                let mut out = b"before".to_vec();
                let n = wrap.put(chunked, &mut out, |o| o.extend_from_slice(frame.as_bytes()));
                let expected = match chunked {
                    true => format!("before{:x}\r\n{wrapped}\r\n", wrapped.len()),
                    false => format!("before{wrapped}"),
                };
                assert_eq!(n, wrapped.len());
                assert!(out == expected.as_bytes(), "{wrap:?} {len} {chunked}");
            }
        }
    }
}
